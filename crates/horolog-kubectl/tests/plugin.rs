//! `kubectl horolog`: every subcommand driven directly against the in-memory API server (no
//! operator: where one would answer, the test writes the status itself), and the offline
//! ones (`lint`, `convert -f`) on files. Each test name states the behaviour.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use clap::Parser;
use horolog::api::{
    Backfill, CANCEL_ANNOTATION, JobRun, RESUME_ANNOTATION, RUN_NOW_ANNOTATION, SCHEDULE_LABEL, Schedule,
};
use horolog::clock::ManualClock;
use horolog::names::run_now_name;
use horolog_kubectl::{
    self as plugin, BackfillArgs, Cli, ConvertArgs, Error, Format, HistoryArgs, LogsArgs, NextArgs, RunArgs,
    Scope,
};
use horolog_memserver::{ApiServer, ResourceType, ResponseBody};
use http_body_util::BodyExt;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "default";

/// 2026-01-01T00:00:00Z, where the server's clock stands (creation timestamps).
fn t0() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// The in-memory API server (with batch/v1 CronJobs) and a client of it.
struct Cluster {
    server: ApiServer,
    client: Client,
}

impl Cluster {
    fn new() -> Cluster {
        let clock = ManualClock::new(t0());
        let server = ApiServer::with_crds(Arc::new(clock), &horolog::crd::crds());
        server.register(ResourceType::of::<CronJob>());
        let client = server.client();
        Cluster { server, client }
    }

    /// A client whose `pods/{name}/log` requests answer `log of POD container C`, as a kubelet
    /// would with the pod's output (the in-memory server serves no logs).
    fn client_with_logs(&self) -> Client {
        let server = self.server.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let server = server.clone();
            async move {
                let path = request.uri().path().to_string();
                if let Some(pod) = path.strip_suffix("/log").and_then(|p| p.rsplit('/').next()) {
                    let query = request.uri().query().unwrap_or_default().to_string();
                    let container = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("container="))
                        .unwrap_or("?");
                    let follow = query.contains("follow=true");
                    let text = format!("log of {pod} container {container}\nfollow={follow}\n");
                    let body: ResponseBody = http_body_util::Full::new(Bytes::from(text)).boxed_unsync();
                    return Ok::<_, std::io::Error>(http::Response::new(body));
                }
                server.oneshot(request).await
            }
        });
        Client::new(service, NS)
    }

    async fn apply<K>(&self, object: K) -> K
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let namespace = object.namespace().unwrap_or_else(|| NS.to_string());
        Api::<K>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &object)
            .await
            .unwrap()
    }

    /// Merge-patches the status of `name`, as the operator would write it.
    async fn status<K>(&self, name: &str, status: Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), NS)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap();
    }

    async fn schedule(&self, name: &str) -> Schedule {
        Api::<Schedule>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .unwrap()
    }
}

/// A Schedule firing at 09:00 on weekdays in Berlin.
fn weekday_mornings(name: &str) -> Schedule {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  trigger: {{cron: "0 9 * * mon-fri", timezone: Europe/Berlin}}
  jobTemplate: {{spec: {{template: {{spec: {{containers: [{{name: main, image: busybox}}]}}}}}}}}
"#
    ))
    .unwrap()
}

/// A JobRun of `schedule` for `fire_time`, as the operator names and labels it.
fn run_of(schedule: &str, name: &str, fire_time: &str) -> JobRun {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: JobRun
metadata: {{name: {name}, namespace: {NS}, labels: {{"{SCHEDULE_LABEL}": {schedule}}}}}
spec:
  scheduleName: {schedule}
  fireTime: "{fire_time}"
  template: {{spec: {{containers: [{{name: main, image: busybox}}, {{name: sidecar, image: busybox}}]}}}}
"#
    ))
    .unwrap()
}

fn scope() -> Scope {
    Scope::namespace(NS)
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

fn seconds(text: &str) -> horolog::api::Duration {
    text.parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// run

#[tokio::test]
async fn run_sets_a_new_run_now_value_and_prints_the_jobrun_it_asks_for() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let args = RunArgs {
        schedule: "report".into(),
        wait: false,
        timeout: seconds("1h"),
    };
    let value = "2026-01-01T00:00:00.123456789Z";
    let mut out = Vec::new();
    let code = plugin::run(&cluster.client, &scope(), &args, value, &mut out)
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(text(out), format!("{}\n", run_now_name("report", value)));
    let schedule = cluster.schedule("report").await;
    assert_eq!(schedule.annotation(RUN_NOW_ANNOTATION), Some(value));
}

/// Serves the run-now value on `schedule` as the operator would: creates the JobRun, then
/// writes `running` and `ended` as its status.
async fn operator_runs_it(cluster: &Cluster, schedule: &str, ended: Value) {
    let value = loop {
        if let Some(value) = cluster.schedule(schedule).await.annotation(RUN_NOW_ANNOTATION) {
            break value.to_string();
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    };
    let name = run_now_name(schedule, &value);
    cluster
        .apply(run_of(schedule, &name, "2026-01-01T00:00:00Z"))
        .await;
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    cluster
        .status::<JobRun>(&name, json!({"phase": "Running", "podName": format!("{name}-1")}))
        .await;
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    cluster.status::<JobRun>(&name, ended).await;
}

async fn run_and_wait(cluster: &Cluster, ended: Value) -> (u8, String) {
    let args = RunArgs {
        schedule: "report".into(),
        wait: true,
        timeout: seconds("10s"),
    };
    let (scope, mut out) = (scope(), Vec::new());
    let (code, ()) = tokio::join!(
        plugin::run(&cluster.client, &scope, &args, "v1", &mut out),
        operator_runs_it(cluster, "report", ended)
    );
    (code.unwrap(), text(out))
}

#[tokio::test]
async fn run_wait_follows_the_run_and_exits_with_its_exit_code() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let (code, out) = run_and_wait(
        &cluster,
        json!({"phase": "Failed", "reason": "BackoffLimitExceeded", "message": "pod exited 3",
               "exitCode": 3, "duration": "4s", "result": "boom"}),
    )
    .await;
    assert_eq!(code, 3);
    let name = run_now_name("report", "v1");
    assert_eq!(
        out,
        format!("{name}\nFailed (BackoffLimitExceeded): exit code 3 after 4s: pod exited 3\nboom\n")
    );
}

#[tokio::test]
async fn run_wait_exits_zero_and_prints_the_result_of_a_succeeded_run() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let (code, out) = run_and_wait(
        &cluster,
        json!({"phase": "Succeeded", "reason": "Succeeded", "exitCode": 0, "duration": "12s",
               "result": "42 rows\n"}),
    )
    .await;
    assert_eq!(code, 0);
    let name = run_now_name("report", "v1");
    assert_eq!(
        out,
        format!("{name}\nSucceeded: exit code 0 after 12s\n42 rows\n")
    );
}

