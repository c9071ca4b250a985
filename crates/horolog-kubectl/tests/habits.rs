//! kubectl's habits: `-l` / `--all` on pause, resume and cancel, `-o name|wide|jsonpath=`,
//! `history --watch`, `logs --previous --tail --since`, and completion.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use horolog::api::{JobRun, Schedule};
use horolog::clock::ManualClock;
use horolog_kubectl::complete::candidates;
use horolog_kubectl::{Cli, Format, HistoryArgs, LogsArgs, Scope, Targets};
use horolog_memserver::{ApiServer, ResponseBody};
use http_body_util::BodyExt;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::{NS, run_of};

fn server() -> ApiServer {
    let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
    ApiServer::with_crds(Arc::new(clock), &horolog::crd::crds())
}

fn schedule(name: &str, team: &str) -> Schedule {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {{name: {name}, namespace: {NS}, labels: {{team: {team}}}}}
spec:
  trigger: {{cron: "0 9 * * *"}}
  jobTemplate: {{spec: {{template: {{spec: {{containers: [{{name: main, image: busybox}}]}}}}}}}}
"#
    ))
    .unwrap()
}

async fn set_run_status(client: &Client, name: &str, status: Value) {
    Api::<JobRun>::namespaced(client.clone(), NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
}

async fn fixture(client: &Client) {
    let schedules: Api<Schedule> = Api::namespaced(client.clone(), NS);
    for (name, team) in [("a", "data"), ("b", "data"), ("c", "web")] {
        schedules
            .create(&PostParams::default(), &schedule(name, team))
            .await
            .unwrap();
    }
    let runs: Api<JobRun> = Api::namespaced(client.clone(), NS);
    for (name, phase) in [("a-1", "Succeeded"), ("a-2", "Running"), ("b-1", "Pending")] {
        let fire = match name {
            "a-1" => "2026-01-01T09:00:00Z",
            _ => "2026-01-02T09:00:00Z",
        };
        runs.create(&PostParams::default(), &run_of(&name[..1], name, fire))
            .await
            .unwrap();
        set_run_status(client, name, json!({"phase": phase, "duration": "2s"})).await;
    }
}

async fn paused(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = Api::<Schedule>::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| s.spec.paused)
        .map(|s| kube::ResourceExt::name_any(&s))
        .collect();
    names.sort();
    names
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn pause_and_resume_take_a_selector_or_all_and_o_name_prints_names() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let scope = Scope::namespace(NS);
    let by_team = Targets {
        selector: Some("team=data".into()),
        ..Targets::default()
    };
    let mut out = Vec::new();
    horolog_kubectl::pause_targets(&client, &scope, &by_team, &mut out)
        .await
        .unwrap();
    assert_eq!(paused(&client).await, ["a", "b"]);
    assert_eq!(
        text(out),
        "schedule/a: spec.paused: false -> true\nschedule/b: spec.paused: false -> true\n"
    );
    let all = Targets {
        all: true,
        ..Targets::default()
    };
    let mut out = Vec::new();
    let names = scope.clone().with_output(Format::Name);
    horolog_kubectl::resume_targets(&client, &names, &all, "v", &mut out)
        .await
        .unwrap();
    assert!(paused(&client).await.is_empty());
    assert_eq!(
        text(out),
        "schedule.horolog.dev/a\nschedule.horolog.dev/b\nschedule.horolog.dev/c\n"
    );
    let nothing = Targets {
        selector: Some("team=none".into()),
        ..Targets::default()
    };
    let err = horolog_kubectl::pause_targets(&client, &scope, &nothing, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no Schedule matches -l team=none in namespace default"
    );
    let both = Targets {
        all: true,
        ..Targets::named(&["a"])
    };
    let err = horolog_kubectl::pause_targets(&client, &scope, &both, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not more than one"), "{err}");
}

#[tokio::test]
async fn cancel_all_cancels_the_unfinished_runs_only() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let scope = Scope::namespace(NS).with_output(Format::Name);
    let all = Targets {
        all: true,
        ..Targets::default()
    };
    let mut out = Vec::new();
    horolog_kubectl::cancel_targets(&client, &scope, &all, "me", &mut out)
        .await
        .unwrap();
    assert_eq!(text(out), "jobrun.horolog.dev/a-2\njobrun.horolog.dev/b-1\n");
    let runs = Api::<JobRun>::namespaced(client.clone(), NS);
    for (name, cancelled) in [("a-1", false), ("a-2", true), ("b-1", true)] {
        let run = runs.get(name).await.unwrap();
        assert_eq!(run.cancel_requested().is_some(), cancelled, "{name}");
    }
}

#[tokio::test]
async fn history_prints_jsonpath_wide_and_name() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let args = HistoryArgs {
        schedule: "a".into(),
        failed: false,
        limit: None,
        watch: false,
    };
    let run = async |format: Format| {
        let mut out = Vec::new();
        horolog_kubectl::history(
            &client,
            &Scope::namespace(NS).with_output(format),
            &args,
            &mut out,
        )
        .await
        .unwrap();
        text(out)
    };
    assert_eq!(run(Format::JsonPath("{.items[*].name}".into())).await, "a-2 a-1");
    assert_eq!(
        run(Format::Name).await,
        "jobrun.horolog.dev/a-2\njobrun.horolog.dev/a-1\n"
    );
    let wide = run(Format::Wide).await;
    assert!(
        wide.starts_with("NAME  FIRE TIME                  PHASE      REASON  DURATION"),
        "{wide}"
    );
}

