//! `kubectl horolog status`: as plain output, through a pseudo-terminal (the real binary under
//! `script`, against the in-memory API server served on a loopback port), and `--watch`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use horolog::api::{JobRun, Schedule};
use horolog::clock::ManualClock;
use horolog_kubectl::status::{StatusArgs, status_at};
use horolog_kubectl::{Format, Scope};
use horolog_memserver::ApiServer;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

mod common;

use common::{NS, run_of};

fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-01-07T07:00:00Z".parse().unwrap()
}

fn schedule(name: &str, paused: bool) -> Schedule {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  paused: {paused}
  trigger: {{cron: "0 9 * * mon-fri", timezone: Europe/Berlin}}
  jobTemplate: {{spec: {{template: {{spec: {{containers: [{{name: main, image: busybox}}]}}}}}}}}
"#
    ))
    .unwrap()
}

fn condition(type_: &str, status: &str, reason: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": format!("{type_} {reason}"),
           "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1})
}

async fn set_status<K>(client: &Client, name: &str, status: Value)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), NS)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
}

/// Five Schedules, one in each state; `nightly` has three finished runs (S F S), one running
/// and one pending.
async fn fixture(client: &Client) {
    let schedules: Api<Schedule> = Api::namespaced(client.clone(), NS);
    let runs: Api<JobRun> = Api::namespaced(client.clone(), NS);
    let ready = condition("Ready", "True", "Scheduled");
    for (name, paused, conditions) in [
        (
            "nightly",
            false,
            json!([ready, condition("LastRunSucceeded", "True", "Succeeded")]),
        ),
        (
            "held",
            true,
            json!([
                condition("Ready", "True", "Paused"),
                condition("Paused", "True", "Paused")
            ]),
        ),
        (
            "broken",
            false,
            json!([condition("Ready", "False", "InvalidTrigger")]),
        ),
        (
            "flaky",
            false,
            json!([
                condition("Ready", "False", "TooManyFailures"),
                condition("Paused", "True", "TooManyFailures")
            ]),
        ),
        (
            "done",
            false,
            json!([ready, condition("Finished", "True", "MaxRunsReached")]),
        ),
        (
            "skipping",
            false,
            json!([ready, condition("LastRunSucceeded", "False", "Skipped")]),
        ),
        (
            "failed",
            false,
            json!([ready, condition("LastRunSucceeded", "False", "Failed")]),
        ),
    ] {
        schedules
            .create(&PostParams::default(), &schedule(name, paused))
            .await
            .unwrap();
        let mut status = json!({"conditions": conditions});
        if name == "nightly" {
            status["nextFireTime"] = json!("2026-01-07T08:00:00Z");
            status["trigger"] = json!("cron 0 9 * * mon-fri");
        }
        set_status::<Schedule>(client, name, status).await;
    }
    for (name, fire, status) in [
        (
            "nightly-1",
            "2026-01-02T08:00:00Z",
            json!({"phase": "Succeeded", "duration": "12s"}),
        ),
        (
            "nightly-2",
            "2026-01-05T08:00:00Z",
            json!({"phase": "Failed", "duration": "3s", "reason": "BackoffLimitExceeded"}),
        ),
        (
            "nightly-3",
            "2026-01-06T08:00:00Z",
            json!({"phase": "Succeeded", "duration": "9s"}),
        ),
        ("nightly-4", "2026-01-06T08:00:01Z", json!({"phase": "Running"})),
        ("nightly-5", "2026-01-06T08:00:02Z", json!({"phase": "Pending"})),
        ("flaky-1", "2026-01-05T08:00:00Z", json!({"phase": "Missed"})),
        ("flaky-2", "2026-01-06T08:00:00Z", json!({"phase": "Cancelled"})),
        ("done-1", "2026-01-06T08:00:00Z", json!({"phase": "Skipped"})),
    ] {
        let schedule = name.split('-').next().unwrap();
        runs.create(&PostParams::default(), &run_of(schedule, name, fire))
            .await
            .unwrap();
        set_status::<JobRun>(client, name, status).await;
    }
}

fn server() -> ApiServer {
    ApiServer::with_crds(Arc::new(ManualClock::new(t0())), &horolog::crd::crds())
}

async fn plain(client: &Client, scope: &Scope, args: &StatusArgs) -> String {
    let mut out = Vec::new();
    let code = status_at(client, scope, args, &now, &mut out).await.unwrap();
    assert_eq!(code, 0);
    String::from_utf8(out).unwrap()
}

fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
}

#[tokio::test]
async fn status_shows_state_next_fire_last_run_counts_and_the_outcome_letters() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let text = plain(&client, &Scope::namespace(NS), &StatusArgs::default()).await;
    assert!(text.starts_with("NAME      STATE     NEXT FIRE"), "{text}");
    let nightly: Vec<&str> = line_of(&text, "nightly").split_whitespace().collect();
    assert_eq!(
        nightly,
        [
            "nightly",
            "Active",
            "2026-01-07T09:00:00+01:00",
            "(in",
            "60m)",
            "Succeeded",
            "9s",
            "1",
            "1",
            "SFS"
        ],
        "{text}"
    );
    assert!(line_of(&text, "held").contains(" Paused "), "{text}");
    assert!(line_of(&text, "broken").contains(" Invalid "), "{text}");
    assert!(line_of(&text, "flaky").contains(" Failing "), "{text}");
    assert!(line_of(&text, "flaky").trim_end().ends_with("MC"), "{text}");
    assert!(line_of(&text, "done").contains(" Finished "), "{text}");
    assert!(line_of(&text, "done").trim_end().ends_with(" K"), "{text}");
    assert!(
        line_of(&text, "skipping").contains(" Active "),
        "a skipped run is no failure: {text}"
    );
    assert!(line_of(&text, "failed").contains(" Failing "), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no escape codes when not a terminal: {text:?}"
    );

    // -l, -o json, -o name, -o jsonpath
    let json_scope = Scope::namespace(NS).with_output(Format::Json);
    let rows: Value =
        serde_json::from_str(&plain(&client, &json_scope, &StatusArgs::default()).await).unwrap();
    let states: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("broken", "Invalid"),
            ("done", "Finished"),
            ("failed", "Failing"),
            ("flaky", "Failing"),
            ("held", "Paused"),
            ("nightly", "Active"),
            ("skipping", "Active")
        ]
    );
    let names = plain(
        &client,
        &Scope::namespace(NS).with_output(Format::Name),
        &StatusArgs::default(),
    )
    .await;
    assert!(names.starts_with("schedule.horolog.dev/broken\n"), "{names}");
    let path = Scope::namespace(NS).with_output(Format::JsonPath("{.items[*].outcomes}".into()));
    assert_eq!(
        plain(&client, &path, &StatusArgs::default()).await,
        " K  MC  SFS "
    );
}

#[tokio::test]
async fn status_of_one_schedule_lists_upcoming_fire_times_runs_and_warning_events() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "nightly.1", "namespace": NS},
        "eventTime": "2026-01-05T08:00:05.000000Z",
        "type": "Warning", "reason": "Failed", "note": "jobrun nightly-2 failed: exit code 2",
        "action": "Finished", "reportingController": "horolog.dev/operator", "reportingInstance": "x",
        "regarding": {"apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule", "name": "nightly", "namespace": NS}
    }))
    .unwrap();
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    let args = StatusArgs {
        schedule: Some("nightly".into()),
        ..StatusArgs::default()
    };
    let text = plain(&client, &Scope::namespace(NS), &args).await;
    assert!(text.contains("Upcoming fire times (Europe/Berlin):"), "{text}");
    assert!(text.contains("2026-01-07T09:00:00+01:00  in 60m"), "{text}");
    assert!(text.contains("2026-01-08T09:00:00+01:00"), "{text}");
    let upcoming = text
        .split("Upcoming")
        .nth(1)
        .unwrap()
        .split("Runs")
        .next()
        .unwrap();
    assert!(
        !upcoming.contains("ago"),
        "fire times before now are not upcoming: {text}"
    );
    let runs = text.split("Runs (newest first):").nth(1).unwrap();
    let order: Vec<&str> = runs
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("nightly-"))
        .collect();
    assert_eq!(
        order,
        ["nightly-5", "nightly-4", "nightly-3", "nightly-2", "nightly-1"],
        "{text}"
    );
    assert!(runs.contains("Failed     3s"), "{text}");
    assert!(
        text.contains(
            "Warning Events (newest first):\n  46h ago  Failed  jobrun nightly-2 failed: exit code 2"
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("\nNAME ").count() + usize::from(text.starts_with("NAME ")),
        1
    );
}