#[tokio::test]
async fn run_wait_exits_one_for_a_run_that_ended_without_an_exit_code() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let (code, out) = run_and_wait(
        &cluster,
        json!({"phase": "Cancelled", "reason": "Cancelled", "message": "cancelled by alice"}),
    )
    .await;
    assert_eq!(code, 1);
    assert!(out.ends_with("\nCancelled: cancelled by alice\n"), "{out}");
}

#[tokio::test]
async fn run_wait_gives_up_after_the_timeout_and_says_what_it_waited_for() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let args = RunArgs {
        schedule: "report".into(),
        wait: true,
        timeout: seconds("300ms"),
    };
    let err = plugin::run(&cluster.client, &scope(), &args, "v1", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "timed out after 300ms waiting for jobrun {} to finish (the operator has not created it)",
            run_now_name("report", "v1")
        )
    );
}

// ---------------------------------------------------------------------------------------
// unknown names, -A

#[tokio::test]
async fn an_unknown_schedule_names_the_closest_ones_in_its_namespace() {
    let cluster = Cluster::new();
    for name in [
        "nightly-report",
        "nightly-export",
        "weekly-report",
        "hourly-cleanup",
    ] {
        cluster.apply(weekday_mornings(name)).await;
    }
    let mut elsewhere = weekday_mornings("nightly-reprot");
    elsewhere.metadata.namespace = Some("other".into());
    cluster.apply(elsewhere).await;
    let err = plugin::pause(&cluster.client, &scope(), "nightly-reprot", &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        r#"Schedule "nightly-reprot" not found in namespace "default"; did you mean nightly-report, nightly-export or weekly-report?"#
    );
    let err = plugin::pause(&cluster.client, &Scope::namespace("empty"), "x", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Schedule "x" not found in namespace "empty"; there are no Schedules in it"#
    );
}

#[tokio::test]
async fn all_namespaces_finds_a_name_that_is_unique_and_refuses_one_that_is_not() {
    let cluster = Cluster::new();
    for (namespace, name) in [("team-a", "report"), ("team-b", "report"), ("team-b", "cleanup")] {
        let mut schedule = weekday_mornings(name);
        schedule.metadata.namespace = Some(namespace.into());
        cluster.apply(schedule).await;
    }
    let everywhere = Scope {
        all_namespaces: true,
        ..scope()
    };
    let mut out = Vec::new();
    plugin::pause(&cluster.client, &everywhere, "cleanup", &mut out)
        .await
        .unwrap();
    assert_eq!(text(out), "schedule/cleanup: spec.paused: false -> true\n");
    let paused = Api::<Schedule>::namespaced(cluster.client.clone(), "team-b")
        .get("cleanup")
        .await
        .unwrap();
    assert!(paused.spec.paused);
    let err = plugin::pause(&cluster.client, &everywhere, "report", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Schedule "report" exists in namespaces team-a, team-b: choose one with -n"#
    );
    let err = plugin::pause(&cluster.client, &everywhere, "clean", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Schedule "clean" not found in any namespace; did you mean team-b/cleanup, team-a/report or team-b/report?"#
    );
}

#[tokio::test]
async fn a_server_without_the_crds_is_told_to_install_them() {
    let server = ApiServer::new(Arc::new(ManualClock::new(t0())));
    let err = plugin::pause(&server.client(), &scope(), "report", &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server does not serve Schedules: are horolog's CRDs installed? (kubectl apply --server-side -f crds/)"
    );
}

// ---------------------------------------------------------------------------------------
// pause, resume, cancel

#[tokio::test]
async fn pause_sets_spec_paused_and_says_what_changed_once() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let mut out = Vec::new();
    let code = plugin::pause(&cluster.client, &scope(), "report", &mut out)
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(cluster.schedule("report").await.spec.paused);
    plugin::pause(&cluster.client, &scope(), "report", &mut out)
        .await
        .unwrap();
    assert_eq!(
        text(out),
        "schedule/report: spec.paused: false -> true\nschedule/report: spec.paused is already true; nothing changed\n"
    );
}

#[tokio::test]
async fn resume_unpauses_and_changes_nothing_on_a_schedule_that_fires() {
    let cluster = Cluster::new();
    let mut paused = weekday_mornings("report");
    paused.spec.paused = true;
    cluster.apply(paused).await;
    let mut out = Vec::new();
    plugin::resume(&cluster.client, &scope(), "report", "v", &mut out)
        .await
        .unwrap();
    plugin::resume(&cluster.client, &scope(), "report", "v", &mut out)
        .await
        .unwrap();
    assert_eq!(
        text(out),
        "schedule/report: spec.paused: true -> false\nschedule/report: spec.paused is already false and it is not stopped by failures; nothing changed\n"
    );
    let schedule = cluster.schedule("report").await;
    assert!(!schedule.spec.paused);
    assert_eq!(schedule.annotation(RESUME_ANNOTATION), None);
}

#[tokio::test]
async fn resume_after_too_many_failures_sets_a_new_resume_value() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    cluster
        .status::<Schedule>(
            "report",
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "TooManyFailures",
                "message": "3 consecutive runs failed", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        )
        .await;
    let mut out = Vec::new();
    let value = "2026-01-02T00:00:00.000000001Z";
    plugin::resume(&cluster.client, &scope(), "report", value, &mut out)
        .await
        .unwrap();
    assert_eq!(
        text(out),
        format!(
            "schedule/report: annotation {RESUME_ANNOTATION}: {value} (it had stopped firing: 3 consecutive runs failed)\n"
        )
    );
    assert_eq!(
        cluster.schedule("report").await.annotation(RESUME_ANNOTATION),
        Some(value)
    );
}

