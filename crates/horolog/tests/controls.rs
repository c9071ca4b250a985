//! Schedule controls beyond every anchor: the six overlap policies, pause on failures,
//! resume without catch-up, clean endings and limits on runs. The real operator on the
//! in-memory API server, on tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::Cluster;
use fixtures::*;
use horolog::api::{CatchUpPolicy, ConcurrencyPolicy, JobRunPhase, TriggerSpec};
use serde_json::json;

use JobRunPhase::*;

#[tokio::test(start_paused = true)]
async fn allow_starts_every_run_whatever_is_running() {
    let cluster = Cluster::start().await;
    let mut schedule = every("all-in", "1m");
    schedule.spec.concurrency_policy = Some(ConcurrencyPolicy::Allow);
    cluster.apply(schedule).await;
    cluster.pod_running("all-in-1767225600-1").await;
    cluster.advance(60).await;
    cluster.advance(60).await;
    assert_eq!(cluster.pod_names().await.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn buffer_one_keeps_only_the_newest_waiting_run_and_skips_the_one_it_replaces() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("buffered", "1m")
                .max_running(1, ConcurrencyPolicy::BufferOne)
                .history(10, 10),
        )
        .await;
    cluster.pod_running("buffered-1767225600-1").await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("buffered").await, vec![Running, Waiting]);
    cluster.advance(60).await;
    assert_eq!(
        cluster.phases("buffered").await,
        vec![Running, Skipped, Waiting],
        "the newer due run replaces the waiting one"
    );
    let skipped = cluster
        .run("buffered-1767225660")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert!(skipped.message.unwrap_or_default().contains("BufferOne"));
    cluster.pod_exits("buffered-1767225600-1", 0, "").await;
    assert_eq!(
        cluster.pod_names().await,
        vec!["buffered-1767225600-1", "buffered-1767225720-1"]
    );
    assert_eq!(
        cluster
            .schedule("buffered")
            .await
            .status
            .unwrap_or_default()
            .skipped_runs,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn terminate_replaces_the_running_run_like_replace() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("hard", "1m")
                .max_running(1, ConcurrencyPolicy::Terminate)
                .history(10, 10),
        )
        .await;
    cluster.pod_running("hard-1767225600-1").await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("hard").await, vec![Cancelled, Scheduled]);
    let run = cluster
        .run("hard-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert!(run.message.unwrap_or_default().contains("Terminate"));
    assert_eq!(cluster.pod_names().await, vec!["hard-1767225660-1"]);
}

