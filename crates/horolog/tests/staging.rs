//! Staged runs (issue 25): a Schedule creates the JobRun of its next fire time a little before
//! it is due (phase Scheduled), and at the fire time the operator only creates its Pod. A staged
//! run is its fire time's one outcome: a pause, an edit of the trigger or of a Calendar, maxRuns,
//! the end of the trigger or the Schedule's deletion before the fire time remove it, with the
//! reason, and nothing is counted twice; a restart or an outage between staging and firing
//! neither loses nor doubles it; no Pod is created before its fire time (plus jitter). The real
//! operator on the in-memory API server, on tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use std::time::Duration as StdDuration;

use chrono::TimeDelta;
use cluster::{Cluster, NS, OPERATOR};
use fixtures::*;
use horolog::api::{Calendar, CalendarRef, CalendarSpec, JobRunPhase, Schedule, TriggerSpec};
use horolog::controller::DEFAULT_CONCURRENCY;
use horolog_memserver::RequestMatch;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// An operator that stages every Schedule's runs 30 s ahead (the product default).
async fn staging_cluster() -> Cluster {
    Cluster::start_with(|config| config.stage_ahead = StdDuration::from_secs(30)).await
}

/// A Schedule firing every minute from `at(60)` on.
fn minutely(name: &str) -> Schedule {
    schedule(
        name,
        TriggerSpec {
            interval: Some("1m".parse().unwrap_or_else(|e| panic!("{e}"))),
            start_time: Some(at(60).fixed_offset()),
            ..TriggerSpec::default()
        },
    )
}

/// `(firedCount, missedFireTimes, excludedFireTimes)` of `name`.
async fn counts(cluster: &Cluster, name: &str) -> (i64, i64, i64) {
    let status = cluster.schedule(name).await.status.unwrap_or_default();
    (
        status.fired_count,
        status.missed_fire_times,
        status.excluded_fire_times,
    )
}

/// The (reason, note) of the `Unstaged` Events about `name`.
async fn unstaged(cluster: &Cluster, name: &str) -> Vec<String> {
    cluster
        .events_of(name)
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "Unstaged")
        .map(|(_, note)| note)
        .collect()
}

/// The run of the fire time at(60) is created between 30 s and 15 s before it, Scheduled, with
/// no Pod and nothing counted; at the fire time its Pod is the operator's first write, and the
/// next fire time's run is staged in turn.
#[tokio::test(start_paused = true)]
async fn a_staged_run_is_created_ahead_and_fired_with_one_write() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(29)).await;
    assert!(cluster.runs_of("s").await.is_empty(), "not before the window");
    cluster.advance_to(at(46)).await;
    let runs = cluster.runs_of("s").await;
    assert_eq!(runs.len(), 1, "staged in the first half of the window");
    assert_eq!(runs[0].spec.fire_time, Some(at(60)));
    assert_eq!(
        runs[0].status.as_ref().and_then(|s| s.phase),
        Some(JobRunPhase::Scheduled),
        "the API server shows a new run Scheduled, at no write"
    );
    assert!(cluster.pods().await.is_empty(), "no Pod before the fire time");
    assert_eq!(
        counts(&cluster, "s").await,
        (0, 0, 0),
        "a staged run is not counted"
    );
    let status = cluster.schedule("s").await.status.unwrap_or_default();
    assert!(status.active.is_empty(), "nor listed");

    let before = cluster.writes().len();
    cluster.advance_to(at(60)).await;
    let writes = cluster.writes()[before..].to_vec();
    assert_eq!(
        writes.first().map(String::as_str),
        Some("POST /api/v1/namespaces/default/pods"),
        "the Pod is the first write at the fire instant: {writes:?}"
    );
    assert!(
        !writes.iter().any(|w| w.ends_with("/jobruns")),
        "no JobRun is created at the fire instant: {writes:?}"
    );
    assert_eq!(cluster.pod_names().await.len(), 1);
    assert_eq!(
        counts(&cluster, "s").await,
        (1, 0, 0),
        "counted once, at its fire time"
    );
    cluster.advance_to(at(106)).await;
    assert_eq!(
        cluster.fire_secs("s").await,
        vec![60, 120],
        "the next fire time's run is staged"
    );
    cluster.advance_to(at(121)).await;
    assert_eq!(cluster.pod_names().await.len(), 2);
    assert_eq!(counts(&cluster, "s").await.0, 2);
}