#[tokio::test]
async fn cancel_sets_the_cancel_annotation_once_and_leaves_finished_runs_alone() {
    let cluster = Cluster::new();
    cluster
        .apply(run_of("report", "report-1", "2026-01-01T08:00:00Z"))
        .await;
    cluster
        .status::<JobRun>("report-1", json!({"phase": "Running"}))
        .await;
    cluster
        .apply(run_of("report", "report-2", "2026-01-01T09:00:00Z"))
        .await;
    cluster
        .status::<JobRun>("report-2", json!({"phase": "Succeeded"}))
        .await;
    let mut out = Vec::new();
    let by = "alice at 2026-01-01T00:00:00Z";
    for run in ["report-1", "report-1", "report-2"] {
        let code = plugin::cancel(&cluster.client, &scope(), run, by, &mut out)
            .await
            .unwrap();
        assert_eq!(code, 0);
    }
    assert_eq!(
        text(out),
        format!(
            "jobrun/report-1: annotation {CANCEL_ANNOTATION}: {by} (it was Running)\n\
             jobrun/report-1: cancel already asked for ({by}); it is Running\n\
             jobrun/report-2 has already finished (Succeeded); nothing to cancel\n"
        )
    );
    let run = Api::<JobRun>::namespaced(cluster.client.clone(), NS)
        .get("report-1")
        .await
        .unwrap();
    assert_eq!(run.cancel_requested(), Some(by));
    let err = plugin::cancel(&cluster.client, &scope(), "report-3", by, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"JobRun "report-3" not found in namespace "default"; did you mean report-1 or report-2?"#
    );
}

// ---------------------------------------------------------------------------------------
// backfill

fn backfill_args(dry_run: bool, timeout: &str) -> BackfillArgs {
    BackfillArgs {
        schedule: "report".into(),
        from: at("2026-01-05T00:00:00Z"),
        to: at("2026-01-08T00:00:00Z"),
        dry_run,
        ignore_exclusions: false,
        name: None,
        timeout: seconds(timeout),
    }
}

#[tokio::test]
async fn backfill_creates_a_backfill_of_the_range_with_a_generated_name() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let mut out = Vec::new();
    let code = plugin::backfill(&cluster.client, &scope(), &backfill_args(false, "1s"), &mut out)
        .await
        .unwrap();
    assert_eq!(code, 0);
    let backfills = Api::<Backfill>::namespaced(cluster.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert_eq!(backfills.len(), 1);
    let backfill = &backfills[0];
    let name = backfill.name_any();
    assert!(name.starts_with("report-backfill-"), "{name}");
    assert_eq!(backfill.spec.schedule_name, "report");
    assert_eq!(
        (backfill.spec.from, backfill.spec.to, backfill.spec.dry_run),
        (at("2026-01-05T00:00:00Z"), at("2026-01-08T00:00:00Z"), false)
    );
    assert_eq!(
        text(out),
        format!(
            "backfill/{name} created: the fire times of schedule report from 2026-01-05T00:00:00+00:00 to 2026-01-08T00:00:00+00:00 (follow it with kubectl get backfill {name} -w)\n"
        )
    );
}

/// Answers the first dry-run Backfill as the operator would.
async fn operator_previews(cluster: &Cluster, preview: &[&str]) {
    let api = Api::<Backfill>::namespaced(cluster.client.clone(), NS);
    let name = loop {
        if let Some(backfill) = api.list(&Default::default()).await.unwrap().items.first() {
            break backfill.name_any();
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    };
    cluster
        .status::<Backfill>(
            &name,
            json!({"phase": "Complete", "fireTimes": preview.len(), "preview": preview}),
        )
        .await;
}

#[tokio::test]
async fn backfill_dry_run_prints_the_fire_times_the_operator_lists_and_deletes_the_backfill() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let times = [
        "2026-01-05T08:00:00Z",
        "2026-01-06T08:00:00Z",
        "2026-01-07T08:00:00Z",
    ];
    let (scope, args, mut out) = (scope(), backfill_args(true, "10s"), Vec::new());
    let (code, ()) = tokio::join!(
        plugin::backfill(&cluster.client, &scope, &args, &mut out),
        operator_previews(&cluster, &times)
    );
    assert_eq!(code.unwrap(), 0);
    assert_eq!(
        text(out),
        "schedule/report has 3 fire times from 2026-01-05T01:00:00+01:00 to 2026-01-08T01:00:00+01:00 (exclusive):\n\
         #  FIRE TIME\n\
         1  2026-01-05T09:00:00+01:00\n\
         2  2026-01-06T09:00:00+01:00\n\
         3  2026-01-07T09:00:00+01:00\n"
    );
    let left = Api::<Backfill>::namespaced(cluster.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(left.is_empty(), "a dry run leaves nothing behind");
}

#[tokio::test]
async fn backfill_dry_run_as_json_lists_the_count_and_the_preview() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let (scope, args, mut out) = (
        scope().with_output(Format::Json),
        backfill_args(true, "10s"),
        Vec::new(),
    );
    let (code, ()) = tokio::join!(
        plugin::backfill(&cluster.client, &scope, &args, &mut out),
        operator_previews(&cluster, &["2026-01-05T08:00:00Z"])
    );
    assert_eq!(code.unwrap(), 0);
    let json: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        json,
        json!({"schedule": "report", "from": "2026-01-05T01:00:00+01:00", "to": "2026-01-08T01:00:00+01:00",
               "fireTimes": 1, "preview": ["2026-01-05T09:00:00+01:00"]})
    );
}

#[tokio::test]
async fn backfill_dry_run_says_so_when_the_operator_does_not_answer_in_time() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let err = plugin::backfill(
        &cluster.client,
        &scope(),
        &backfill_args(true, "200ms"),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "timed out after 200ms waiting for the operator to answer the dry run backfill/report-dry-run-"
        ),
        "{shown}"
    );
    assert!(shown.contains("(is it running?)"), "{shown}");
}

#[tokio::test]
async fn backfill_refuses_a_range_that_ends_before_it_starts_and_creates_nothing() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let mut args = backfill_args(false, "1s");
    std::mem::swap(&mut args.from, &mut args.to);
    let err = plugin::backfill(&cluster.client, &scope(), &args, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--from 2026-01-08T00:00:00+00:00 --to 2026-01-05T00:00:00+00:00: to must be after from"
    );
    let backfills = Api::<Backfill>::namespaced(cluster.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    assert!(backfills.items.is_empty());
}

// ---------------------------------------------------------------------------------------
// history

