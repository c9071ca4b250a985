//! Exactly once, under faults: every fire time becomes exactly one outcome (a run, or a count
//! of missed or coalesced fire times) across restarts, catch-ups, edits and crash windows.
//! The real operator on the in-memory API server, on tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use chrono::TimeDelta;
use cluster::{Cluster, OPERATOR};
use fixtures::*;
use horolog::api::{CoalescePolicy, ConcurrencyPolicy, JobRunPhase, TriggerSpec};
use horolog::pod::{pod_for, template_of};
use horolog_memserver::RequestMatch;
use kube::ResourceExt;
use serde_json::json;

/// A Schedule firing every second from three days before the test's start.
fn three_days_of_seconds(name: &str, coalesce: CoalescePolicy) -> horolog::api::Schedule {
    let trigger = TriggerSpec {
        interval: Some("1s".parse().unwrap_or_default()),
        start_time: Some((t0() - TimeDelta::days(3)).fixed_offset()),
        ..TriggerSpec::default()
    };
    schedule(name, trigger).coalesce(coalesce)
}

const THREE_DAYS: i64 = 3 * 86_400;

#[tokio::test(start_paused = true)]
async fn a_three_day_backlog_with_coalesce_latest_makes_exactly_one_run_for_the_latest_fire_time() {
    let cluster = Cluster::start().await;
    cluster
        .apply(three_days_of_seconds("backlog", CoalescePolicy::Latest))
        .await;
    assert_eq!(cluster.fire_secs("backlog").await, vec![0]);
    let status = cluster.schedule("backlog").await.status.unwrap_or_default();
    assert_eq!(
        status.coalesced_fire_times, THREE_DAYS,
        "every other due fire time"
    );
    assert_eq!(status.missed_fire_times, 0);
    assert_eq!(status.cursor, Some(at(0)));
}

#[tokio::test(start_paused = true)]
async fn a_three_day_backlog_with_coalesce_earliest_makes_exactly_one_run_for_the_earliest_fire_time() {
    let cluster = Cluster::start().await;
    cluster
        .apply(three_days_of_seconds("backlog", CoalescePolicy::Earliest))
        .await;
    assert_eq!(cluster.fire_secs("backlog").await, vec![-THREE_DAYS]);
    let status = cluster.schedule("backlog").await.status.unwrap_or_default();
    assert_eq!(status.coalesced_fire_times, THREE_DAYS);
    assert_eq!(
        status.last_fire_time,
        Some(at(-THREE_DAYS)),
        "the fire time that ran"
    );
    assert_eq!(status.cursor, Some(at(0)), "every due fire time is handled");
}

#[tokio::test(start_paused = true)]
async fn a_three_day_backlog_with_coalesce_all_runs_the_newest_hundred_and_counts_the_rest_missed() {
    let cluster = Cluster::start().await;
    cluster
        .apply(three_days_of_seconds("backlog", CoalescePolicy::All))
        .await;
    let fired = cluster.fire_secs("backlog").await;
    assert_eq!(fired, (-99..=0).collect::<Vec<i64>>());
    let status = cluster.schedule("backlog").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, THREE_DAYS + 1 - 100);
    let notes = cluster.events_of("backlog").await;
    assert!(
        notes
            .iter()
            .any(|(reason, note)| reason == "Missed" && note.contains("catch-up cap")),
        "{notes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn editing_the_trigger_applies_from_the_moment_of_the_edit() {
    let cluster = Cluster::start().await;
    let yearly = TriggerSpec {
        cron: Some("0 0 1 1 *".into()),
        ..TriggerSpec::default()
    };
    cluster.apply(schedule("edited", yearly)).await;
    assert_eq!(
        cluster.fire_secs("edited").await,
        vec![0],
        "2026-01-01T00:00:00Z is a fire time"
    );
    cluster.advance(10).await;
    // Daily at 00:00:05: a time of day between the creation and the edit.
    cluster
        .patch_schedule("edited", json!({"spec": {"trigger": {"cron": "5 0 0 * * *"}}}))
        .await;
    cluster.advance(1).await;
    assert_eq!(
        cluster.fire_secs("edited").await,
        vec![0],
        "00:00:05 passed before the edit: not run"
    );
    let status = cluster.schedule("edited").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 0, "and not counted");
    assert_eq!(status.next_fire_time, Some(at(86_400 + 5)));
    assert!(
        cluster
            .reasons_of("edited")
            .await
            .contains(&"TriggerChanged".to_string())
    );
}

/// Every ten minutes, then edited to hourly.
fn every_ten_minutes(name: &str) -> horolog::api::Schedule {
    let trigger = TriggerSpec {
        cron: Some("*/10 * * * *".into()),
        ..TriggerSpec::default()
    };
    schedule(name, trigger).history(10, 10)
}