/// Writes per run do not grow with staging: the JobRun create moves earlier, it does not
/// double. Eleven minutes of one every-minute Schedule, staging off and on.
#[tokio::test(start_paused = true)]
async fn staging_adds_no_write_per_run() {
    let mut per_config = Vec::new();
    for ahead in [0, 30] {
        let cluster = Cluster::start_with(|config| config.stage_ahead = StdDuration::from_secs(ahead)).await;
        cluster.apply(minutely("s")).await;
        for minute in 1..=11 {
            cluster.advance_to(at(60 * minute + 1)).await;
            for pod in cluster.pod_names().await {
                cluster.try_pod_exits(&pod, 0, "ok").await;
            }
        }
        per_config.push((ahead, cluster.operator_writes(), counts(&cluster, "s").await.0));
    }
    let [(_, off, fired_off), (_, on, fired_on)] = per_config[..] else {
        panic!("two configurations")
    };
    assert_eq!(fired_off, 11);
    assert_eq!(fired_on, 11);
    // The run staged for the 11th minute is one create more in the same span.
    assert!(
        on <= off + 1,
        "staging on: {on} writes, off: {off} ({per_config:?})"
    );
}

/// Never early, with staging: Schedules of several triggers, with and without jitter, run for
/// five minutes, with a slow API server part of the time; every Pod is created at or after its
/// run's fire time plus jitter.
#[tokio::test(start_paused = true)]
async fn no_staged_run_starts_before_its_fire_time_plus_jitter() {
    let cluster = Cluster::start_with(|config| {
        config.concurrency = DEFAULT_CONCURRENCY;
        config.stage_ahead = StdDuration::from_secs(30);
    })
    .await;
    let created = cluster.record_pod_creations();
    let cron = |name: &str, expression: &str| {
        schedule(
            name,
            TriggerSpec {
                cron: Some(expression.to_string()),
                ..TriggerSpec::default()
            },
        )
        .history(100, 100)
    };
    for schedule in [
        cron("top", "* * * * *"),
        cron("top-jitter", "* * * * *").jitter("20s"),
        cron("odd-second", "7,37 * * * * *"),
        every("interval", "17s").history(100, 100),
        every("interval-jitter", "45s").jitter("30s").history(100, 100),
        minutely("from-60")
            .jitter("3s")
            .history(100, 100)
            .stage_ahead("50s"),
    ] {
        cluster.apply(schedule).await;
    }
    cluster.advance(150).await;
    cluster.server.faults().delay(
        RequestMatch::any().client(OPERATOR).writes(),
        StdDuration::from_millis(700),
    );
    cluster.advance(60).await;
    cluster.server.faults().restore();
    cluster.advance(90).await;

    let created = created.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(created.len() >= 30, "enough Pods: {}", created.len());
    let mut early = Vec::new();
    for (pod, created_at) in &created {
        let run_name = pod
            .rsplit_once('-')
            .map(|(run, _)| run.to_string())
            .unwrap_or_default();
        let run = cluster
            .run(&run_name)
            .await
            .unwrap_or_else(|| panic!("the run of {pod}"));
        let jitter = run
            .spec
            .jitter
            .map(|j| TimeDelta::from_std(j.as_std()).unwrap_or_default())
            .unwrap_or_default();
        let not_before = run.spec.fire_time.unwrap_or_default() + jitter;
        if *created_at < not_before {
            early.push(format!("{pod}: created {created_at}, not before {not_before}"));
        }
    }
    assert!(early.is_empty(), "Pods before their fire time: {early:#?}");
    // Each fire time has one run: the staged runs were not created a second time.
    for name in ["top", "odd-second", "interval", "from-60"] {
        let fires = cluster.fire_secs(name).await;
        let mut unique = fires.clone();
        unique.dedup();
        assert_eq!(fires, unique, "{name}");
    }
}

/// The operator restarts between staging and firing: the new process finds the staged run and
/// fires it, once.
#[tokio::test(start_paused = true)]
async fn a_restart_between_staging_and_firing_neither_loses_nor_doubles_the_run() {
    let mut cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    cluster.kill_operator().await;
    cluster.advance_to(at(52)).await;
    cluster.start_operator();
    cluster.advance_to(at(61)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    assert_eq!(cluster.pod_names().await.len(), 1, "started once");
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
}

/// The operator is down across the fire time: the next one finds the staged run due and
/// starts it (no misfireGraceTime), counted once.
#[tokio::test(start_paused = true)]
async fn an_outage_across_the_fire_time_fires_the_staged_run_once() {
    let mut cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    cluster.stop_operator().await;
    cluster.advance_to(at(75)).await;
    assert!(cluster.pods().await.is_empty());
    cluster.start_operator();
    cluster.advance(2).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    assert_eq!(cluster.pod_names().await.len(), 1);
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
    cluster.advance_to(at(121)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60, 120]);
    assert_eq!(counts(&cluster, "s").await, (2, 0, 0));
}