async fn three_runs(cluster: &Cluster) {
    cluster.apply(weekday_mornings("report")).await;
    for (name, fire, status) in [
        (
            "report-1767600000",
            "2026-01-05T08:00:00Z",
            json!({"phase": "Succeeded", "duration": "12s", "exitCode": 0, "result": "42 rows\nand more"}),
        ),
        (
            "report-1767686400",
            "2026-01-06T08:00:00Z",
            json!({"phase": "Failed", "reason": "BackoffLimitExceeded", "duration": "3s", "exitCode": 2,
                   "result": "a very long error message that does not fit in the column"}),
        ),
        (
            "report-1767772800",
            "2026-01-07T08:00:00Z",
            json!({"phase": "Missed", "reason": "StartDeadlineExceeded"}),
        ),
    ] {
        cluster.apply(run_of("report", name, fire)).await;
        cluster.status::<JobRun>(name, status).await;
    }
    // Another Schedule's run is not in the history.
    cluster
        .apply(run_of("other", "other-1767600000", "2026-01-08T08:00:00Z"))
        .await;
}

#[tokio::test]
async fn history_lists_the_runs_newest_first_with_phase_duration_exit_and_result() {
    let cluster = Cluster::new();
    three_runs(&cluster).await;
    let args = HistoryArgs {
        schedule: "report".into(),
        failed: false,
        limit: None,
        watch: false,
    };
    let mut out = Vec::new();
    let code = plugin::history(&cluster.client, &scope(), &args, &mut out)
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        text(out),
        "NAME               FIRE TIME                  PHASE      DURATION  EXIT  RESULT\n\
         report-1767772800  2026-01-07T09:00:00+01:00  Missed     -         -\n\
         report-1767686400  2026-01-06T09:00:00+01:00  Failed     3s        2     a very long error message that does n...\n\
         report-1767600000  2026-01-05T09:00:00+01:00  Succeeded  12s       0     42 rows...\n"
    );
}

#[tokio::test]
async fn history_failed_keeps_the_runs_that_did_not_succeed_and_limit_the_newest() {
    let cluster = Cluster::new();
    three_runs(&cluster).await;
    let args = HistoryArgs {
        schedule: "report".into(),
        failed: true,
        limit: Some(1),
        watch: false,
    };
    let mut out = Vec::new();
    plugin::history(
        &cluster.client,
        &scope().with_output(Format::Json),
        &args,
        &mut out,
    )
    .await
    .unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        json,
        json!([{"name": "report-1767772800", "fireTime": "2026-01-07T09:00:00+01:00", "phase": "Missed",
                "reason": "StartDeadlineExceeded"}])
    );
}

#[tokio::test]
async fn history_as_yaml_has_every_field_and_the_whole_result() {
    let cluster = Cluster::new();
    three_runs(&cluster).await;
    let args = HistoryArgs {
        schedule: "report".into(),
        failed: false,
        limit: None,
        watch: false,
    };
    let mut out = Vec::new();
    plugin::history(
        &cluster.client,
        &scope().with_output(Format::Yaml),
        &args,
        &mut out,
    )
    .await
    .unwrap();
    let yaml: Value = serde_yaml::from_slice(&out).unwrap();
    assert_eq!(yaml.as_array().map(Vec::len), Some(3));
    assert_eq!(
        yaml[2],
        json!({"name": "report-1767600000", "fireTime": "2026-01-05T09:00:00+01:00", "phase": "Succeeded",
               "duration": "12s", "exitCode": 0, "result": "42 rows\nand more"})
    );
}

#[tokio::test]
async fn history_of_a_schedule_without_runs_says_so() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let args = HistoryArgs {
        schedule: "report".into(),
        failed: false,
        limit: None,
        watch: false,
    };
    let mut out = Vec::new();
    plugin::history(&cluster.client, &scope(), &args, &mut out)
        .await
        .unwrap();
    assert_eq!(text(out), "schedule/report in namespace default has no JobRuns\n");
}

// ---------------------------------------------------------------------------------------
// next

#[tokio::test]
async fn next_counts_from_the_status_cursor_in_the_trigger_zone() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    // Friday 09:00 in Berlin was the last fire time handled: Monday is next.
    cluster
        .status::<Schedule>("report", json!({"cursor": "2026-01-09T08:00:00Z"}))
        .await;
    let args = NextArgs {
        schedule: "report".into(),
        count: 3,
    };
    let mut out = Vec::new();
    let code = plugin::next(
        &cluster.client,
        &scope(),
        &args,
        at("2026-01-09T08:00:01Z"),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        text(out),
        "SCHEDULE  TIMEZONE       #  FIRE TIME\n\
         report    Europe/Berlin  1  2026-01-12T09:00:00+01:00\n\
         report    Europe/Berlin  2  2026-01-13T09:00:00+01:00\n\
         report    Europe/Berlin  3  2026-01-14T09:00:00+01:00\n"
    );
}

#[tokio::test]
async fn next_falls_back_to_last_fire_time_then_to_the_creation_time() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    let args = NextArgs {
        schedule: "report".into(),
        count: 1,
    };
    let first =
        |out: Vec<u8>| -> Value { serde_json::from_slice::<Value>(&out).unwrap()["fireTimes"].clone() };
    let json = scope().with_output(Format::Json);
    let mut out = Vec::new();
    plugin::next(&cluster.client, &json, &args, t0(), &mut out)
        .await
        .unwrap();
    // Created 2026-01-01 (a Thursday) at 00:00 UTC: the first fire time is that morning.
    assert_eq!(first(out), json!(["2026-01-01T09:00:00+01:00"]));
    cluster
        .status::<Schedule>("report", json!({"lastFireTime": "2026-01-02T08:00:00Z"}))
        .await;
    let mut out = Vec::new();
    plugin::next(&cluster.client, &json, &args, t0(), &mut out)
        .await
        .unwrap();
    assert_eq!(first(out), json!(["2026-01-05T09:00:00+01:00"]));
}

#[tokio::test]
async fn next_says_when_the_schedule_is_paused_and_json_says_it_too() {
    let cluster = Cluster::new();
    let mut paused = weekday_mornings("report");
    paused.spec.paused = true;
    cluster.apply(paused).await;
    let args = NextArgs {
        schedule: "report".into(),
        count: 1,
    };
    let mut out = Vec::new();
    plugin::next(&cluster.client, &scope(), &args, t0(), &mut out)
        .await
        .unwrap();
    assert_eq!(
        text(out),
        "schedule/report is paused: nothing fires until it is resumed (kubectl horolog resume report); the trigger's next fire times:\n\
         SCHEDULE  TIMEZONE       #  FIRE TIME\n\
         report    Europe/Berlin  1  2026-01-01T09:00:00+01:00\n"
    );
    let mut out = Vec::new();
    plugin::next(
        &cluster.client,
        &scope().with_output(Format::Json),
        &args,
        t0(),
        &mut out,
    )
    .await
    .unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["paused"], json!(true));
    assert_eq!(json["finished"], json!(false));
    assert_eq!(json["namespace"], json!("default"));
    assert_eq!(json["timezone"], json!("Europe/Berlin"));
    assert!(json["note"].as_str().unwrap().contains("is paused"));
}

