//! Creates the API server refuses: a ResourceQuota (403 `exceeded quota`), an admission
//! webhook, a name or label rule. The refusal shows at once on the Schedule (Ready=False,
//! reason `CreateRefused`) or the run (Pending, reason `CreateRefused`) with a Warning Event
//! carrying the server's message; it is retried with backoff, and everything resumes when
//! it lifts. A quota refusal is never a failed run: past the run's start deadline it is
//! Missed.
//!
//! Also the bound on waiting: beyond `maxWaitingRuns` a due run is Skipped (QueueFull), so a
//! hung run never makes the queue, or the Schedule's status.active, grow without bound.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, OPERATOR};
use fixtures::*;
use horolog::api::{ConcurrencyPolicy, Condition, JobRunPhase, find_condition};
use horolog_memserver::RequestMatch;

/// What a real API server answers when `count/jobruns.horolog.dev=0`.
const RUNS_QUOTA: &str = "jobruns.horolog.dev \"x\" is forbidden: exceeded quota: runs, requested: count/jobruns.horolog.dev=1, used: count/jobruns.horolog.dev=0, limited: count/jobruns.horolog.dev=0";
/// What a real API server answers when `count/pods=0`.
const PODS_QUOTA: &str = "pods \"x\" is forbidden: exceeded quota: pods, requested: count/pods=1, used: count/pods=0, limited: count/pods=0";

fn creates(resource: &str) -> RequestMatch {
    RequestMatch::any()
        .client(OPERATOR)
        .verb("create")
        .resource(resource)
}

async fn ready(cluster: &Cluster, name: &str) -> Condition {
    let schedule = cluster.schedule(name).await;
    let conditions = schedule.status.unwrap_or_default().conditions;
    find_condition(&conditions, "Ready")
        .cloned()
        .unwrap_or_else(|| panic!("{name} has no Ready condition"))
}

#[tokio::test(start_paused = true)]
async fn a_refused_jobrun_create_makes_the_schedule_not_ready_until_it_goes_through() {
    let cluster = Cluster::start().await;
    cluster
        .server
        .faults()
        .fail_with(creates("jobruns"), usize::MAX, 403, "Forbidden", RUNS_QUOTA);
    cluster.apply(every("quota", "1h")).await;
    cluster.advance(1).await;

    let condition = ready(&cluster, "quota").await;
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "CreateRefused"),
        "{condition:?}"
    );
    assert!(
        condition.message.contains("exceeded quota"),
        "{}",
        condition.message
    );
    let events = cluster.events_of("quota").await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "CreateRefused" && note.contains("exceeded quota: runs")),
        "a Warning Event with the server's message: {events:?}"
    );
    assert!(cluster.runs_of("quota").await.is_empty());
    let warnings = events.iter().filter(|(r, _)| r == "CreateRefused").count();
    cluster.advance(30).await;
    let retried = cluster.operator_responses(403);
    assert!(
        (3..=8).contains(&retried),
        "retried with backoff (1 s, 2 s, 4 s, ...), not in a loop: {retried} refusals in 31 s"
    );
    let again = cluster.reasons_of("quota").await;
    assert_eq!(
        again.iter().filter(|r| *r == "CreateRefused").count(),
        warnings,
        "one Warning per refusal that changes, not one per retry: {again:?}"
    );

    cluster.server.faults().restore();
    cluster.advance(60).await;
    let condition = ready(&cluster, "quota").await;
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "Scheduled"),
        "{condition:?}"
    );
    assert_eq!(
        cluster.fire_secs("quota").await,
        vec![0],
        "the fire time runs once it may"
    );
}

#[tokio::test(start_paused = true)]
async fn a_webhook_denying_the_jobrun_create_is_shown_too() {
    let cluster = Cluster::start().await;
    let denied = "admission webhook \"policy.example.com\" denied the request: team label required";
    cluster
        .server
        .faults()
        .fail_with(creates("jobruns"), usize::MAX, 400, "BadRequest", denied);
    cluster.apply(every("denied", "1h")).await;
    cluster.advance(1).await;
    let condition = ready(&cluster, "denied").await;
    assert_eq!(condition.reason, "CreateRefused", "{condition:?}");
    assert!(
        condition.message.contains("team label required"),
        "{}",
        condition.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_pod_refused_by_quota_leaves_the_run_pending_and_runs_once_quota_frees() {
    let cluster = Cluster::start().await;
    cluster
        .server
        .faults()
        .fail_with(creates("pods"), usize::MAX, 403, "Forbidden", PODS_QUOTA);
    cluster.apply(every("pods", "1h")).await;
    cluster.advance(1).await;

    let run = cluster.run("pods-1767225600").await.expect("the run exists");
    let status = run.status.unwrap_or_default();
    assert_eq!(status.phase, Some(JobRunPhase::Pending), "{status:?}");
    assert_eq!(status.reason.as_deref(), Some("CreateRefused"), "{status:?}");
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("exceeded quota")),
        "{status:?}"
    );
    let events = cluster.events_of("pods-1767225600").await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "CreateRefused" && note.contains("exceeded quota: pods")),
        "{events:?}"
    );
    cluster.advance(20).await;
    let status = cluster
        .run("pods-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(
        status.phase,
        Some(JobRunPhase::Pending),
        "still waiting, not failed: {status:?}"
    );

    cluster.server.faults().restore();
    cluster.advance(60).await;
    assert_eq!(cluster.pod_names().await, vec!["pods-1767225600-1".to_string()]);
    cluster.pod_exits("pods-1767225600-1", 0, "").await;
    cluster.advance(1).await;
    assert_eq!(cluster.phases("pods").await, vec![JobRunPhase::Succeeded]);
}