/// A writer the test reads while a watch writes to it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, what: &str) {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while !self.text().contains(what) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{what:?} never came: {}", self.text());
    }
}

#[tokio::test]
async fn history_watch_prints_a_run_again_when_it_changes() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let args = HistoryArgs {
        schedule: "a".into(),
        failed: false,
        limit: None,
        watch: true,
    };
    let out = Shared::default();
    let mut writer = out.clone();
    let scope = Scope::namespace(NS);
    let watching = horolog_kubectl::history(&client, &scope, &args, &mut writer);
    let change = async {
        out.wait_for("a-1").await;
        set_run_status(
            &client,
            "a-2",
            json!({"phase": "Failed", "duration": "7s", "exitCode": 3}),
        )
        .await;
        out.wait_for("Failed").await;
    };
    tokio::select! {
        ended = watching => panic!("the watch ended: {ended:?}"),
        () = change => {}
    }
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header, two runs, then the change only: {text}");
    assert!(
        lines[3].starts_with("a-2") && lines[3].contains("Failed") && lines[3].contains("7s"),
        "{text}"
    );
}

#[tokio::test]
async fn logs_pass_previous_tail_and_since_to_the_kubelet() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "a-2-1", "namespace": NS},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    set_run_status(&client, "a-2", json!({"podName": "a-2-1"})).await;
    // The in-memory server serves no logs: answer with the query the kubelet was asked.
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let server = server.clone();
        async move {
            if request.uri().path().ends_with("/log") {
                let query = request.uri().query().unwrap_or_default().to_string();
                let body: ResponseBody = http_body_util::Full::new(Bytes::from(query)).boxed_unsync();
                return Ok::<_, std::io::Error>(http::Response::new(body));
            }
            server.oneshot(request).await
        }
    });
    let logs_client = Client::new(service, NS);
    let cli = <Cli as clap::Parser>::try_parse_from([
        "kubectl-horolog",
        "logs",
        "a-2",
        "-p",
        "--tail",
        "5",
        "--since",
        "2m",
    ])
    .unwrap();
    let horolog_kubectl::Command::Logs { args, .. } = cli.command else {
        panic!("not logs");
    };
    let args: LogsArgs = args;
    let mut out = Vec::new();
    horolog_kubectl::logs(&logs_client, &Scope::namespace(NS), &args, &mut out)
        .await
        .unwrap();
    let query = text(out);
    for part in [
        "previous=true",
        "tailLines=5",
        "sinceSeconds=120",
        "container=main",
    ] {
        assert!(query.split('&').any(|p| p == part), "{part} in {query}");
    }
}

#[tokio::test]
async fn completion_offers_verbs_then_names_from_the_cluster() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let words = |line: &str| -> Vec<String> {
        let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
        if line.ends_with(' ') || line.is_empty() {
            words.push(String::new());
        }
        words
    };
    let verbs = candidates(Some(&client), NS, &words("st")).await;
    assert_eq!(verbs, ["status", ":4"]);
    let names = candidates(Some(&client), NS, &words("pause ")).await;
    assert_eq!(names, ["a", "b", "c", ":4"]);
    let runs = candidates(Some(&client), NS, &words("cancel a-")).await;
    assert_eq!(runs, ["a-1", "a-2", ":4"]);
    let offline = candidates(None, NS, &words("history ")).await;
    assert_eq!(offline, [":4"], "no cluster: no names, no error");
    for shell in ["bash", "zsh", "fish"] {
        let cli = <Cli as clap::Parser>::try_parse_from(["kubectl-horolog", "completion", shell]).unwrap();
        let mut out = Vec::new();
        let code = cli
            .run(&mut out, &mut Vec::new(), &mut std::io::empty())
            .await
            .unwrap();
        let script = text(out);
        assert_eq!(code, 0);
        assert!(
            script.contains("kubectl-horolog") && script.contains("status"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn the_krew_manifest_names_both_binaries_and_only_known_placeholders() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/horolog.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "horolog");
    let platforms = manifest["spec"]["platforms"].as_sequence().unwrap();
    assert!(platforms.len() >= 3);
    for platform in platforms {
        let bin = platform["bin"].as_str().unwrap();
        assert!(bin.starts_with("kubectl-horolog"), "{bin}");
        let files = serde_yaml::to_string(&platform["files"]).unwrap();
        assert!(files.contains("kubectl_complete-horolog"), "{files}");
    }
    let placeholders: Vec<&str> = text
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split("}}").next())
        .collect();
    assert!(!placeholders.is_empty());
    for placeholder in placeholders {
        assert!(
            placeholder == "VERSION" || placeholder.starts_with("SHA256_"),
            "unknown placeholder {placeholder}"
        );
    }
}