#[tokio::test]
async fn next_says_when_the_trigger_has_no_more_fire_times() {
    let cluster = Cluster::new();
    let mut once = weekday_mornings("once");
    once.spec.trigger.cron = None;
    once.spec.trigger.date = Some("2026-01-02T00:00:00Z".parse().unwrap());
    cluster.apply(once).await;
    cluster
        .status::<Schedule>("once", json!({"cursor": "2026-01-02T00:00:00Z"}))
        .await;
    let args = NextArgs {
        schedule: "once".into(),
        count: 5,
    };
    let mut out = Vec::new();
    plugin::next(&cluster.client, &scope(), &args, t0(), &mut out)
        .await
        .unwrap();
    assert_eq!(
        text(out),
        "schedule/once has finished: its trigger has no more fire times\n\
         SCHEDULE  TIMEZONE       #  FIRE TIME\n\
         once      Europe/Berlin  -  (no more fire times)\n"
    );
}

// ---------------------------------------------------------------------------------------
// logs

async fn pod(cluster: &Cluster, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [{"name": "main", "image": "busybox"}, {"name": "sidecar", "image": "busybox"}]}
    }))
    .unwrap();
    cluster.apply(pod).await;
}

/// What `kubectl horolog logs TARGET [-f] [-c CONTAINER]` prints, or its error.
async fn logs(
    client: &kube::Client,
    target: &str,
    follow: bool,
    container: Option<&str>,
) -> Result<String, plugin::Error> {
    let args = LogsArgs {
        target: target.into(),
        follow,
        container: container.map(String::from),
        previous: false,
        tail: -1,
        since: None,
    };
    let mut out = Vec::new();
    plugin::logs(client, &scope(), &args, &mut out).await?;
    Ok(text(out))
}

#[tokio::test]
async fn logs_of_a_jobrun_read_its_pods_first_container_or_the_one_asked_for() {
    let cluster = Cluster::new();
    cluster
        .apply(run_of("report", "report-1", "2026-01-01T08:00:00Z"))
        .await;
    cluster
        .status::<JobRun>(
            "report-1",
            json!({"phase": "Failed", "podName": "report-1-2", "attempts": 2}),
        )
        .await;
    pod(&cluster, "report-1-2").await;
    let client = cluster.client_with_logs();
    let out = logs(&client, "report-1", false, None).await.unwrap();
    assert_eq!(out, "log of report-1-2 container main\nfollow=false\n");
    let out = logs(&client, "report-1", true, Some("sidecar")).await.unwrap();
    assert_eq!(out, "log of report-1-2 container sidecar\nfollow=true\n");
}

#[tokio::test]
async fn logs_without_a_pod_name_in_status_read_the_pod_of_the_latest_attempt() {
    let cluster = Cluster::new();
    cluster
        .apply(run_of("report", "report-1", "2026-01-01T08:00:00Z"))
        .await;
    pod(&cluster, "report-1-1").await;
    let out = logs(&cluster.client_with_logs(), "report-1", false, None)
        .await
        .unwrap();
    assert_eq!(out, "log of report-1-1 container main\nfollow=false\n");
}

#[tokio::test]
async fn logs_of_a_schedule_read_its_newest_run_that_has_a_pod() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    for (name, fire, status) in [
        (
            "report-1",
            "2026-01-05T08:00:00Z",
            json!({"phase": "Succeeded", "podName": "report-1-1"}),
        ),
        (
            "report-2",
            "2026-01-06T08:00:00Z",
            json!({"phase": "Running", "podName": "report-2-1"}),
        ),
        ("report-3", "2026-01-07T08:00:00Z", json!({"phase": "Waiting"})),
    ] {
        cluster.apply(run_of("report", name, fire)).await;
        cluster.status::<JobRun>(name, status).await;
    }
    pod(&cluster, "report-2-1").await;
    let out = logs(&cluster.client_with_logs(), "report", false, None)
        .await
        .unwrap();
    assert_eq!(out, "log of report-2-1 container main\nfollow=false\n");
}

#[tokio::test]
async fn logs_of_a_run_without_a_pod_say_why_and_an_unknown_name_suggests_runs_and_schedules() {
    let cluster = Cluster::new();
    cluster.apply(weekday_mornings("report")).await;
    cluster
        .apply(run_of("report", "report-1", "2026-01-01T08:00:00Z"))
        .await;
    cluster
        .status::<JobRun>(
            "report-1",
            json!({"phase": "Missed", "message": "its start deadline passed"}),
        )
        .await;
    let client = cluster.client_with_logs();
    let err = logs(&client, "report-1", false, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "jobrun/report-1 has no pod (it is Missed: its start deadline passed)"
    );
    let err = logs(&client, "reprt", false, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"JobRun or Schedule "reprt" not found in namespace "default"; did you mean report or report-1?"#
    );
}

// ---------------------------------------------------------------------------------------
// lint

fn fixture(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("horolog-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn lint(path: &PathBuf) -> (u8, String) {
    let mut out = Vec::new();
    let code = plugin::lint(std::slice::from_ref(path), &mut std::io::empty(), &mut out).unwrap();
    let shown = text(out).replace(&path.display().to_string(), "FILE");
    (code, shown)
}

const TEMPLATE: &str =
    "jobTemplate: {spec: {template: {spec: {containers: [{name: main, image: busybox}]}}}}";

fn schedule_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: horolog.dev/v1alpha1\nkind: Schedule\nmetadata: {{name: {name}}}\nspec:\n{spec}\n")
}

#[test]
fn lint_passes_every_example_and_counts_the_objects() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let objects = horolog::manifest::read_manifests(&examples).unwrap().len();
    let mut out = Vec::new();
    let code = plugin::lint(&[examples], &mut std::io::empty(), &mut out).unwrap();
    assert_eq!(
        (code, text(out)),
        (0, format!("{objects} objects, no problems\n"))
    );
}

