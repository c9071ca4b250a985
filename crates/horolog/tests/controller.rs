//! Controller tests: the real reconcilers against the in-process API server, on a tokio clock
//! that tests move (`start_paused`), with a stand-in kubelet. Each test name states the
//! behaviour it checks.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::Cluster;
use fixtures::*;
use horolog::api::JobRunPhase;

#[tokio::test(start_paused = true)]
async fn a_schedule_fires_one_jobrun_per_fire_time_named_after_it() {
    let cluster = Cluster::start().await;
    cluster.apply(every("tick", "1m")).await;
    assert_eq!(cluster.fire_secs("tick").await, vec![0]);
    cluster.advance(60).await;
    assert_eq!(cluster.fire_secs("tick").await, vec![0, 60]);
    let runs = cluster.runs_of("tick").await;
    assert_eq!(runs[1].metadata.name.as_deref(), Some("tick-1767225660"));
    let status = cluster.schedule("tick").await.status.unwrap_or_default();
    assert_eq!(status.last_fire_time, Some(at(60)));
    assert_eq!(status.next_fire_time, Some(at(120)));
    assert_eq!(
        status.upcoming_fire_times,
        vec![at(120), at(180), at(240), at(300), at(360)]
    );
    assert_eq!(
        cluster.phases("tick").await,
        vec![JobRunPhase::Scheduled, JobRunPhase::Scheduled]
    );
    assert_eq!(
        cluster.pod_names().await,
        vec!["tick-1767225600-1", "tick-1767225660-1"]
    );
}

use horolog::api::{CoalescePolicy, ConcurrencyPolicy};
use horolog::controller::EventPolicy;