#[tokio::test(start_paused = true)]
async fn a_quota_refusal_past_the_start_deadline_ends_missed_not_failed() {
    let cluster = Cluster::start().await;
    cluster
        .server
        .faults()
        .fail_with(creates("pods"), usize::MAX, 403, "Forbidden", PODS_QUOTA);
    cluster.apply(every("strict", "1h").grace("30s")).await;
    cluster.advance(20).await;
    assert_eq!(cluster.phases("strict").await, vec![JobRunPhase::Pending]);
    cluster.advance(15).await;
    let run = cluster.run("strict-1767225600").await.expect("the run exists");
    let status = run.status.unwrap_or_default();
    assert_eq!(status.phase, Some(JobRunPhase::Missed), "{status:?}");
    assert_eq!(
        status.reason.as_deref(),
        Some("MissedStartDeadline"),
        "{status:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn beyond_max_waiting_runs_a_due_run_is_skipped_queue_full_and_active_stays_bounded() {
    let cluster = Cluster::start().await;
    let mut busy = every("busy", "1s")
        .max_running(1, ConcurrencyPolicy::Wait)
        .history(1000, 1000);
    busy.spec.max_waiting_runs = Some(3);
    cluster.apply(busy).await;
    // The first run's pod never ends: every later run queues behind it.
    cluster.advance(20).await;
    let runs = cluster.runs_of("busy").await;
    let waiting = runs
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(JobRunPhase::Waiting))
        .count();
    let queue_full = runs
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("QueueFull"))
        .count();
    assert_eq!(waiting, 3, "{runs:#?}");
    assert!(
        queue_full >= 14,
        "the rest are Skipped, reason QueueFull: {queue_full}"
    );
    assert!(runs.iter().all(|r| {
        r.status.as_ref().and_then(|s| s.reason.as_deref()) != Some("QueueFull")
            || r.status.as_ref().and_then(|s| s.phase) == Some(JobRunPhase::Skipped)
    }));
    let status = cluster.schedule("busy").await.status.unwrap_or_default();
    assert!(status.skipped_runs >= 14, "counted: {}", status.skipped_runs);
    assert!(
        status.active.len() <= 1 + 3 + 2,
        "status.active stays near maxRunningJobs + maxWaitingRuns: {}",
        status.active.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_one_off_run_with_a_name_longer_than_a_label_value_still_follows_its_pod() {
    let cluster = Cluster::start().await;
    // A valid object name, too long for the `horolog.dev/jobrun` label value (63): the label
    // holds the hashed short form, and the operator must find the Pod by that form.
    let name = format!("nightly-{}", "x".repeat(80));
    cluster.create_run(one_off(&name)).await;
    let pods = cluster.pod_names().await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = cluster.pods().await.remove(0);
    let label = pod
        .metadata
        .labels
        .unwrap_or_default()
        .get("horolog.dev/jobrun")
        .cloned()
        .unwrap_or_default();
    assert!(label.len() <= 63, "{label}");
    cluster.pod_exits(&pods[0], 0, "ok").await;
    cluster.advance(1).await;
    let status = cluster
        .run(&name)
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(status.phase, Some(JobRunPhase::Succeeded), "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn a_backfill_whose_jobrun_create_is_refused_says_so_and_carries_on_once_it_goes_through() {
    use horolog::api::{Backfill, BackfillSpec};
    use kube::Api;
    use kube::api::PostParams;

    let cluster = Cluster::start().await;
    let mut etl = every("etl", "1h");
    etl.spec.paused = true;
    cluster.apply(etl).await;
    cluster
        .server
        .faults()
        .fail_with(creates("jobruns"), usize::MAX, 403, "Forbidden", RUNS_QUOTA);
    let backfills: Api<Backfill> = Api::namespaced(cluster.client.clone(), cluster::NS);
    let rerun = Backfill::new(
        "rerun",
        BackfillSpec {
            schedule_name: "etl".into(),
            from: at(-2 * 3600),
            to: at(0),
            concurrency_policy: None,
            max_fire_times: None,
            dry_run: false,
            ignore_exclusions: false,
        },
    );
    backfills
        .create(&PostParams::default(), &rerun)
        .await
        .expect("create backfill");
    cluster.advance(1).await;
    let status = backfills
        .get("rerun")
        .await
        .expect("get")
        .status
        .unwrap_or_default();
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("exceeded quota")),
        "{status:?}"
    );
    assert!(
        cluster
            .reasons_of("rerun")
            .await
            .contains(&"CreateRefused".to_string())
    );
    cluster.server.faults().restore();
    cluster.advance(60).await;
    assert_eq!(cluster.runs_of("etl").await.len(), 2);
}