#[test]
fn lint_reports_every_problem_one_line_each_naming_field_and_value() {
    let docs = [
        schedule_yaml("bad-cron", &format!("  trigger: {{cron: \"61 * * * *\"}}\n  {TEMPLATE}")),
        schedule_yaml(
            "bad-zone",
            &format!("  trigger: {{cron: \"0 9 * * *\", timezone: Mars/Olympus}}\n  {TEMPLATE}"),
        ),
        schedule_yaml(
            "two-kinds",
            &format!("  trigger: {{cron: \"0 9 * * *\", interval: 1h}}\n  {TEMPLATE}"),
        ),
        schedule_yaml(
            "backwards",
            &format!(
                "  trigger: {{interval: 1h, startTime: \"2026-02-01T00:00:00Z\", endTime: \"2026-01-01T00:00:00Z\"}}\n  {TEMPLATE}"
            ),
        ),
        schedule_yaml(
            "task-and-template",
            &format!("  trigger: {{interval: 1h}}\n  taskRef: {{name: send}}\n  {TEMPLATE}"),
        ),
        schedule_yaml(
            "no-slots",
            &format!("  trigger: {{interval: 1h}}\n  maxRunningJobs: 0\n  {TEMPLATE}"),
        ),
        schedule_yaml(
            "allow-limited",
            &format!("  trigger: {{interval: 1h}}\n  concurrencyPolicy: Allow\n  maxRunningJobs: 2\n  {TEMPLATE}"),
        ),
        schedule_yaml(
            "typos",
            &format!(
                "  trigger: {{interval: 1h, timezon: UTC}}\n  maxRunJobs: 2\n  {}",
                TEMPLATE.replace("image: busybox", "image: busybox, comand: [sh]")
            ),
        ),
        schedule_yaml("bad-duration", &format!("  trigger: {{interval: 5x}}\n  {TEMPLATE}")),
        "apiVersion: horolog.dev/v1alpha1\nkind: JobRun\nmetadata: {generateName: once-}\nspec: {taskRef: {name: t}, backoffLimit: 101}\n".to_string(),
        "apiVersion: horolog.dev/v1alpha1\nkind: Task\nmetadata: {name: send}\nspec: {jobTemplate: {spec: {}}, maxRunningJobs: 0}\n".to_string(),
        "apiVersion: horolog.dev/v1alpha1\nkind: Backfill\nmetadata: {name: rerun}\nspec: {scheduleName: x, from: \"2026-02-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\"}\n".to_string(),
        "apiVersion: horolog.dev/v1\nkind: Schedul\nmetadata: {labes: {a: b}}\n".to_string(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-ours, bogus: 1}\n".to_string(),
    ];
    let path = fixture("bad.yaml", &docs.join("---\n"));
    let (code, out) = lint(&path);
    assert_eq!(code, 1);
    let expected = [
        r#"FILE: Schedule/bad-cron: spec.trigger.cron: "61 * * * *": minute field: value 61 is out of range 0-59"#,
        r#"FILE: Schedule/bad-zone: spec.trigger.timezone: "Mars/Olympus": unknown time zone; use an IANA name such as Europe/Berlin or UTC"#,
        r#"FILE: Schedule/two-kinds: spec.trigger: cron, interval: exactly one of cron, cronFields, interval, date, calendarInterval, anyOf, allOf must be set"#,
        r#"FILE: Schedule/backwards: spec.trigger.endTime: "2026-01-01T00:00:00Z": endTime must be after startTime"#,
        r#"FILE: Schedule/task-and-template: spec: jobTemplate/taskRef: exactly one of jobTemplate and taskRef must be set"#,
        r#"FILE: Schedule/no-slots: spec.maxRunningJobs: 0: must be at least 1 (absent = unlimited)"#,
        r#"FILE: Schedule/allow-limited: spec.concurrencyPolicy: "Allow": concurrencyPolicy Allow means no limit: leave maxRunningJobs out"#,
        r#"FILE: Schedule/typos: spec.maxRunJobs: 2: unknown field; did you mean maxRunningJobs?"#,
        r#"FILE: Schedule/typos: spec.jobTemplate.spec.template.spec.containers[0].comand: ["sh"]: unknown field; did you mean command?"#,
        r#"FILE: Schedule/typos: spec.trigger.timezon: "UTC": unknown field; did you mean timezone?"#,
        r#"FILE: Schedule/bad-duration: spec.trigger.interval: "5x": "5x" is not a duration: unknown unit (write e.g. "90s", "1h30m", "2d", "500ms"; units w d h m s ms)"#,
        r#"FILE: JobRun/(document 10): spec.backoffLimit: 101: must be between 0 and 100"#,
        r#"FILE: Task/send: spec.jobTemplate.spec.template: <absent>: jobTemplate.spec.template is required"#,
        r#"FILE: Task/send: spec.maxRunningJobs: 0: must be at least 1 (absent = no shared limit)"#,
        r#"FILE: Backfill/rerun: spec.to: "2026-01-01T00:00:00Z": to must be after from"#,
        r#"FILE: Schedul/(document 13): apiVersion: "horolog.dev/v1": horolog.dev serves v1alpha1: write apiVersion: horolog.dev/v1alpha1"#,
        r#"FILE: Schedul/(document 13): kind: "Schedul": not a horolog.dev kind (Schedule, JobRun, Task, Backfill, Calendar)"#,
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expected, "\n{out}");
}

#[test]
fn lint_reports_unknown_metadata_fields_and_a_missing_name() {
    let path = fixture(
        "meta.yaml",
        &format!(
            "apiVersion: horolog.dev/v1alpha1\nkind: Schedule\nmetadata: {{labes: {{a: b}}}}\nspec:\n  trigger: {{interval: 1h}}\n  {TEMPLATE}\n"
        ),
    );
    let (code, out) = lint(&path);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "FILE: Schedule/(document 1): metadata.labes: {\"a\":\"b\"}: unknown field\n\
         FILE: Schedule/(document 1): metadata.name: <absent>: is required\n"
    );
}