#[tokio::test(start_paused = true)]
async fn an_edit_made_while_the_operator_was_down_plans_the_old_triggers_fire_times_by_its_rule() {
    let mut cluster = Cluster::start().await;
    cluster.apply(every_ten_minutes("downtime")).await;
    assert_eq!(cluster.fire_secs("downtime").await, vec![0]);
    cluster.advance(30).await;
    cluster.stop_operator().await;
    // 00:10 and 00:20 pass unseen; at 00:25 the trigger becomes hourly.
    cluster.advance_to(at(25 * 60)).await;
    cluster
        .patch_schedule("downtime", json!({"spec": {"trigger": {"cron": "0 * * * *"}}}))
        .await;
    cluster.advance_to(at(40 * 60)).await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(
        cluster.fire_secs("downtime").await,
        vec![0, 20 * 60],
        "the old trigger's 00:10 and 00:20 coalesce (Latest) into one run of 00:20; the new trigger has nothing due"
    );
    let status = cluster.schedule("downtime").await.status.unwrap_or_default();
    assert_eq!(
        (status.coalesced_fire_times, status.missed_fire_times),
        (1, 0),
        "00:10 merged into 00:20, nothing missed"
    );
    assert_eq!(
        status.cursor,
        Some(at(25 * 60)),
        "planned up to the edit, then by the new trigger"
    );
    assert_eq!(status.next_fire_time, Some(at(3600)));
    assert!(status.replaced_triggers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_edit_made_while_paused_plans_the_old_triggers_fire_times_on_resume() {
    let cluster = Cluster::start().await;
    cluster.apply(every_ten_minutes("paused").grace("1h")).await;
    cluster.advance(30).await;
    cluster
        .patch_schedule("paused", json!({"spec": {"paused": true}}))
        .await;
    cluster.advance_to(at(25 * 60)).await;
    cluster
        .patch_schedule("paused", json!({"spec": {"trigger": {"cron": "0 * * * *"}}}))
        .await;
    // The resume is a later write to the Schedule: the edit still counts from 00:25.
    cluster.advance_to(at(45 * 60)).await;
    let status = cluster.schedule("paused").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 0, "nothing is decided while paused");
    cluster
        .patch_schedule("paused", json!({"spec": {"paused": false}}))
        .await;
    cluster.advance(1).await;
    assert_eq!(
        cluster.fire_secs("paused").await,
        vec![0, 20 * 60],
        "on resume, the old trigger's 00:10 and 00:20 go through coalesce Latest"
    );
    let status = cluster.schedule("paused").await.status.unwrap_or_default();
    assert_eq!((status.coalesced_fire_times, status.missed_fire_times), (1, 0));
    assert_eq!(status.next_fire_time, Some(at(3600)));

    // With a grace time the old fire times outlived, they are missed, counted, not run.
    cluster.apply(every_ten_minutes("late").grace("2m")).await;
    cluster.advance(30).await;
    cluster
        .patch_schedule("late", json!({"spec": {"paused": true}}))
        .await;
    cluster.advance_to(at(55 * 60)).await;
    cluster
        .patch_schedule("late", json!({"spec": {"trigger": {"cron": "0 * * * *"}}}))
        .await;
    cluster
        .patch_schedule("late", json!({"spec": {"paused": false}}))
        .await;
    cluster.advance(1).await;
    assert_eq!(
        cluster.fire_secs("late").await,
        Vec::<i64>::new(),
        "00:50, the old trigger's, passed its grace time while paused"
    );
    let status = cluster.schedule("late").await.status.unwrap_or_default();
    assert_eq!(status.missed_fire_times, 1, "and is counted missed");
}

#[tokio::test(start_paused = true)]
async fn a_pod_created_before_a_crash_is_adopted_not_created_again() {
    let mut cluster = Cluster::without_operator();
    cluster
        .apply(every("adopt", "1h").max_running(1, ConcurrencyPolicy::Skip))
        .await;
    cluster.start_operator();
    cluster.settle().await;
    cluster.stop_operator().await;
    // What a crash right after creating the first Pod leaves: the Pod, and a JobRun whose
    // status says nothing of it. (The operator above created both; forget its status.)
    assert_eq!(cluster.pod_names().await, vec!["adopt-1767225600-1"]);
    cluster.pod_running("adopt-1767225600-1").await;
    cluster.start_operator();
    cluster.advance(5).await;
    assert_eq!(cluster.phases("adopt").await, vec![JobRunPhase::Running]);
    assert_eq!(
        cluster.pod_names().await,
        vec!["adopt-1767225600-1"],
        "no second pod"
    );

    // A one-off run whose Pod exists before the operator ever saw the run.
    cluster.stop_operator().await;
    cluster.create_run(one_off("manual")).await;
    let stored = cluster
        .run("manual")
        .await
        .unwrap_or_else(|| panic!("manual run"));
    let template = template_of(&stored, None).unwrap_or_default();
    let pod = pod_for(&stored, &template, 1).unwrap_or_else(|err| panic!("pod: {err}"));
    cluster.create_pod(pod).await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(
        cluster.pod_names().await,
        vec!["adopt-1767225600-1", "manual-1"],
        "the existing pod is the run's first attempt"
    );
    cluster.pod_exits("manual-1", 0, "adopted").await;
    let run = cluster
        .run("manual")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(run.result.as_deref(), Some("adopted"));
    assert_eq!(run.attempts, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_run_created_by_a_pass_whose_status_was_lost_is_not_also_coalesced() {
    // Found by tests/property.rs. The operator creates the run of 15 s and dies before its
    // status write; back at 30 s, it plans (0, 30] again with coalesce Latest: 30 runs, and 15
    // (which has its run) must not be counted as merged away as well.
    let mut cluster = Cluster::start().await;
    cluster
        .apply(every("lost", "15s").max_running(1, ConcurrencyPolicy::Skip))
        .await;
    cluster.pod_exits("lost-1767225600-1", 0, "ok").await;
    cluster.server.faults().refuse_after(
        horolog_memserver::RequestMatch::any()
            .client(cluster::OPERATOR)
            .verb("create")
            .resource("jobruns"),
    );
    cluster.advance_to(at(15)).await;
    cluster.kill_operator().await;
    cluster.server.faults().restore();
    cluster.advance_to(at(30)).await;
    cluster.start_operator();
    cluster.advance(1).await;
    assert_eq!(cluster.fire_secs("lost").await, vec![0, 15, 30]);
    let status = cluster.schedule("lost").await.status.unwrap_or_default();
    assert_eq!(
        (status.coalesced_fire_times, status.missed_fire_times),
        (0, 0),
        "each of the three fire times has its run and nothing else"
    );
}

#[tokio::test(start_paused = true)]
async fn replace_during_a_catch_up_starts_only_the_newest_run_and_never_cancels_a_newer_one() {
    let mut cluster = Cluster::start().await;
    cluster
        .apply(
            every("latest-wins", "1m")
                .coalesce(CoalescePolicy::All)
                .max_running(1, ConcurrencyPolicy::Replace)
                .history(10, 10),
        )
        .await;
    cluster.pod_running("latest-wins-1767225600-1").await;
    cluster.stop_operator().await;
    cluster.advance(180).await;
    cluster.start_operator();
    cluster.settle().await;
    use JobRunPhase::*;
    assert_eq!(
        cluster.phases("latest-wins").await,
        vec![Cancelled, Cancelled, Cancelled, Scheduled],
        "0 was running and is replaced; 60 and 120 never start; 180 runs"
    );
    assert_eq!(cluster.pod_names().await, vec!["latest-wins-1767225780-1"]);
    for (name, by) in [
        ("latest-wins-1767225660", "latest-wins-1767225780"),
        ("latest-wins-1767225720", "latest-wins-1767225780"),
    ] {
        let run = cluster.run(name).await.and_then(|r| r.status).unwrap_or_default();
        assert_eq!(run.reason.as_deref(), Some("Replaced"));
        assert!(run.message.unwrap_or_default().contains(by));
    }
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_succeeded_before_its_run_was_written_stays_a_success_when_replace_takes_its_slot() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("latest-wins", "1m")
                .max_running(1, ConcurrencyPolicy::Replace)
                .history(10, 10),
        )
        .await;
    cluster.pod_running("latest-wins-1767225600-1").await;
    cluster.advance(10).await;
    // The run's outcome cannot be written until after the next fire time, so the newer run
    // asks for its slot while the finished one still holds it (as after an outage).
    cluster.server.faults().fail(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("patch")
            .resource("jobruns")
            .subresource("status"),
        usize::MAX,
        500,
    );
    cluster.pod_exits("latest-wins-1767225600-1", 0, "done").await;
    cluster.advance(60).await;
    cluster.server.faults().restore();
    cluster.advance(30).await;
    use JobRunPhase::*;
    assert_eq!(
        cluster.phases("latest-wins").await,
        vec![Succeeded, Scheduled],
        "the finished run keeps its outcome; the next one starts"
    );
    let first = cluster
        .run("latest-wins-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(first.result.as_deref(), Some("done"));
    assert_eq!(first.exit_code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn raising_max_running_jobs_starts_waiting_runs_at_once() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("queue", "1m").max_running(1, ConcurrencyPolicy::Wait))
        .await;
    cluster.advance(60).await;
    cluster.advance(60).await;
    use JobRunPhase::*;
    assert_eq!(cluster.phases("queue").await, vec![Scheduled, Waiting, Waiting]);
    cluster
        .patch_schedule("queue", json!({"spec": {"maxRunningJobs": 3}}))
        .await;
    assert_eq!(cluster.pod_names().await.len(), 3, "both waiting runs started");
}

#[tokio::test(start_paused = true)]
async fn changing_the_policy_to_skip_ends_waiting_runs_at_once() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("queue", "1m").max_running(1, ConcurrencyPolicy::Wait))
        .await;
    cluster.advance(60).await;
    use JobRunPhase::*;
    assert_eq!(cluster.phases("queue").await, vec![Scheduled, Waiting]);
    cluster
        .patch_schedule("queue", json!({"spec": {"concurrencyPolicy": "Skip"}}))
        .await;
    assert_eq!(cluster.phases("queue").await, vec![Scheduled, Skipped]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_neither_fires_events_again_nor_counts_again() {
    let mut cluster =
        Cluster::start_with(|config| config.events = horolog::controller::EventPolicy::All).await;
    cluster
        .apply(every("steady", "1m").coalesce(CoalescePolicy::All).grace("30s"))
        .await;
    cluster.stop_operator().await;
    cluster.advance(140).await;
    cluster.start_operator();
    cluster.settle().await;
    let before = cluster.events_of("steady").await;
    let status = cluster.schedule("steady").await.status.unwrap_or_default();
    cluster.stop_operator().await;
    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(cluster.events_of("steady").await, before, "no Event twice");
    let again = cluster.schedule("steady").await.status.unwrap_or_default();
    assert_eq!(again.missed_fire_times, status.missed_fire_times);
    assert_eq!(again.fired_count, status.fired_count);
    assert_eq!(again.fired_count, 2);
}

#[tokio::test(start_paused = true)]
async fn finished_runs_carry_the_conditions_batch_jobs_write() {
    let cluster = Cluster::start().await;
    cluster.apply(every("done", "1m")).await;
    cluster.pod_exits("done-1767225600-1", 0, "").await;
    cluster.advance(60).await;
    cluster.pod_exits("done-1767225660-1", 2, "").await;
    let condition = |run: Option<horolog::api::JobRun>| {
        let status = run.and_then(|r| r.status).unwrap_or_default();
        status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.observed_generation))
            .collect::<Vec<_>>()
    };
    // observedGeneration: kstatus readers compare it with metadata.generation.
    assert_eq!(
        condition(cluster.run("done-1767225600").await),
        vec![("Complete".to_string(), "True".to_string(), Some(1))]
    );
    assert_eq!(
        condition(cluster.run("done-1767225660").await),
        vec![("Failed".to_string(), "True".to_string(), Some(1))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_pending_run_ends_at_once_and_a_cancelled_running_one_loses_its_pod() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("cancel", "1m")
                .max_running(1, ConcurrencyPolicy::Wait)
                .history(10, 10),
        )
        .await;
    cluster.pod_running("cancel-1767225600-1").await;
    cluster.advance(60).await;
    use JobRunPhase::*;
    assert_eq!(cluster.phases("cancel").await, vec![Running, Waiting]);
    cluster
        .patch_run(
            "cancel-1767225660",
            json!({"metadata": {"annotations": {"horolog.dev/cancel": "alice"}}}),
        )
        .await;
    assert_eq!(cluster.phases("cancel").await, vec![Running, Cancelled]);
    cluster
        .patch_run(
            "cancel-1767225600",
            json!({"metadata": {"annotations": {"horolog.dev/cancel": "alice"}}}),
        )
        .await;
    assert_eq!(cluster.phases("cancel").await, vec![Cancelled, Cancelled]);
    assert!(cluster.pod_names().await.is_empty(), "the running pod is deleted");
    let run = cluster
        .run("cancel-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.reason.as_deref(), Some("CancelRequested"));
    assert!(run.message.unwrap_or_default().contains("alice"));
    let names: Vec<String> = cluster
        .runs_of("cancel")
        .await
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert_eq!(names.len(), 2);
}

/// A Pod that a StatefulSet (or `kubectl run`) made, named as a run's first attempt.
fn foreign_pod(name: &str, labels: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "victim",
                "uid": "0b5e7c3a-sts", "controller": true}],
        },
        "spec": {"containers": [{"name": "db", "image": "postgres"}]},
    }))
    .unwrap_or_else(|err| panic!("pod: {err}"))
}