#[tokio::test(start_paused = true)]
async fn after_pause_after_failures_consecutive_failures_the_schedule_stops_firing() {
    let mut cluster = Cluster::start().await;
    let mut schedule = every("fragile", "1m").history(10, 10);
    schedule.spec.pause_after_failures = Some(2);
    cluster.apply(schedule).await;
    cluster.pod_exits("fragile-1767225600-1", 1, "").await;
    // A restart in the middle of the count neither loses nor repeats it.
    cluster.stop_operator().await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(
        cluster
            .schedule("fragile")
            .await
            .status
            .unwrap_or_default()
            .consecutive_failures,
        1
    );
    cluster.advance(60).await;
    cluster.pod_exits("fragile-1767225660-1", 1, "").await;
    let status = cluster.schedule("fragile").await.status.unwrap_or_default();
    assert_eq!(status.consecutive_failures, 2);
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").cloned();
    assert_eq!(
        ready.map(|c| (c.status, c.reason)),
        Some(("False".to_string(), "TooManyFailures".to_string()))
    );
    let paused = status.conditions.iter().find(|c| c.type_ == "Paused").cloned();
    assert_eq!(
        paused.map(|c| (c.status, c.reason)),
        Some(("True".to_string(), "TooManyFailures".to_string()))
    );
    assert!(
        cluster
            .reasons_of("fragile")
            .await
            .contains(&"TooManyFailures".to_string())
    );
    cluster.advance(180).await;
    assert_eq!(
        cluster.fire_secs("fragile").await,
        vec![0, 60],
        "nothing fires while paused"
    );
    let spec = cluster.schedule("fragile").await.spec;
    assert!(!spec.paused, "the operator never edits the spec");

    // The resume annotation lifts it; the fire times that passed go through coalesce.
    cluster
        .patch_schedule(
            "fragile",
            json!({"metadata": {"annotations": {"horolog.dev/resume": "1"}}}),
        )
        .await;
    assert_eq!(cluster.fire_secs("fragile").await, vec![0, 60, 240]);
    let status = cluster.schedule("fragile").await.status.unwrap_or_default();
    assert_eq!(status.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_successful_run_now_lifts_a_pause_after_failures() {
    let cluster = Cluster::start().await;
    let mut schedule = every("retry-me", "1h").history(10, 10);
    schedule.spec.pause_after_failures = Some(1);
    cluster.apply(schedule).await;
    cluster.pod_exits("retry-me-1767225600-1", 1, "").await;
    let reason = |status: horolog::api::ScheduleStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.reason.clone())
    };
    assert_eq!(
        reason(cluster.schedule("retry-me").await.status.unwrap_or_default()),
        Some("TooManyFailures".into())
    );
    cluster
        .patch_schedule(
            "retry-me",
            json!({"metadata": {"annotations": {"horolog.dev/run-now": "fix"}}}),
        )
        .await;
    let pods = cluster.pod_names().await;
    let now_pod = pods
        .iter()
        .find(|p| p.contains("-now-"))
        .cloned()
        .unwrap_or_default();
    cluster.pod_exits(&now_pod, 0, "").await;
    cluster.advance(61).await;
    assert_eq!(
        reason(cluster.schedule("retry-me").await.status.unwrap_or_default()),
        Some("Scheduled".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_spec_change_lifts_a_pause_after_failures() {
    let cluster = Cluster::start().await;
    let mut schedule = every("fixed", "1h").history(10, 10);
    schedule.spec.pause_after_failures = Some(1);
    cluster.apply(schedule).await;
    cluster.pod_exits("fixed-1767225600-1", 1, "").await;
    cluster
        .patch_schedule("fixed", json!({"spec": {"maxJitter": "1s"}}))
        .await;
    let status = cluster.schedule("fixed").await.status.unwrap_or_default();
    assert_eq!(status.consecutive_failures, 0);
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").cloned();
    assert_eq!(ready.map(|c| c.reason), Some("Scheduled".to_string()));
}

#[tokio::test(start_paused = true)]
async fn with_catch_up_disabled_a_resume_carries_on_from_now_and_counts_the_passed_fire_times_missed() {
    let cluster = Cluster::start().await;
    let mut schedule = every("now-on", "1m");
    schedule.spec.catch_up = CatchUpPolicy::Disabled;
    cluster.apply(schedule).await;
    cluster
        .patch_schedule("now-on", json!({"spec": {"paused": true}}))
        .await;
    cluster.advance(300).await;
    cluster
        .patch_schedule("now-on", json!({"spec": {"paused": false}}))
        .await;
    assert_eq!(
        cluster.fire_secs("now-on").await,
        vec![0],
        "nothing for the paused minutes"
    );
    let status = cluster.schedule("now-on").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 5);
    assert_eq!(status.next_fire_time, Some(at(360)));
    cluster.advance(60).await;
    assert_eq!(cluster.fire_secs("now-on").await, vec![0, 360]);
}

#[tokio::test(start_paused = true)]
async fn with_catch_up_disabled_an_operator_outage_is_not_caught_up() {
    let mut cluster = Cluster::start().await;
    let mut schedule = every("now-on", "1m");
    schedule.spec.catch_up = CatchUpPolicy::Disabled;
    cluster.apply(schedule).await;
    cluster.stop_operator().await;
    cluster.advance(150).await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(cluster.fire_secs("now-on").await, vec![0]);
    assert_eq!(
        cluster
            .schedule("now-on")
            .await
            .status
            .unwrap_or_default()
            .missed_fire_times,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn max_runs_fires_that_many_times_then_finishes() {
    let cluster = Cluster::start().await;
    let mut schedule = every("thrice", "1m").history(10, 10);
    schedule.spec.max_runs = Some(3);
    cluster.apply(schedule).await;
    for _ in 0..5 {
        cluster.advance(60).await;
    }
    assert_eq!(cluster.fire_secs("thrice").await, vec![0, 60, 120]);
    let status = cluster.schedule("thrice").await.status.unwrap_or_default();
    assert_eq!(status.fired_count, 3);
    assert_eq!(status.next_fire_time, None);
    // Finished is what the spec asked for: Ready stays True, Finished says so.
    let of = |type_: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    assert_eq!(of("Ready"), Some(("True".to_string(), "Finished".to_string())));
    assert_eq!(of("Finished"), Some(("True".to_string(), "Finished".to_string())));
    assert_eq!(
        of("Stalled"),
        Some(("False".to_string(), "Progressing".to_string()))
    );
    assert!(
        status.conditions.iter().all(|c| c.observed_generation.is_some()),
        "every condition carries observedGeneration: {:?}",
        status.conditions
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_schedule_is_deleted_ttl_seconds_after_its_last_run_finished() {
    let cluster = Cluster::start().await;
    let once = TriggerSpec {
        date: Some(at(10).fixed_offset()),
        ..TriggerSpec::default()
    };
    let mut schedule = schedule("once", once);
    schedule.spec.ttl_seconds_after_finished = Some(300);
    cluster.apply(schedule).await;
    cluster.advance(10).await;
    cluster.advance(5).await;
    let status = cluster.schedule("once").await.status.unwrap_or_default();
    assert_eq!(status.finished_at, None, "its run has not finished");
    cluster.pod_exits("once-1767225610-1", 0, "").await;
    // The success is recorded within --schedule-status-delay; the Schedule finished when its
    // run did.
    cluster.advance(60).await;
    let status = cluster.schedule("once").await.status.unwrap_or_default();
    let finished = status
        .finished_at
        .unwrap_or_else(|| panic!("finished: {status:?}"));
    assert_eq!(finished, at(15));
    cluster.advance(238).await;
    assert!(!cluster.runs_of("once").await.is_empty(), "kept until the TTL");
    cluster.advance(3).await;
    let schedules: kube::Api<horolog::api::Schedule> =
        kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    assert!(
        schedules.get_opt("once").await.unwrap_or(None).is_none(),
        "deleted 300 s after {finished}"
    );
    assert!(cluster.runs_of("once").await.is_empty(), "its runs go with it");
}