#[test]
fn lint_reads_standard_input_and_unpacks_a_list() {
    // What `kubectl get hs -o yaml` prints.
    let list = r#"
apiVersion: v1
kind: List
items:
- apiVersion: horolog.dev/v1alpha1
  kind: Schedule
  metadata: {name: a, resourceVersion: "3", creationTimestamp: "2026-01-01T00:00:00Z"}
  spec:
    trigger: {interval: 1h}
    taskRef: {name: t}
  status: {firedCount: 2, cursor: "2026-01-01T01:00:00Z"}
- apiVersion: horolog.dev/v1alpha1
  kind: Schedule
  metadata: {name: b}
  spec:
    trigger: {cron: "0 25 * * *"}
    taskRef: {name: t}
metadata: {resourceVersion: ""}
"#;
    let mut out = Vec::new();
    let code = plugin::lint(&[PathBuf::from("-")], &mut list.as_bytes(), &mut out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(
        text(out),
        "<stdin>: Schedule/b: spec.trigger.cron: \"0 25 * * *\": hour field: value 25 is out of range 0-23\n"
    );
}

#[test]
fn lint_reports_broken_yaml_in_its_place() {
    let path = fixture("broken.yaml", "kind: [\n");
    let (code, out) = lint(&path);
    assert_eq!(code, 1);
    assert!(out.starts_with("FILE: document 1: "), "{out}");
}

#[test]
fn lint_needs_no_cluster_through_the_command_line_either() {
    let cli = Cli::try_parse_from(["kubectl-horolog", "lint", "-f", "-"]).unwrap();
    let schedule = schedule_yaml("ok", &format!("  trigger: {{interval: 1h}}\n  {TEMPLATE}"));
    let mut out = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let code = runtime
        .block_on(cli.run(&mut out, &mut Vec::new(), &mut schedule.as_bytes()))
        .unwrap();
    assert_eq!((code, text(out)), (0, "1 object, no problems\n".to_string()));
}

// ---------------------------------------------------------------------------------------
// convert

/// A CronJob with every field set.
const CRONJOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  namespace: ops
  labels: {team: ops}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}", owner: alice}
spec:
  schedule: "CRON_TZ=Europe/Berlin 30 2 * * *"
  concurrencyPolicy: Forbid
  suspend: true
  startingDeadlineSeconds: 300
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 5
  jobTemplate:
    metadata: {labels: {app: backup}, annotations: {note: nightly}}
    spec:
      backoffLimit: 200
      activeDeadlineSeconds: 3600
      ttlSecondsAfterFinished: 86400
      completions: 3
      parallelism: 2
      completionMode: Indexed
      backoffLimitPerIndex: 1
      maxFailedIndexes: 1
      podFailurePolicy: {rules: [{action: Ignore, onExitCodes: {operator: In, values: [42]}}]}
      successPolicy: {rules: [{succeededCount: 1}]}
      manualSelector: true
      selector: {matchLabels: {app: backup}}
      suspend: true
      podReplacementPolicy: TerminatingOrFailed
      managedBy: kueue.x-k8s.io/multikueue
      template:
        metadata: {labels: {app: backup}}
        spec:
          restartPolicy: OnFailure
          containers: [{name: main, image: busybox, command: [sh, -c, "echo ok"]}]
"#;

const SCHEDULE: &str = r#"apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata:
  annotations:
    owner: alice
  labels:
    team: ops
  name: backup
  namespace: ops
spec:
  trigger:
    cron: 30 2 * * *
    timezone: Europe/Berlin
  paused: true
  coalesce: Latest
  misfireGraceTime: 5m
  maxRunningJobs: 1
  concurrencyPolicy: Skip
  failedRunsHistoryLimit: 5
  jobTemplate:
    metadata:
      labels:
        app: backup
      annotations:
        note: nightly
    spec:
      template:
        metadata:
          labels:
            app: backup
        spec:
          containers:
          - command:
            - sh
            - -c
            - echo ok
            image: busybox
            name: main
      backoffLimit: 100
      activeDeadlineSeconds: 3600
      resultTTL: 1d
"#;

async fn convert_file(path: &Path, scope: &Scope) -> (Result<u8, Error>, String, String) {
    let args = ConvertArgs {
        cronjob: None,
        file: Some(path.to_path_buf()),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = plugin::convert(None, scope, &args, &mut std::io::empty(), &mut out, &mut err).await;
    (code, text(out), text(err))
}

#[tokio::test]
async fn convert_carries_every_cronjob_field_over_and_names_what_it_cannot() {
    let path = fixture("cronjob.yaml", CRONJOB);
    let (code, out, err) = convert_file(&path, &Scope::namespace("")).await;
    assert_eq!(code.unwrap(), 0);
    assert_eq!(out, SCHEDULE);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            r#"cronjob/backup: spec.jobTemplate.spec.template.spec.restartPolicy: "OnFailure": not carried over: a JobRun's pod runs with Never; retries are new pods (backoffLimit)"#,
            r#"cronjob/backup: spec.jobTemplate.spec.backoffLimit: 200: set to 100, the most a JobRun takes"#,
            r#"cronjob/backup: spec.jobTemplate.spec.completions: 3: not carried over: a JobRun runs one pod at a time"#,
            r#"cronjob/backup: spec.jobTemplate.spec.parallelism: 2: not carried over: a JobRun runs one pod at a time"#,
            r#"cronjob/backup: spec.jobTemplate.spec.completionMode: "Indexed": not carried over: a JobRun's pod is not indexed"#,
            r#"cronjob/backup: spec.jobTemplate.spec.backoffLimitPerIndex: 1: not carried over: a JobRun's pod is not indexed"#,
            r#"cronjob/backup: spec.jobTemplate.spec.maxFailedIndexes: 1: not carried over: a JobRun's pod is not indexed"#,
            r#"cronjob/backup: spec.jobTemplate.spec.podFailurePolicy: {"rules":[{"action":"Ignore","onExitCodes":{"operator":"In","values":[42]}}]}: not carried over: every failed attempt counts against backoffLimit"#,
            r#"cronjob/backup: spec.jobTemplate.spec.successPolicy: {"rules":[{"succeededCount":1}]}: not carried over: a run succeeds when its pod does"#,
            r#"cronjob/backup: spec.jobTemplate.spec.podReplacementPolicy: "TerminatingOrFailed": not carried over: a retry starts once the failed pod has ended (as with Failed)"#,
            r#"cronjob/backup: spec.jobTemplate.spec.manualSelector: true: not carried over: a JobRun labels and finds its own pods"#,
            r#"cronjob/backup: spec.jobTemplate.spec.selector: {"matchLabels":{"app":"backup"}}: not carried over: a JobRun labels and finds its own pods"#,
            r#"cronjob/backup: spec.jobTemplate.spec.suspend: true: not carried over: a run starts when due; pause the Schedule instead"#,
            r#"cronjob/backup: spec.jobTemplate.spec.managedBy: "kueue.x-k8s.io/multikueue": not carried over: horolog's operator manages its JobRuns"#,
        ]
    );
    // What it prints is a Schedule lint finds nothing wrong with.
    let converted = fixture("converted.yaml", &out);
    assert_eq!(lint(&converted), (0, "1 object, no problems\n".to_string()));
}

