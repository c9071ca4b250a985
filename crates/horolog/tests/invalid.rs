//! No object can blind the operator: an object of a watched kind that the operator's types
//! cannot read (an older schema's leftover, a field the CRD kept free-form, a write that
//! bypassed validation) is reported on itself — Ready=False `InvalidSpec` naming the field, a
//! Warning Event — and every other object keeps being served, also after a restart.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, NS, OPERATOR};
use fixtures::*;
use std::sync::Arc;

use horolog::api::{Backfill, JobRun, Schedule, Task};
use horolog::controller::Observer;
use horolog::metrics::Metrics;
use horolog_memserver::RequestMatch;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

/// Where the first container's command of a Schedule's job template is.
const SCHEDULE_COMMAND: &str = "/spec/jobTemplate/spec/template/spec/containers/0/command";
/// The same field path, as the operator names it.
const SCHEDULE_COMMAND_PATH: &str = "spec.jobTemplate.spec.template.spec.containers[0].command";

/// `object` as JSON in the test namespace, with `pointer` set to `value`.
fn broken<K: serde::Serialize>(object: &K, pointer: &str, value: Value) -> Value {
    let mut json = serde_json::to_value(object).unwrap_or_else(|err| panic!("encode: {err}"));
    json["metadata"]["namespace"] = json!(NS);
    *json
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("fixture has no {pointer}")) = value;
    json
}

/// Stores `object` as it is, as an API server that did not check it would.
fn store(cluster: &Cluster, object: Value) {
    cluster
        .server
        .create_unchecked(object)
        .unwrap_or_else(|err| panic!("store: {err:?}"));
}

/// Any object of kind `K`, as stored (its typed form may not decode).
fn raw<K: Resource<DynamicType = ()>>(cluster: &Cluster) -> Api<DynamicObject> {
    Api::namespaced_with(cluster.client.clone(), NS, &ApiResource::erase::<K>(&()))
}

/// `(status, reason, message)` of the Ready condition of `name`, as stored.
async fn ready<K: Resource<DynamicType = ()>>(
    cluster: &Cluster,
    name: &str,
) -> Option<(String, String, String)> {
    let object = raw::<K>(cluster)
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("get {name}: {err}"));
    let conditions = object.data.pointer("/status/conditions")?.as_array()?.clone();
    let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
    let text = |field: &str| ready[field].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The InvalidSpec Events about `name`, as `(type, note)`.
async fn invalid_events(cluster: &Cluster, name: &str) -> Vec<String> {
    cluster
        .events_of(name)
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "InvalidSpec")
        .map(|(_, note)| note)
        .collect()
}

/// Asserts `name` is reported invalid at `path`, once.
async fn assert_reported<K: Resource<DynamicType = ()>>(cluster: &Cluster, name: &str, path: &str) {
    let (status, reason, message) = ready::<K>(cluster, name)
        .await
        .unwrap_or_else(|| panic!("{name} has no Ready condition"));
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidSpec"),
        "{message}"
    );
    assert!(message.contains(path), "the message names {path}: {message}");
    let events = invalid_events(cluster, name).await;
    assert_eq!(events.len(), 1, "one Warning Event: {events:?}");
    assert!(events[0].contains(path), "the Event names {path}: {events:?}");
}

/// Restarts the operator as a new process: empty caches, everything relisted.
async fn restart(cluster: &mut Cluster) {
    cluster.kill_operator().await;
    cluster.start_operator();
    cluster.settle().await;
}

#[tokio::test(start_paused = true)]
async fn a_schedule_whose_command_is_a_string_does_not_stop_other_schedules_after_a_restart() {
    let mut cluster = Cluster::start().await;
    store(
        &cluster,
        broken(&every("bad", "1m"), SCHEDULE_COMMAND, json!("echo hi")),
    );
    cluster.settle().await;
    restart(&mut cluster).await;

    cluster.apply(every("good", "1m")).await;
    cluster.advance(60).await;
    assert_eq!(
        cluster.fire_secs("good").await,
        vec![0, 60],
        "the valid Schedule fires"
    );
    assert_eq!(cluster.fire_secs("bad").await, Vec::<i64>::new());
    assert_reported::<Schedule>(&cluster, "bad", SCHEDULE_COMMAND_PATH).await;

    // Reported once per generation: neither time nor another restart repeats it.
    cluster.advance(120).await;
    restart(&mut cluster).await;
    cluster.advance(60).await;
    assert_reported::<Schedule>(&cluster, "bad", SCHEDULE_COMMAND_PATH).await;
    assert_eq!(cluster.fire_secs("good").await, vec![0, 60, 120, 180, 240]);
}

#[tokio::test(start_paused = true)]
async fn a_schedule_whose_grace_time_overflows_is_reported_and_others_fire() {
    let mut cluster = Cluster::start().await;
    store(
        &cluster,
        broken(
            &every("huge", "1m").grace("1m"),
            "/spec/misfireGraceTime",
            json!("99999999999999w"),
        ),
    );
    restart(&mut cluster).await;
    cluster.apply(every("good", "1m")).await;
    assert_eq!(cluster.fire_secs("good").await, vec![0]);
    assert_reported::<Schedule>(&cluster, "huge", "spec.misfireGraceTime").await;
}