/// Past its misfireGraceTime when the operator is back, the fire time is missed as it is
/// without staging: counted once in missedFireTimes, never fired, its staged run deleted.
#[tokio::test(start_paused = true)]
async fn a_staged_run_past_its_grace_time_is_missed_once() {
    let mut cluster = staging_cluster().await;
    cluster.apply(minutely("s").grace("5s")).await;
    cluster.advance_to(at(47)).await;
    cluster.stop_operator().await;
    cluster.advance_to(at(75)).await;
    cluster.start_operator();
    cluster.advance(2).await;
    assert!(cluster.runs_of("s").await.is_empty());
    assert!(cluster.pods().await.is_empty());
    assert_eq!(counts(&cluster, "s").await, (0, 1, 0));
    let notes = unstaged(&cluster, "s").await;
    assert!(notes.len() == 1 && notes[0].contains("(Missed)"), "{notes:?}");
}

/// With coalesce Latest, an outage over several fire times runs the latest only, as without
/// staging: the staged run of the first is deleted and counted coalesced.
#[tokio::test(start_paused = true)]
async fn an_outage_coalesces_the_staged_run_as_without_staging() {
    let mut cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    cluster.stop_operator().await;
    cluster.advance_to(at(190)).await;
    cluster.start_operator();
    cluster.advance(2).await;
    assert_eq!(cluster.fire_secs("s").await, vec![180], "the latest only");
    let status = cluster.schedule("s").await.status.unwrap_or_default();
    assert_eq!((status.fired_count, status.coalesced_fire_times), (1, 2));
}

/// A pause before the fire time deletes the staged run (Event Unstaged, reason Paused); the fire
/// time then passes while paused, as it does without staging; the resume stages again.
#[tokio::test(start_paused = true)]
async fn a_pause_unstages_the_run() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    cluster
        .patch_schedule("s", json!({"spec": {"paused": true}}))
        .await;
    assert!(cluster.runs_of("s").await.is_empty(), "deleted");
    let notes = unstaged(&cluster, "s").await;
    assert!(notes.len() == 1 && notes[0].contains("(Paused)"), "{notes:?}");
    cluster.advance_to(at(61)).await;
    assert!(cluster.pods().await.is_empty());
    assert_eq!(
        counts(&cluster, "s").await,
        (0, 0, 0),
        "nothing counted while paused"
    );
    cluster
        .patch_schedule("s", json!({"spec": {"paused": false}}))
        .await;
    cluster.advance_to(at(121)).await;
    let fires = cluster.fire_secs("s").await;
    assert!(
        fires.ends_with(&[120]),
        "staged and fired again after the resume: {fires:?}"
    );
    let (fired, missed, _) = counts(&cluster, "s").await;
    assert_eq!(
        fired + missed,
        fires.len() as i64 + missed,
        "each fire time counted once"
    );
    assert_eq!(fired as usize, fires.len());
}

/// A trigger edit that drops the staged fire time deletes its run (TriggerEdited); the new
/// trigger's first fire time fires, once.
#[tokio::test(start_paused = true)]
async fn a_trigger_edit_unstages_the_run() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    cluster
        .patch_schedule(
            "s",
            json!({"spec": {"trigger": {"startTime": at(65).to_rfc3339()}}}),
        )
        .await;
    let notes = unstaged(&cluster, "s").await;
    assert!(
        notes.len() == 1 && notes[0].contains("(TriggerEdited)"),
        "{notes:?}"
    );
    cluster.advance_to(at(66)).await;
    assert_eq!(
        cluster.fire_secs("s").await,
        vec![65],
        "the new trigger's run, staged or not"
    );
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
}

/// A trigger edit that keeps the staged fire time keeps its run.
#[tokio::test(start_paused = true)]
async fn a_trigger_edit_that_keeps_the_fire_time_keeps_the_run() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    let uid = cluster.runs_of("s").await[0].metadata.uid.clone();
    cluster
        .patch_schedule("s", json!({"spec": {"trigger": {"interval": "2m"}}}))
        .await;
    assert!(unstaged(&cluster, "s").await.is_empty());
    cluster.advance_to(at(61)).await;
    let runs = cluster.runs_of("s").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].metadata.uid, uid, "the staged run fired");
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
}