#[tokio::test]
async fn convert_of_a_plain_cronjob_says_allow_and_carries_the_job_default_backoff_limit() {
    let path = fixture(
        "plain.yaml",
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: hourly}
spec:
  schedule: "@hourly"
  timeZone: America/New_York
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
"#,
    );
    let (code, out, err) = convert_file(&path, &Scope::namespace("team-a")).await;
    assert_eq!(code.unwrap(), 0);
    let schedule: Schedule = serde_yaml::from_str(&out).unwrap();
    assert_eq!(
        schedule.metadata.namespace.as_deref(),
        Some("team-a"),
        "-n names the namespace"
    );
    assert_eq!(schedule.spec.trigger.cron.as_deref(), Some("@hourly"));
    assert_eq!(
        schedule.spec.trigger.timezone.as_deref(),
        Some("America/New_York")
    );
    assert_eq!(
        schedule.spec.concurrency_policy,
        Some(horolog::api::ConcurrencyPolicy::Allow)
    );
    assert_eq!(schedule.spec.max_running_jobs, None);
    let job = schedule.spec.job_template.unwrap().spec;
    assert_eq!(job.backoff_limit, Some(6));
    assert_eq!(
        job.template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.restart_policy.as_deref()),
        Some("Never")
    );
    assert_eq!(
        err,
        "cronjob/hourly: spec.jobTemplate.spec.backoffLimit: <absent>: set to 6, the Job default (a Schedule's default is 0: no retries)\n"
    );
}

#[tokio::test]
async fn convert_replace_means_one_running_job_replaced() {
    let path = fixture(
        "replace.yaml",
        &CRONJOB.replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Replace"),
    );
    let (code, out, _) = convert_file(&path, &Scope::namespace("")).await;
    assert_eq!(code.unwrap(), 0);
    let schedule: Schedule = serde_yaml::from_str(&out).unwrap();
    assert_eq!(
        (schedule.spec.max_running_jobs, schedule.spec.concurrency_policy),
        (Some(1), Some(horolog::api::ConcurrencyPolicy::Replace))
    );
}

#[tokio::test]
async fn convert_refuses_what_is_not_a_cronjob() {
    let path = fixture(
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec: {template: {spec: {containers: []}}}\n",
    );
    let (code, out, _) = convert_file(&path, &Scope::namespace("")).await;
    let err = code.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: document 1: a Job (batch/v1), not a CronJob (batch/v1)",
            path.display()
        )
    );
    assert!(out.is_empty());
}

#[tokio::test]
async fn convert_reads_a_cronjob_from_the_cluster_and_prints_json_with_o_json() {
    let cluster = Cluster::new();
    let mut cronjob: CronJob = serde_yaml::from_str(CRONJOB).unwrap();
    cronjob.metadata.namespace = Some(NS.into());
    cluster.apply(cronjob).await;
    let args = ConvertArgs {
        cronjob: Some("cronjob/backup".into()),
        file: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = plugin::convert(
        Some(&cluster.client),
        &scope().with_output(Format::Json),
        &args,
        &mut std::io::empty(),
        &mut out,
        &mut err,
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    let json: Value = serde_json::from_slice(&out).unwrap();
    let expected: Value =
        serde_yaml::from_str(&SCHEDULE.replace("namespace: ops", "namespace: default")).unwrap();
    assert_eq!(json, expected);
    assert_eq!(text(err).lines().count(), 14);
    let args = ConvertArgs {
        cronjob: Some("cronjob/bakup".into()),
        file: None,
    };
    let err = plugin::convert(
        Some(&cluster.client),
        &scope(),
        &args,
        &mut std::io::empty(),
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"CronJob "bakup" not found in namespace "default"; did you mean backup?"#
    );
}

// ---------------------------------------------------------------------------------------
// the command line

#[test]
fn minus_n_is_the_namespace_everywhere_and_next_takes_count() {
    use plugin::Command;
    let cli =
        Cli::try_parse_from(["kubectl-horolog", "next", "report", "-n", "prod", "--count", "3"]).unwrap();
    assert_eq!(cli.namespace_given(), Some("prod"));
    match &cli.command {
        Command::Next { args, .. } => assert_eq!((args.schedule.as_str(), args.count), ("report", 3)),
        other => panic!("parsed as {other:?}"),
    }
    let cli = Cli::try_parse_from(["kubectl-horolog", "-n", "prod", "next", "report"]).unwrap();
    assert_eq!(cli.namespace_given(), Some("prod"));
    match &cli.command {
        Command::Next { args, .. } => assert_eq!(args.count, 10, "the default count"),
        other => panic!("parsed as {other:?}"),
    }
    let err = Cli::try_parse_from(["kubectl-horolog", "next", "report", "--count", "prod"]).unwrap_err();
    assert!(err.to_string().contains("-n prod"), "{err}");
    let cli =
        Cli::try_parse_from(["kubectl-horolog", "history", "report", "-n", "prod", "-o", "yaml"]).unwrap();
    assert_eq!(
        (cli.namespace_given(), cli.output()),
        (Some("prod"), &Format::Yaml)
    );
    let cli = Cli::try_parse_from(["kubectl-horolog", "status", "-o", "jsonpath={.items[*].name}"]).unwrap();
    assert_eq!(cli.output(), &Format::JsonPath("{.items[*].name}".into()));
    assert!(Cli::try_parse_from(["kubectl-horolog", "status", "-o", "jsonpath={.a"]).is_err());
    assert!(Cli::try_parse_from(["kubectl-horolog", "status", "-o", "xml"]).is_err());
    assert!(Cli::try_parse_from(["kubectl-horolog", "convert", "cronjob/a", "-f", "x.yaml"]).is_err());
    let cli = Cli::try_parse_from([
        "kubectl-horolog",
        "logs",
        "r",
        "-p",
        "--tail",
        "5",
        "--since",
        "2m",
    ])
    .unwrap();
    match &cli.command {
        Command::Logs { args, .. } => {
            assert!(args.previous);
            assert_eq!(args.tail, 5);
            assert_eq!(args.since, Some(seconds("120s")));
        }
        other => panic!("parsed as {other:?}"),
    }
    let cli = Cli::try_parse_from(["kubectl-horolog", "pause", "-l", "team=data"]).unwrap();
    match &cli.command {
        Command::Pause { targets, .. } => {
            assert_eq!(targets.selector.as_deref(), Some("team=data"));
            assert!(targets.names.is_empty() && !targets.all);
        }
        other => panic!("parsed as {other:?}"),
    }
}