#[tokio::test(start_paused = true)]
async fn a_jobrun_follows_its_pod_to_succeeded_with_exit_code_and_result() {
    let cluster = Cluster::start_with(|config| config.events = EventPolicy::All).await;
    cluster.apply(every("report", "1h")).await;
    let pod = "report-1767225600-1";
    cluster.pod_running(pod).await;
    assert_eq!(
        cluster.phases("report").await,
        vec![JobRunPhase::Scheduled],
        "a pod that has just started may end at once: Running is reported after 2 s"
    );
    cluster.advance(2).await;
    assert_eq!(cluster.phases("report").await, vec![JobRunPhase::Running]);
    cluster.advance(10).await;
    cluster.pod_exits(pod, 0, "ok\n").await;
    let run = cluster
        .run("report-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.result.as_deref(), Some("ok\n"));
    assert_eq!(run.duration.as_deref(), Some("12s"));
    assert_eq!(
        cluster.reasons_of("report-1767225600").await,
        vec!["PodCreated", "Started", "Succeeded"],
        "with --events all"
    );
    let status = cluster.schedule("report").await.status.unwrap_or_default();
    assert_eq!(
        (status.last_successful_time, status.active_count),
        (None, 1),
        "a success waits for the Schedule's next status write, at most --schedule-status-delay"
    );
    cluster.advance(60).await;
    let status = cluster.schedule("report").await.status.unwrap_or_default();
    assert_eq!(status.last_successful_time, Some(at(0)));
    assert_eq!(status.active_count, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_pod_is_retried_up_to_backoff_limit_then_the_run_fails() {
    let cluster = Cluster::start().await;
    cluster.apply(every("flaky", "1h").backoff_limit(1)).await;
    cluster.pod_exits("flaky-1767225600-1", 3, "").await;
    assert_eq!(
        cluster.pod_names().await,
        vec!["flaky-1767225600-1", "flaky-1767225600-2"]
    );
    cluster.pod_exits("flaky-1767225600-2", 4, "").await;
    let run = cluster
        .run("flaky-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Failed));
    assert_eq!(run.attempts, Some(2));
    assert_eq!(run.exit_code, Some(4));
    assert!(run.message.unwrap_or_default().contains("exit code 4"));
    assert_eq!(cluster.pod_names().await.len(), 2, "no third attempt");
}

#[tokio::test(start_paused = true)]
async fn a_pod_deleted_under_a_running_run_fails_it_with_a_clear_reason() {
    let cluster = Cluster::start().await;
    cluster.apply(every("victim", "1h")).await;
    cluster.pod_running("victim-1767225600-1").await;
    cluster.delete_pod("victim-1767225600-1").await;
    let run = cluster
        .run("victim-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Failed));
    assert_eq!(run.reason.as_deref(), Some("PodDeleted"));
}

#[tokio::test(start_paused = true)]
async fn a_pod_deleted_with_retries_left_gets_a_next_attempt() {
    let cluster = Cluster::start().await;
    cluster.apply(every("victim", "1h").backoff_limit(2)).await;
    cluster.delete_pod("victim-1767225600-1").await;
    assert_eq!(cluster.pod_names().await, vec!["victim-1767225600-2"]);
}

async fn catch_up_after_downtime(coalesce: CoalescePolicy) -> (Cluster, Vec<i64>) {
    let mut cluster = Cluster::start().await;
    cluster.apply(every("batch", "1m").coalesce(coalesce)).await;
    cluster.stop_operator().await;
    cluster.advance(5 * 60 + 30).await;
    cluster.start_operator();
    cluster.settle().await;
    let fired = cluster.fire_secs("batch").await;
    (cluster, fired)
}

#[tokio::test(start_paused = true)]
async fn coalesce_latest_runs_only_the_newest_fire_time_missed_during_downtime() {
    let (cluster, fired) = catch_up_after_downtime(CoalescePolicy::Latest).await;
    assert_eq!(fired, vec![0, 300]);
    let status = cluster.schedule("batch").await.status.unwrap_or_default();
    assert_eq!(status.coalesced_fire_times, 4);
    assert_eq!(status.last_fire_time, Some(at(300)));
    assert_eq!(status.next_fire_time, Some(at(360)));
    assert!(
        cluster
            .reasons_of("batch")
            .await
            .contains(&"Coalesced".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn coalesce_earliest_runs_only_the_oldest_fire_time_missed_during_downtime() {
    let (_, fired) = catch_up_after_downtime(CoalescePolicy::Earliest).await;
    assert_eq!(fired, vec![0, 60]);
}

#[tokio::test(start_paused = true)]
async fn coalesce_all_runs_every_fire_time_missed_during_downtime() {
    let (_, fired) = catch_up_after_downtime(CoalescePolicy::All).await;
    assert_eq!(fired, vec![0, 60, 120, 180, 240, 300]);
}

#[tokio::test(start_paused = true)]
async fn fire_times_past_misfire_grace_time_are_counted_missed_with_an_event() {
    let mut cluster = Cluster::start().await;
    cluster
        .apply(every("strict", "1m").coalesce(CoalescePolicy::All).grace("30s"))
        .await;
    cluster.stop_operator().await;
    cluster.advance(140).await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(
        cluster.fire_secs("strict").await,
        vec![0, 120],
        "60 missed its deadline (90s), 120 is within it (150s)"
    );
    let status = cluster.schedule("strict").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 1);
    assert!(cluster.reasons_of("strict").await.contains(&"Missed".to_string()));
}

#[tokio::test(start_paused = true)]
async fn operator_restart_in_the_middle_of_a_catch_up_repeats_nothing_and_leaves_no_gap() {
    let mut cluster = Cluster::start().await;
    cluster
        .apply(every("resume", "1m").coalesce(CoalescePolicy::All))
        .await;
    cluster.stop_operator().await;
    cluster.advance(240).await;
    // A previous operator created two of the four catch-up runs, then died before writing status.
    let runs = cluster.runs_of("resume").await;
    for secs in [60, 120] {
        let mut run = runs[0].clone();
        run.metadata = kube::api::ObjectMeta {
            name: Some(horolog::controller::schedule::run_name("resume", at(secs))),
            labels: run.metadata.labels.clone(),
            owner_references: run.metadata.owner_references.clone(),
            ..Default::default()
        };
        run.spec.fire_time = Some(at(secs));
        run.status = None;
        cluster.create_run(run).await;
    }
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(cluster.fire_secs("resume").await, vec![0, 60, 120, 180, 240]);
    let status = cluster.schedule("resume").await.status.unwrap_or_default();
    assert_eq!(status.last_fire_time, Some(at(240)));
}

#[tokio::test(start_paused = true)]
async fn max_running_jobs_with_wait_holds_runs_until_a_slot_frees_oldest_first() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("serial", "1m").max_running(1, ConcurrencyPolicy::Wait))
        .await;
    cluster.advance(60).await;
    cluster.advance(60).await;
    use JobRunPhase::*;
    assert_eq!(cluster.phases("serial").await, vec![Scheduled, Waiting, Waiting]);
    assert_eq!(cluster.pod_names().await, vec!["serial-1767225600-1"]);
    cluster.pod_exits("serial-1767225600-1", 0, "").await;
    assert_eq!(cluster.phases("serial").await, vec![Succeeded, Pending, Waiting]);
    assert_eq!(
        cluster.pod_names().await,
        vec!["serial-1767225600-1", "serial-1767225660-1"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_run_whose_start_deadline_passes_is_missed() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("slow", "1m")
                .max_running(1, ConcurrencyPolicy::Wait)
                .grace("30s"),
        )
        .await;
    cluster.advance(60).await;
    assert_eq!(
        cluster.phases("slow").await,
        vec![JobRunPhase::Scheduled, JobRunPhase::Waiting]
    );
    cluster.advance(31).await;
    assert_eq!(
        cluster.phases("slow").await,
        vec![JobRunPhase::Scheduled, JobRunPhase::Missed]
    );
    assert!(
        cluster
            .reasons_of("slow-1767225660")
            .await
            .contains(&"Missed".to_string())
    );
    assert_eq!(
        cluster
            .schedule("slow")
            .await
            .status
            .unwrap_or_default()
            .missed_fire_times,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn max_running_jobs_with_skip_drops_the_new_run_and_counts_it() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("skippy", "1m").max_running(1, ConcurrencyPolicy::Skip))
        .await;
    cluster.advance(60).await;
    assert_eq!(
        cluster.phases("skippy").await,
        vec![JobRunPhase::Scheduled, JobRunPhase::Skipped]
    );
    assert_eq!(
        cluster
            .schedule("skippy")
            .await
            .status
            .unwrap_or_default()
            .skipped_runs,
        1
    );
    assert!(
        cluster
            .reasons_of("skippy-1767225660")
            .await
            .contains(&"Skipped".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn max_running_jobs_with_replace_cancels_the_oldest_run_and_deletes_its_pod() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("fresh", "1m").max_running(1, ConcurrencyPolicy::Replace))
        .await;
    cluster.pod_running("fresh-1767225600-1").await;
    cluster.advance(60).await;
    assert_eq!(
        cluster.phases("fresh").await,
        vec![JobRunPhase::Cancelled, JobRunPhase::Scheduled]
    );
    assert_eq!(cluster.pod_names().await, vec!["fresh-1767225660-1"]);
    assert!(
        cluster
            .reasons_of("fresh-1767225600")
            .await
            .contains(&"Cancelled".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_schedule_fires_nothing_and_resuming_coalesces_what_passed() {
    let cluster = Cluster::start().await;
    cluster.apply(every("nap", "1m")).await;
    cluster
        .patch_schedule("nap", serde_json::json!({"spec": {"paused": true}}))
        .await;
    let status = cluster.schedule("nap").await.status.unwrap_or_default();
    assert_eq!(status.next_fire_time, None);
    cluster.advance(300).await;
    assert_eq!(cluster.fire_secs("nap").await, vec![0]);
    cluster
        .patch_schedule("nap", serde_json::json!({"spec": {"paused": false}}))
        .await;
    assert_eq!(cluster.fire_secs("nap").await, vec![0, 300]);
    let reasons = cluster.reasons_of("nap").await;
    assert!(
        reasons.contains(&"Paused".to_string()) && reasons.contains(&"Resumed".to_string()),
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_new_run_now_value_fires_one_immediate_run() {
    let cluster = Cluster::start().await;
    cluster.apply(every("manual", "1h")).await;
    let annotate =
        |value: &str| serde_json::json!({"metadata": {"annotations": {"horolog.dev/run-now": value}}});
    cluster.patch_schedule("manual", annotate("a")).await;
    cluster.advance(10).await;
    cluster.patch_schedule("manual", annotate("a")).await;
    assert_eq!(cluster.runs_of("manual").await.len(), 2);
    cluster.patch_schedule("manual", annotate("b")).await;
    assert_eq!(cluster.runs_of("manual").await.len(), 3);
    assert_eq!(
        cluster
            .schedule("manual")
            .await
            .status
            .unwrap_or_default()
            .last_run_now
            .as_deref(),
        Some("b")
    );
}

#[tokio::test(start_paused = true)]
async fn history_limits_delete_the_oldest_finished_runs() {
    let cluster = Cluster::start().await;
    cluster.apply(every("tidy", "1m").history(1, 1)).await;
    for minute in 0..3 {
        cluster
            .pod_exits(&format!("tidy-{}-1", 1_767_225_600 + minute * 60), 0, "")
            .await;
        cluster.advance(60).await;
    }
    assert_eq!(cluster.fire_secs("tidy").await, vec![120, 180]);
}

#[tokio::test(start_paused = true)]
async fn a_finished_run_is_deleted_result_ttl_after_completion() {
    let cluster = Cluster::start().await;
    cluster.apply(every("brief", "1h").result_ttl("10m")).await;
    cluster.pod_exits("brief-1767225600-1", 0, "").await;
    cluster.advance(599).await;
    assert!(cluster.run("brief-1767225600").await.is_some());
    cluster.advance(2).await;
    assert!(cluster.run("brief-1767225600").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_schedule_past_its_end_time_is_finished_with_no_next_fire_time() {
    let cluster = Cluster::start().await;
    cluster.apply(every("short", "1m").ends_at(at(60))).await;
    cluster.advance(120).await;
    assert_eq!(cluster.fire_secs("short").await, vec![0, 60]);
    let status = cluster.schedule("short").await.status.unwrap_or_default();
    assert_eq!(status.next_fire_time, None);
    assert!(
        cluster
            .reasons_of("short")
            .await
            .contains(&"Finished".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalid_trigger_sets_ready_false_with_an_event_and_leaves_other_schedules_alone() {
    let cluster = Cluster::start().await;
    let mut bad = every("bad", "1m");
    bad.spec.trigger.interval = None;
    bad.spec.trigger.cron = Some("61 * * * *".into());
    cluster.apply(bad).await;
    cluster.apply(every("good", "1m")).await;
    cluster.advance(60).await;
    let status = cluster.schedule("bad").await.status.unwrap_or_default();
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidTrigger")
    );
    assert!(ready.message.contains("\"61 * * * *\""), "{}", ready.message);
    let events = cluster.events_of("bad").await;
    assert_eq!(events.len(), 1, "one Event, not one per reconcile: {events:?}");
    assert!(events[0].1.contains("61 * * * *"));
    assert_eq!(cluster.fire_secs("good").await, vec![0, 60]);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_timezone_sets_ready_false_with_reason_invalid_timezone() {
    let cluster = Cluster::start().await;
    let mut bad = every("zoned", "1m");
    bad.spec.trigger.timezone = Some("Mars/Olympus".into());
    cluster.apply(bad).await;
    let status = cluster.schedule("zoned").await.status.unwrap_or_default();
    assert_eq!(status.conditions[0].reason, "InvalidTimezone");
    assert!(cluster.runs().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn deleting_a_schedule_removes_its_active_runs_and_pods() {
    let cluster = Cluster::start().await;
    cluster.apply(every("gone", "1m")).await;
    cluster.pod_running("gone-1767225600-1").await;
    cluster.delete_schedule("gone").await;
    assert!(cluster.runs().await.is_empty());
    assert!(cluster.pods().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_one_off_jobrun_created_by_a_user_runs_like_a_scheduled_one() {
    let cluster = Cluster::start().await;
    cluster.create_run(one_off("adhoc")).await;
    assert_eq!(cluster.pod_names().await, vec!["adhoc-1"]);
    cluster.pod_exits("adhoc-1", 0, "42").await;
    let run = cluster
        .run("adhoc")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(
        (run.phase, run.result.as_deref()),
        (Some(JobRunPhase::Succeeded), Some("42"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_jittered_run_does_not_start_before_its_fire_time_plus_jitter() {
    let cluster = Cluster::start().await;
    cluster.apply(every("jit", "1h").jitter("30m")).await;
    let run = cluster.runs_of("jit").await.remove(0);
    let jitter = run.spec.jitter.map(|j| j.as_std().as_secs()).unwrap_or(0);
    assert!(jitter > 0, "the seeded jitter for this fire time is not zero");
    assert!(cluster.pods().await.is_empty());
    cluster.advance(jitter + 1).await;
    assert_eq!(
        cluster.pod_names().await,
        vec![format!("{}-1", run.metadata.name.unwrap_or_default())]
    );
}

#[tokio::test(start_paused = true)]
async fn reconciling_an_unchanged_schedule_again_sends_no_write() {
    let mut cluster = Cluster::start().await;
    cluster.apply(every("steady", "1h")).await;
    let settled = cluster.writes();
    assert!(
        settled
            .iter()
            .any(|w| w.starts_with("PATCH") && w.ends_with("/schedules/steady/status")),
        "the first reconcile wrote status: {settled:?}"
    );
    // A restarted operator reconciles every Schedule and JobRun again, from fresh caches.
    cluster.stop_operator().await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(cluster.writes(), settled, "no status patch, JobRun, Pod or Event");
    // A metadata-only change reconciles the Schedule; the only write is the change itself.
    cluster
        .patch_schedule(
            "steady",
            serde_json::json!({"metadata": {"labels": {"team": "a"}}}),
        )
        .await;
    assert_eq!(cluster.writes().len(), settled.len() + 1);
    // A fire writes the Schedule's status once: the new run is active from the first write, so
    // the reconcile its watch event triggers has nothing to add.
    let before = cluster.writes().len();
    cluster.advance(3600).await;
    let status_writes = cluster.writes()[before..]
        .iter()
        .filter(|w| w.starts_with("PATCH") && w.ends_with("/schedules/steady/status"))
        .count();
    assert_eq!(status_writes, 1);
    let status = cluster.schedule("steady").await.status.unwrap_or_default();
    assert_eq!(status.active_count, 2);
}