/// A Calendar edit that excludes the staged fire time deletes its run (CalendarEdited); the fire
/// time is counted excluded, not fired.
#[tokio::test(start_paused = true)]
async fn a_calendar_edit_unstages_the_run() {
    let cluster = staging_cluster().await;
    let calendars: Api<Calendar> = Api::namespaced(cluster.client.clone(), NS);
    let spec: CalendarSpec =
        serde_json::from_value(json!({"days": ["2027-01-01"]})).unwrap_or_else(|e| panic!("{e}"));
    calendars
        .create(&PostParams::default(), &Calendar::new("quiet", spec))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = minutely("s");
    s.spec.calendar_refs = vec![CalendarRef { name: "quiet".into() }];
    cluster.apply(s).await;
    cluster.advance_to(at(47)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    calendars
        .patch(
            "quiet",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"recurring": [{"minute": "1"}]}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cluster.advance(1).await;
    let notes = unstaged(&cluster, "s").await;
    assert!(
        notes.len() == 1 && notes[0].contains("(CalendarEdited)"),
        "{notes:?}"
    );
    cluster.advance_to(at(121)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![120]);
    assert_eq!(
        counts(&cluster, "s").await,
        (1, 0, 1),
        "60 excluded once, 120 fired"
    );
}

/// maxRuns lowered to what has fired deletes the staged run (MaxRunsReached).
#[tokio::test(start_paused = true)]
async fn max_runs_unstages_the_run() {
    let cluster = staging_cluster().await;
    let mut s = minutely("s");
    s.spec.max_runs = Some(3);
    cluster.apply(s).await;
    cluster.advance_to(at(107)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60, 120]);
    cluster.patch_schedule("s", json!({"spec": {"maxRuns": 1}})).await;
    let notes = unstaged(&cluster, "s").await;
    assert!(
        notes.len() == 1 && notes[0].contains("(MaxRunsReached)"),
        "{notes:?}"
    );
    cluster.advance_to(at(200)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
}

/// An endTime before the staged fire time deletes its run (TriggerEnded).
#[tokio::test(start_paused = true)]
async fn the_end_of_the_trigger_unstages_the_run() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(107)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60, 120]);
    cluster
        .patch_schedule(
            "s",
            json!({"spec": {"trigger": {"endTime": at(110).to_rfc3339()}}}),
        )
        .await;
    let notes = unstaged(&cluster, "s").await;
    assert!(
        notes.len() == 1 && notes[0].contains("(TriggerEnded)"),
        "{notes:?}"
    );
    cluster.advance_to(at(200)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
}

/// Deleting the Schedule before the fire time removes its staged run with it: no Pod.
#[tokio::test(start_paused = true)]
async fn deleting_the_schedule_removes_its_staged_run() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    cluster.delete_schedule("s").await;
    cluster.advance_to(at(70)).await;
    assert!(cluster.runs().await.is_empty());
    assert!(cluster.pods().await.is_empty());
}

/// `stageAhead: 0s` turns staging off for one Schedule; run-now runs are never staged.
#[tokio::test(start_paused = true)]
async fn stage_ahead_zero_turns_staging_off() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("off").stage_ahead("0s")).await;
    cluster.advance_to(at(59)).await;
    assert!(cluster.runs_of("off").await.is_empty());
    cluster.advance_to(at(61)).await;
    assert_eq!(cluster.fire_secs("off").await, vec![60]);
    assert_eq!(cluster.pod_names().await.len(), 1);
}

/// A user cancels a staged run: it ends Cancelled at once, never starts, and is its fire time's
/// one outcome (counted fired once, not staged again).
#[tokio::test(start_paused = true)]
async fn a_cancelled_staged_run_is_its_fire_times_outcome() {
    let cluster = staging_cluster().await;
    cluster.apply(minutely("s")).await;
    cluster.advance_to(at(47)).await;
    let name = cluster.runs_of("s").await[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    cluster
        .patch_run(
            &name,
            json!({"metadata": {"annotations": {"horolog.dev/cancel": "no"}}}),
        )
        .await;
    assert_eq!(cluster.phases("s").await, vec![JobRunPhase::Cancelled], "at once");
    cluster.advance_to(at(61)).await;
    assert!(cluster.pods().await.is_empty(), "never started");
    assert_eq!(cluster.fire_secs("s").await, vec![60]);
    assert_eq!(counts(&cluster, "s").await, (1, 0, 0));
    cluster.advance_to(at(121)).await;
    assert_eq!(cluster.fire_secs("s").await, vec![60, 120]);
    assert_eq!(cluster.pod_names().await.len(), 1);
}