/// A writer the test reads while `status --watch` writes to it.
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

    /// Waits (at most 20 s) until the output holds `what` `times` times.
    async fn wait_for(&self, what: &str, times: usize) {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while self.text().matches(what).count() < times {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{what:?} {times} times never came: {}",
            self.text()
        );
    }
}

#[tokio::test]
async fn status_watch_redraws_on_a_change_in_place_on_a_terminal() {
    let server = server();
    let client = server.client();
    fixture(&client).await;
    let out = Shared::default();
    let args = StatusArgs {
        watch: true,
        terminal: true,
        no_color: true,
        ..StatusArgs::default()
    };
    let scope = Scope::namespace(NS);
    let mut writer = out.clone();
    let watching = status_at(&client, &scope, &args, &now, &mut writer);
    let change = async {
        out.wait_for("nightly ", 1).await;
        Api::<Schedule>::namespaced(client.clone(), NS)
            .patch(
                "nightly",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"paused": true}})),
            )
            .await
            .unwrap();
        set_status::<Schedule>(
            &client,
            "nightly",
            json!({"conditions": [condition("Paused", "True", "Paused")]}),
        )
        .await;
        let redrawn = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let text = out.text();
                let last = text
                    .rsplit("\x1b[H\x1b[2J")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if text.matches("\x1b[H\x1b[2J").count() >= 2
                    && last
                        .lines()
                        .any(|l| l.starts_with("nightly") && l.contains(" Paused "))
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(redrawn.is_ok(), "no frame with nightly Paused: {:?}", out.text());
    };
    tokio::select! {
        ended = watching => panic!("the watch ended: {ended:?}"),
        () = change => {}
    }
    let text = out.text();
    let last = text.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(line_of(last, "nightly").contains(" Paused "), "{text:?}");
    assert!(
        text.starts_with("\x1b[H\x1b[2J"),
        "each frame is drawn from the top: {text:?}"
    );
}

/// Serves `server` over loopback HTTP and writes a kubeconfig for it.
async fn serve(server: ApiServer, dir: &std::path::Path) -> std::path::PathBuf {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = move |request: http::Request<hyper::body::Incoming>| {
        let mut server = server.clone();
        async move {
            use tower::Service;
            match server.call(request).await {
                Ok(response) => response,
                Err(_) => {
                    let mut response = http::Response::new(http_body_util::BodyExt::boxed_unsync(
                        http_body_util::Full::new(bytes::Bytes::new()),
                    ));
                    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    response
                }
            }
        }
    };
    tokio::spawn(horolog::serve::serve(
        listener,
        "the test API",
        handler,
        std::time::Duration::from_millis(10),
        std::future::pending(),
    ));
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://{addr}\nusers:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: {NS}\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    kubeconfig
}

/// Runs the real binary with `args` under `script`, which gives it a pseudo-terminal.
async fn in_a_terminal(args: &str) -> Option<String> {
    let binary = env!("CARGO_BIN_EXE_kubectl-horolog");
    let output = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &format!("{binary} {args}"), "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .output()
        .await
        .ok()?;
    assert!(output.status.success(), "{output:?}");
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_strip_is_colour_blocks_and_no_color_gives_letters() {
    let server = server();
    fixture(&server.client()).await;
    let dir = std::env::temp_dir().join(format!("horolog-status-pty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = serve(server, &dir).await;
    let Some(coloured) = in_a_terminal(&format!("--kubeconfig {} status", kubeconfig.display())).await else {
        eprintln!("`script` (util-linux) is not installed: the pseudo-terminal test cannot run");
        return;
    };
    let nightly = coloured
        .lines()
        .find(|l| l.starts_with("nightly"))
        .unwrap_or_default();
    assert!(
        nightly.contains("\x1b[32m■\x1b[31m■\x1b[32m■\x1b[0m"),
        "green, red, green blocks on a terminal: {coloured:?}"
    );
    assert!(nightly.contains("\x1b[32mActive\x1b[0m"), "{coloured:?}");
    let plain = in_a_terminal(&format!(
        "--kubeconfig {} status --no-color",
        kubeconfig.display()
    ))
    .await
    .unwrap();
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let nightly = plain
        .lines()
        .find(|l| l.starts_with("nightly"))
        .unwrap_or_default();
    assert!(nightly.trim_end().ends_with("SFS"), "{plain:?}");
    std::fs::remove_dir_all(&dir).ok();
}