/// The `horolog_invalid_objects` line of `kind` in `metrics`.
fn invalid_gauge(metrics: &Metrics, kind: &str) -> Option<String> {
    let prefix = format!("horolog_invalid_objects{{kind=\"{kind}\"}} ");
    metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_string)
}

#[tokio::test(start_paused = true)]
async fn a_schedule_that_is_fixed_is_served_again_and_its_condition_replaced() {
    let metrics = Metrics::new();
    let observer: Arc<dyn Observer> = Arc::new(metrics.clone());
    let cluster = Cluster::start_with(|config| config.observer = Some(observer)).await;
    store(
        &cluster,
        broken(&every("bad", "1m"), SCHEDULE_COMMAND, json!("echo hi")),
    );
    cluster.settle().await;
    assert_reported::<Schedule>(&cluster, "bad", SCHEDULE_COMMAND_PATH).await;
    assert_eq!(
        invalid_gauge(&metrics, "Schedule").as_deref(),
        Some("horolog_invalid_objects{kind=\"Schedule\"} 1")
    );

    cluster
        .patch_schedule(
            "bad",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["echo", "hi"]}
            ]}}}}}}),
        )
        .await;
    cluster.advance(1).await;
    let (status, reason, _) = ready::<Schedule>(&cluster, "bad").await.unwrap_or_default();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Scheduled"));
    assert!(!cluster.fire_secs("bad").await.is_empty(), "it fires once fixed");
    assert_eq!(
        invalid_gauge(&metrics, "Schedule").as_deref(),
        Some("horolog_invalid_objects{kind=\"Schedule\"} 0")
    );
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_jobrun_does_not_stop_other_runs() {
    let mut cluster = Cluster::start().await;
    store(
        &cluster,
        broken(
            &one_off("bad-run"),
            "/spec/template/spec/containers/0/command",
            json!("echo hi"),
        ),
    );
    restart(&mut cluster).await;
    cluster.create_run(one_off("good-run")).await;
    assert_eq!(cluster.pod_names().await, vec!["good-run-1"]);
    assert_reported::<JobRun>(&cluster, "bad-run", "spec.template.spec.containers[0].command").await;

    // Fixed, it runs, and the condition it can no longer deserve goes.
    raw::<JobRun>(&cluster)
        .patch(
            "bad-run",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["echo", "hi"]}
            ]}}}})),
        )
        .await
        .unwrap_or_else(|err| panic!("fix: {err}"));
    cluster.settle().await;
    assert_eq!(cluster.pod_names().await, vec!["bad-run-1", "good-run-1"]);
    assert_eq!(ready::<JobRun>(&cluster, "bad-run").await, None);
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_task_or_backfill_is_reported_and_schedules_still_fire() {
    let mut cluster = Cluster::start().await;
    store(
        &cluster,
        json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "bad-task", "namespace": NS},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": "main"}}}}},
        }),
    );
    store(
        &cluster,
        json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Backfill",
            "metadata": {"name": "bad-backfill", "namespace": NS},
            "spec": {"scheduleName": "good", "from": 7, "to": "2026-01-01T00:00:00Z"},
        }),
    );
    restart(&mut cluster).await;
    cluster.apply(every("good", "1m")).await;
    assert_eq!(cluster.fire_secs("good").await, vec![0]);
    assert_reported::<Task>(
        &cluster,
        "bad-task",
        "spec.jobTemplate.spec.template.spec.containers",
    )
    .await;
    assert_reported::<Backfill>(&cluster, "bad-backfill", "spec.from").await;
    assert_eq!(
        raw::<Task>(&cluster)
            .get("bad-task")
            .await
            .map(|t| t.name_any())
            .ok(),
        Some("bad-task".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn a_relist_with_an_unreadable_schedule_reports_nothing_again_and_serves_the_rest() {
    let cluster = Cluster::start().await;
    cluster.apply(every("before", "1m")).await;
    store(
        &cluster,
        broken(&every("bad", "1m"), SCHEDULE_COMMAND, json!("echo hi")),
    );
    cluster.settle().await;
    // The watch of Schedules is dropped and its resume is refused as expired: a relist.
    let schedule_watches = RequestMatch::any().verb("watch").resource("schedules");
    cluster.server.faults().fail(schedule_watches, 1, 410);
    cluster.server.faults().drop_watches();
    cluster.settle().await;
    let lists = cluster
        .server
        .request_counts()
        .iter()
        .filter(|(key, _)| key.client == OPERATOR && key.resource == "schedules" && key.verb.name() == "list")
        .map(|(_, n)| n)
        .sum::<u64>();
    assert!(lists >= 2, "the operator relisted Schedules: {lists} lists");

    cluster.apply(every("after", "1m")).await;
    cluster.advance(60).await;
    assert_eq!(cluster.fire_secs("before").await, vec![0, 60]);
    assert_eq!(cluster.fire_secs("after").await, vec![0, 60]);
    assert_reported::<Schedule>(&cluster, "bad", SCHEDULE_COMMAND_PATH).await;
}