async fn status_of(cluster: &Cluster, run: &str) -> horolog::api::JobRunStatus {
    cluster.run(run).await.and_then(|r| r.status).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_pod_the_operator_did_not_create_is_neither_adopted_nor_deleted() {
    let cluster = Cluster::start().await;
    // A StatefulSet's Pod, and one that even carries the run's labels but no owner of ours.
    cluster
        .create_pod(foreign_pod("victim-1", json!({"app": "db"})))
        .await;
    let mut labelled = foreign_pod(
        "mimic-1",
        json!({"horolog.dev/jobrun": "mimic", "horolog.dev/attempt": "1"}),
    );
    labelled.metadata.owner_references = None;
    cluster.create_pod(labelled).await;
    let uids = |pods: Vec<k8s_openapi::api::core::v1::Pod>| {
        pods.iter()
            .map(|p| (p.name_any(), p.uid(), p.metadata.deletion_timestamp.is_some()))
            .collect::<Vec<_>>()
    };
    let before = uids(cluster.pods().await);
    for name in ["victim", "mimic"] {
        cluster.create_run(one_off(name)).await;
        cluster
            .patch_run(
                name,
                json!({"metadata": {"annotations": {"horolog.dev/cancel": "ops"}}}),
            )
            .await;
        let status = status_of(&cluster, name).await;
        assert_eq!(status.phase, Some(JobRunPhase::Failed), "{name}: {status:?}");
        assert_eq!(status.reason.as_deref(), Some("NameConflict"));
        let pod = format!("{name}-1");
        assert!(
            cluster
                .events_of(name)
                .await
                .iter()
                .any(|(reason, note)| reason == "Failed" && note.contains(&format!("pod {pod}"))),
            "a Warning Event names the pod"
        );
    }
    assert_eq!(uids(cluster.pods().await), before, "neither Pod touched");
}

#[tokio::test(start_paused = true)]
async fn a_jobrun_created_again_under_its_name_runs_fresh() {
    let cluster = Cluster::start().await;
    cluster.create_run(one_off("again")).await;
    cluster.pod_exits("again-1", 0, "first").await;
    assert_eq!(
        status_of(&cluster, "again").await.phase,
        Some(JobRunPhase::Succeeded)
    );
    let runs: kube::Api<horolog::api::JobRun> = kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    // As README says to re-run it: delete the JobRun (its Pod goes by owner), create it again.
    runs.delete("again", &Default::default())
        .await
        .unwrap_or_else(|err| panic!("delete: {err}"));
    cluster.settle().await;
    assert!(cluster.pod_names().await.is_empty());
    cluster.create_run(one_off("again")).await;
    let status = status_of(&cluster, "again").await;
    assert_ne!(status.phase, Some(JobRunPhase::Failed), "{status:?}");
    assert_eq!(
        cluster.pod_names().await,
        vec!["again-1"],
        "a fresh first attempt"
    );
    cluster.pod_exits("again-1", 0, "second").await;
    let status = status_of(&cluster, "again").await;
    assert_eq!(status.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(status.result.as_deref(), Some("second"));

    // On a real cluster the old Pod outlives its JobRun a moment: the new run waits for it.
    cluster.server.hold_garbage_collection();
    runs.delete("again", &Default::default())
        .await
        .unwrap_or_else(|err| panic!("delete: {err}"));
    cluster.settle().await;
    cluster.create_run(one_off("again")).await;
    cluster.advance(3).await;
    let new_uid = cluster.run("again").await.and_then(|r| r.uid());
    let owner = |pods: Vec<k8s_openapi::api::core::v1::Pod>| {
        pods.iter()
            .flat_map(|p| {
                p.owner_references()
                    .iter()
                    .map(|o| o.uid.clone())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_ne!(
        owner(cluster.pods().await),
        vec![new_uid.clone().unwrap_or_default()]
    );
    assert_ne!(
        status_of(&cluster, "again").await.phase,
        Some(JobRunPhase::Failed)
    );
    cluster.server.release_garbage_collection();
    cluster.advance(6).await;
    assert_eq!(
        owner(cluster.pods().await),
        vec![new_uid.unwrap_or_default()],
        "once the old Pod is gone, the new run creates its own"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_run_created_again_under_its_name_runs_fresh() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    let as_job = || {
        let mut run = one_off("batch");
        run.spec.run.executor = Some(horolog::api::Executor::Job);
        run
    };
    cluster.create_run(as_job()).await;
    let runs: kube::Api<horolog::api::JobRun> = kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    runs.delete("batch", &Default::default())
        .await
        .unwrap_or_else(|err| panic!("delete: {err}"));
    cluster.settle().await;
    cluster.create_run(as_job()).await;
    let status = status_of(&cluster, "batch").await;
    assert_ne!(status.phase, Some(JobRunPhase::Failed), "{status:?}");
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> =
        kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    let job = jobs
        .get("batch-1")
        .await
        .unwrap_or_else(|err| panic!("the new run's Job: {err}"));
    assert_eq!(
        job.owner_references().first().map(|o| o.uid.clone()),
        cluster.run("batch").await.and_then(|r| r.uid())
    );
}

#[tokio::test(start_paused = true)]
async fn a_schedule_created_again_under_its_name_never_inherits_the_old_ones_runs() {
    let cluster = Cluster::start().await;
    let from_t0 = || {
        schedule(
            "reborn",
            TriggerSpec {
                interval: Some("1h".parse().unwrap_or_default()),
                start_time: Some(t0().fixed_offset()),
                ..TriggerSpec::default()
            },
        )
        .grace("1h")
    };
    cluster.apply(from_t0()).await;
    let first = "reborn-1767225600";
    let old_uid = cluster.schedule("reborn").await.uid();
    assert!(cluster.run(first).await.is_some());
    // Deleted and applied again at once: on a real cluster the old run is still there.
    cluster.server.hold_garbage_collection();
    cluster.delete_schedule("reborn").await;
    cluster.advance(1).await;
    cluster.apply(from_t0()).await;
    cluster.advance(2).await;
    let new_uid = cluster.schedule("reborn").await.uid();
    assert_ne!(new_uid, old_uid);
    let status = cluster.schedule("reborn").await.status.unwrap_or_default();
    assert!(
        status.active.iter().all(|a| a.name != first),
        "the old Schedule's run is not this one's: {:?}",
        status.active
    );
    cluster.server.release_garbage_collection();
    cluster.advance(6).await;
    let run = cluster
        .run(first)
        .await
        .unwrap_or_else(|| panic!("the fire time runs again, for the new Schedule"));
    assert_eq!(run.owner_references().first().map(|o| o.uid.clone()), new_uid);
    assert_eq!(
        cluster
            .pods()
            .await
            .iter()
            .map(|p| p.owner_references()[0].uid.clone())
            .collect::<Vec<_>>(),
        vec![run.uid().unwrap_or_default()]
    );
}

/// A Schedule of one slot with five runs waiting for it.
async fn five_waiting(cluster: &Cluster, name: &str) {
    cluster
        .apply(
            every(name, "1m")
                .max_running(1, ConcurrencyPolicy::Wait)
                .history(10, 10),
        )
        .await;
    for _ in 0..5 {
        cluster.advance(60).await;
    }
    use JobRunPhase::*;
    assert_eq!(
        cluster.phases(name).await,
        vec![Scheduled, Waiting, Waiting, Waiting, Waiting, Waiting]
    );
}

async fn delete_schedule_with(cluster: &Cluster, name: &str, params: kube::api::DeleteParams) {
    let api: kube::Api<horolog::api::Schedule> = kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    api.delete(name, &params)
        .await
        .unwrap_or_else(|err| panic!("delete schedule: {err}"));
    cluster.settle().await;
    cluster.advance(1).await;
}

fn reasons(runs: &[horolog::api::JobRun]) -> Vec<(Option<JobRunPhase>, Option<String>)> {
    runs.iter()
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            (status.phase, status.reason)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_run_of_a_lost_status_write_counts_against_max_runs_even_when_coalesced_away() {
    // The operator creates the first run of a maxRuns: 1 Schedule, its status write fails, and
    // it dies. Back two fire times later, coalesce Latest merges the first fire time away in
    // the re-plan: its run still exists, so it is the one run maxRuns allows.
    let mut cluster = Cluster::start().await;
    cluster.server.faults().fail(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("patch")
            .resource("schedules")
            .subresource("status"),
        usize::MAX,
        500,
    );
    let mut once = every("once", "1m");
    once.spec.max_runs = Some(1);
    cluster.apply(once).await;
    assert_eq!(cluster.fire_secs("once").await, vec![0]);
    cluster.kill_operator().await;
    cluster.server.faults().restore();
    cluster.advance_to(at(125)).await;
    cluster.start_operator();
    cluster.advance(1).await;
    assert_eq!(
        cluster.fire_secs("once").await,
        vec![0],
        "maxRuns: 1 gives one run"
    );
    let status = cluster.schedule("once").await.status.unwrap_or_default();
    assert_eq!(status.fired_count, 1);
    assert!(
        status.active.iter().any(|a| a.name == "once-1767225600"),
        "the run is listed, so it is counted when it ends: {:?}",
        status.active
    );
}

/// `METHOD path` of each Pod create sent so far.
fn pod_creates(cluster: &Cluster) -> Vec<String> {
    cluster
        .writes()
        .into_iter()
        .filter(|w| w.starts_with("POST") && w.ends_with("/pods"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_deleted_schedule_starts_none_of_its_waiting_runs() {
    let cancelled = (Some(JobRunPhase::Cancelled), Some("ScheduleDeleted".to_string()));
    // Background (kubectl's default) while garbage collection lags, as on a real cluster.
    let cluster = Cluster::start().await;
    five_waiting(&cluster, "queue").await;
    cluster.server.hold_garbage_collection();
    delete_schedule_with(&cluster, "queue", kube::api::DeleteParams::background()).await;
    assert_eq!(cluster.pod_names().await.len(), 1, "nothing else started");
    let runs = cluster.runs_of("queue").await;
    assert_eq!(reasons(&runs[1..]), vec![cancelled.clone(); 5]);
    let run = runs[1].name_any();
    assert!(cluster.reasons_of(&run).await.contains(&"Cancelled".to_string()));
    cluster.server.release_garbage_collection();
    cluster.settle().await;
    assert!(cluster.runs_of("queue").await.is_empty());

    // --cascade=orphan: the runs stay, without owner.
    for hold in [false, true] {
        let name = if hold { "kept-held" } else { "kept" };
        five_waiting(&cluster, name).await;
        if hold {
            cluster.server.hold_garbage_collection();
        }
        delete_schedule_with(&cluster, name, kube::api::DeleteParams::orphan()).await;
        cluster.server.release_garbage_collection();
        cluster.advance(60).await;
        let runs = cluster.runs_of(name).await;
        assert_eq!(runs.len(), 6, "{name}: orphaned, not deleted");
        assert_eq!(reasons(&runs[1..]), vec![cancelled.clone(); 5], "{name}");
        let pods = cluster.pod_names().await;
        assert_eq!(
            pods.iter().filter(|p| p.starts_with(&format!("{name}-"))).count(),
            1,
            "{name}: {pods:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_finished_and_was_deleted_while_no_operator_watched_never_runs_again() {
    // The operator dies right after creating the run's Pod; the Pod runs, succeeds and is
    // deleted (a node drain, `kubectl delete pod`) before any operator sees it. The next
    // operator must find its outcome, not run the attempt a second time.
    let mut cluster = Cluster::start().await;
    cluster.apply(every("drained", "1h")).await;
    assert_eq!(pod_creates(&cluster).len(), 1);
    cluster.kill_operator().await;
    cluster.pod_running("drained-1767225600-1").await;
    cluster.pod_exits("drained-1767225600-1", 0, "done").await;
    cluster.delete_pod("drained-1767225600-1").await;
    cluster.advance(30).await;
    cluster.start_operator();
    cluster.advance(5).await;
    assert_eq!(
        pod_creates(&cluster).len(),
        1,
        "the attempt ran once: {:?}",
        cluster.writes()
    );
    let run = cluster
        .run("drained-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(run.result.as_deref(), Some("done"));
    assert!(
        cluster.pod_names().await.is_empty(),
        "its outcome recorded, the Pod is released and goes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pod_whose_status_was_recorded_but_which_vanished_unseen_is_lost_not_run_again() {
    // Pods made before the tracking finalizer (or whose finalizer someone removed by hand)
    // can vanish while no operator watches: the run's status names the attempt, so its
    // outcome is unknown, and the run says so rather than start the attempt again.
    let mut cluster = Cluster::start().await;
    cluster.apply(every("vanished", "1h")).await;
    cluster.pod_running("vanished-1767225600-1").await;
    cluster.advance(5).await;
    let status = cluster.run("vanished-1767225600").await.and_then(|r| r.status);
    assert_eq!(status.and_then(|s| s.phase), Some(JobRunPhase::Running));
    cluster.kill_operator().await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    pods.patch(
        "vanished-1767225600-1",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap_or_else(|err| panic!("remove finalizer: {err}"));
    cluster.delete_pod("vanished-1767225600-1").await;
    cluster.start_operator();
    cluster.advance(5).await;
    assert_eq!(pod_creates(&cluster).len(), 1, "no second Pod for attempt 1");
    let run = cluster
        .run("vanished-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(JobRunPhase::Failed));
    assert_eq!(run.reason.as_deref(), Some("Lost"));
    assert!(run.message.unwrap_or_default().contains("attempt 1"));
}

#[tokio::test(start_paused = true)]
async fn no_pod_stays_terminating_on_its_tracking_finalizer() {
    let cluster = Cluster::start().await;
    // Cancelled: its Pod is deleted, then released once Cancelled is written.
    cluster.apply(every("cancelled", "1h")).await;
    cluster.pod_running("cancelled-1767225600-1").await;
    cluster
        .patch_run(
            "cancelled-1767225600",
            json!({"metadata": {"annotations": {"horolog.dev/cancel": "alice"}}}),
        )
        .await;
    // resultTTL: the run is deleted 1 minute after it ended, its Pod by owner.
    cluster.apply(every("brief", "1h").result_ttl("1m")).await;
    cluster.pod_exits("brief-1767225600-1", 0, "").await;
    // A user deletes a running JobRun; and a Schedule is deleted with its running run.
    cluster.apply(every("deleted-run", "1h")).await;
    cluster.pod_running("deleted-run-1767225600-1").await;
    cluster.apply(every("deleted-schedule", "1h")).await;
    cluster.pod_running("deleted-schedule-1767225600-1").await;
    let runs: kube::Api<horolog::api::JobRun> = kube::Api::namespaced(cluster.client.clone(), cluster::NS);
    runs.delete("deleted-run-1767225600", &kube::api::DeleteParams::default())
        .await
        .unwrap_or_else(|err| panic!("delete run: {err}"));
    cluster.delete_schedule("deleted-schedule").await;
    cluster.advance(120).await;
    let phase = cluster
        .run("cancelled-1767225600")
        .await
        .and_then(|r| r.status)
        .and_then(|s| s.phase);
    assert_eq!(phase, Some(JobRunPhase::Cancelled));
    assert!(
        cluster.run("brief-1767225600").await.is_none(),
        "resultTTL deleted it"
    );
    let left: Vec<String> = cluster
        .pods()
        .await
        .into_iter()
        .map(|p| {
            format!(
                "{} deleting={} finalizers={:?}",
                p.name_any(),
                p.metadata.deletion_timestamp.is_some(),
                p.metadata.finalizers
            )
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(start_paused = true)]
async fn a_trigger_edited_while_no_operator_ran_counts_from_the_edit_not_from_when_it_was_noticed() {
    // Every minute from 00:00; the operator goes down at 00:00:30. At 00:02:30 the trigger is
    // edited to every 2 minutes (00:02, 00:04, ...); the operator is back at 00:04:10.
    let mut cluster = Cluster::start().await;
    cluster.apply(every("edited-offline", "1m")).await;
    cluster.advance(30).await;
    cluster.stop_operator().await;
    cluster.advance_to(at(150)).await;
    cluster
        .patch_schedule("edited-offline", json!({"spec": {"trigger": {"interval": "2m"}}}))
        .await;
    cluster.advance_to(at(250)).await;
    cluster.start_operator();
    cluster.advance(1).await;
    // 00:04:00 is the new trigger's first fire time after the edit: it runs, though the edit
    // was noticed only after it. 00:01 and 00:02 were the old trigger's, before the edit:
    // handled by its rule (coalesce Latest: 00:02 runs, 00:01 is merged into it).
    assert_eq!(cluster.fire_secs("edited-offline").await, vec![0, 120, 240]);
    let status = cluster
        .schedule("edited-offline")
        .await
        .status
        .unwrap_or_default();
    assert_eq!(
        (status.missed_fire_times, status.coalesced_fire_times),
        (0, 1),
        "00:01 of the old trigger, merged into 00:02"
    );
    assert_eq!(status.next_fire_time, Some(at(360)));
}

#[tokio::test(start_paused = true)]
async fn a_run_orphaned_from_a_deleted_schedule_is_never_taken_as_the_new_schedule_of_its_name() {
    // An hourly Schedule that started an hour before its creation: its first pass runs
    // 00:00 (Latest of -01:00 and 00:00). Deleted with --cascade=orphan, its run stays,
    // without owner; a new Schedule of the same name plans the same fire time.
    let hourly = || {
        let trigger = TriggerSpec {
            interval: Some("1h".parse().unwrap_or_default()),
            start_time: Some((t0() - TimeDelta::hours(1)).fixed_offset()),
            ..TriggerSpec::default()
        };
        schedule("again", trigger)
    };
    let cluster = Cluster::start().await;
    cluster.apply(hourly()).await;
    assert_eq!(cluster.fire_secs("again").await, vec![0]);
    delete_schedule_with(&cluster, "again", kube::api::DeleteParams::orphan()).await;
    cluster.apply(hourly()).await;
    cluster.advance(1).await;
    let status = cluster.schedule("again").await.status.unwrap_or_default();
    assert!(
        status.active.is_empty(),
        "the orphan is not listed as the new Schedule's: {:?}",
        status.active
    );
    assert_eq!(
        (status.fired_count, status.missed_fire_times),
        (0, 1),
        "its fire time made no run of this Schedule: missed, counted"
    );
    assert!(
        cluster
            .reasons_of("again")
            .await
            .contains(&"NameConflict".to_string()),
        "a Warning names the JobRun"
    );
    let orphan = cluster
        .run("again-1767225600")
        .await
        .unwrap_or_else(|| panic!("the orphan stays"));
    assert!(orphan.owner_references().is_empty(), "left alone");
    // The orphan ends; the new Schedule does not count it.
    cluster.pod_exits("again-1767225600-1", 1, "").await;
    cluster.advance(120).await;
    let status = cluster.schedule("again").await.status.unwrap_or_default();
    assert_eq!(status.consecutive_failures, 0, "not this Schedule's failure");
}
