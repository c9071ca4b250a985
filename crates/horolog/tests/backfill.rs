//! Backfill controller tests: the real reconcilers against the in-process API server, on a
//! tokio clock that tests move (`start_paused`), with a stand-in kubelet. Each test name
//! states the behaviour it checks.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use cluster::{Cluster, NS};
use fixtures::*;
use futures::StreamExt;
use horolog::api::{
    BACKFILL_LABEL, Backfill, BackfillPhase, BackfillSpec, BackfillStatus, ConcurrencyPolicy, JobRun,
    JobRunPhase, Schedule,
};
use horolog::controller::backfill::BATCH_BUFFER;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

/// A Backfill of `schedule`'s fire times in `[from, to)`.
fn backfill(name: &str, schedule: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Backfill {
    Backfill::new(
        name,
        BackfillSpec {
            schedule_name: schedule.into(),
            from,
            to,
            concurrency_policy: None,
            max_fire_times: None,
            dry_run: false,
            ignore_exclusions: false,
        },
    )
}

/// The same Backfill as a dry run.
fn dry_run(mut backfill: Backfill) -> Backfill {
    backfill.spec.dry_run = true;
    backfill
}

/// A Schedule that fires nothing by itself, so only the Backfill creates runs.
fn paused(mut schedule: Schedule) -> Schedule {
    schedule.spec.paused = true;
    schedule
}

/// `t0()` plus `hours` hours (negative: before).
fn hours(hours: i64) -> DateTime<Utc> {
    at(hours * 3600)
}

async fn create(cluster: &Cluster, backfill: Backfill) {
    let api: Api<Backfill> = Api::namespaced(cluster.client.clone(), NS);
    api.create(&PostParams::default(), &backfill)
        .await
        .unwrap_or_else(|err| panic!("create backfill: {err}"));
    cluster.settle().await;
}

async fn status(cluster: &Cluster, name: &str) -> BackfillStatus {
    let api: Api<Backfill> = Api::namespaced(cluster.client.clone(), NS);
    api.get(name)
        .await
        .unwrap_or_else(|err| panic!("get backfill {name}: {err}"))
        .status
        .unwrap_or_default()
}

/// The runs created by Backfill `name`, by fire time.
async fn backfilled(cluster: &Cluster, name: &str) -> Vec<JobRun> {
    cluster
        .runs()
        .await
        .into_iter()
        .filter(|r| r.labels().get(BACKFILL_LABEL).map(String::as_str) == Some(name))
        .collect()
}

/// The kubelet stand-in finishes every Pod that has not ended, successfully. Returns how many.
async fn finish_pods(cluster: &Cluster) -> usize {
    let mut finished = 0;
    for pod in cluster.pods().await {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if !matches!(phase.as_str(), "Succeeded" | "Failed") {
            cluster.pod_exits(&pod.name_any(), 0, "ok").await;
            finished += 1;
        }
    }
    finished
}

/// Finishes Pods until Backfill `name` is Complete (or `rounds` pass), calling `each` with the
/// Pods finished at every round.
async fn run_to_completion(cluster: &Cluster, name: &str, rounds: usize, mut each: impl FnMut(usize)) {
    for _ in 0..rounds {
        if status(cluster, name).await.phase == Some(BackfillPhase::Complete) {
            return;
        }
        let finished = finish_pods(cluster).await;
        each(finished);
        cluster.settle().await;
    }
    panic!(
        "backfill {name} did not complete: {:?}",
        status(cluster, name).await
    );
}

/// Seconds after `t0()` of the fire times of `runs`.
fn fire_secs(runs: &[JobRun]) -> Vec<i64> {
    runs.iter()
        .filter_map(|r| r.spec.fire_time)
        .map(|t| (t - t0()).num_seconds())
        .collect()
}

/// Follows every JobRun through a watch (every version the server stores, in order) and keeps
/// the most runs of Backfill `name` that were unfinished at once.
fn watch_unfinished(cluster: &Cluster, name: &str) -> Arc<Mutex<usize>> {
    let most = Arc::new(Mutex::new(0));
    let (api, name, shared) = (
        Api::<JobRun>::namespaced(cluster.client.clone(), NS),
        name.to_string(),
        most.clone(),
    );
    tokio::spawn(async move {
        let mut unfinished: HashMap<String, bool> = HashMap::new();
        let events = watcher(api, watcher::Config::default());
        futures::pin_mut!(events);
        while let Some(Ok(event)) = events.next().await {
            match event {
                watcher::Event::Apply(run) | watcher::Event::InitApply(run) => {
                    if run.labels().get(BACKFILL_LABEL) == Some(&name) {
                        unfinished.insert(run.name_any(), !run.is_finished());
                    }
                }
                watcher::Event::Delete(run) => {
                    unfinished.remove(&run.name_any());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
            let now = unfinished.values().filter(|u| **u).count();
            let mut most = shared.lock().unwrap_or_else(|p| p.into_inner());
            *most = (*most).max(now);
        }
    });
    most
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_counts_and_lists_the_fire_times_of_the_range_and_creates_nothing() {
    let cluster = Cluster::start().await;
    cluster.apply(paused(every("report", "1h"))).await;
    create(
        &cluster,
        dry_run(backfill("preview", "report", hours(-10), hours(0))),
    )
    .await;
    let status = status(&cluster, "preview").await;
    assert_eq!(status.phase, Some(BackfillPhase::Complete));
    assert_eq!(status.fire_times, Some(10));
    assert_eq!(
        status.preview,
        (-10..0).map(hours).collect::<Vec<_>>(),
        "from is inclusive, to exclusive; the grid of the Schedule, extended back"
    );
    assert_eq!((status.created, status.cursor), (0, None));
    assert!(cluster.runs().await.is_empty(), "a dry run creates nothing");
    assert_eq!(cluster.reasons_of("preview").await, vec!["BackfillComplete"]);
}

#[tokio::test(start_paused = true)]
async fn a_backfill_creates_only_the_fire_times_that_have_no_jobrun_yet() {
    let cluster = Cluster::start().await;
    cluster.apply(every("tick", "1m")).await;
    cluster.advance(120).await;
    assert_eq!(cluster.fire_secs("tick").await, vec![0, 60, 120]);
    finish_pods(&cluster).await;

    create(&cluster, backfill("rerun", "tick", at(-120), at(180))).await;
    run_to_completion(&cluster, "rerun", 20, |_| {}).await;

    let runs = cluster.runs_of("tick").await;
    let in_range: Vec<i64> = fire_secs(&runs).into_iter().filter(|s| *s < 180).collect();
    assert_eq!(in_range, vec![-120, -60, 0, 60, 120], "each fire time once");
    assert_eq!(
        fire_secs(&backfilled(&cluster, "rerun").await),
        vec![-120, -60],
        "only the missing ones"
    );
    let status = status(&cluster, "rerun").await;
    assert_eq!((status.fire_times, status.created), (Some(5), 2));
    for run in backfilled(&cluster, "rerun").await {
        assert_eq!(run.spec.start_deadline, None, "a backfill has no misfire");
        assert_eq!(run.owner_references()[0].name, "tick");
    }
}

#[tokio::test(start_paused = true)]
async fn with_max_running_jobs_one_and_wait_backfilled_runs_run_one_at_a_time_and_all_succeed() {
    let cluster = Cluster::start().await;
    cluster
        .apply(paused(every("etl", "1h").max_running(1, ConcurrencyPolicy::Wait)))
        .await;
    create(&cluster, backfill("january", "etl", hours(-10), hours(0))).await;
    let mut rounds = 0;
    run_to_completion(&cluster, "january", 40, |finished| {
        assert!(finished <= 1, "{finished} backfilled runs ran at once");
        rounds += 1;
    })
    .await;
    assert_eq!(rounds, 10, "one run per round");
    let runs = backfilled(&cluster, "january").await;
    assert_eq!(fire_secs(&runs), (-10..0).map(|h| h * 3600).collect::<Vec<_>>());
    assert!(runs.iter().all(|r| r.phase() == JobRunPhase::Succeeded));
    let status = status(&cluster, "january").await;
    assert_eq!(status.created, 10);
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete");
    assert_eq!(complete.map(|c| c.status.as_str()), Some("True"));
    assert_eq!(
        cluster.reasons_of("january").await,
        vec!["BackfillStarted", "BackfillComplete"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_of_a_million_one_second_fire_times_counts_them_exactly_without_visiting_each() {
    let cluster = Cluster::start().await;
    cluster.apply(paused(every("fast", "1s"))).await;
    let started = std::time::Instant::now();
    create(
        &cluster,
        dry_run(backfill("million", "fast", at(-1_000_000), at(0))),
    )
    .await;
    let status = status(&cluster, "million").await;
    // Real time, not the paused clock: counting must not walk a million fire times.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.phase, Some(BackfillPhase::Complete));
    assert_eq!(status.fire_times, Some(1_000_000));
    assert_eq!(status.preview.len(), 100);
    assert_eq!(status.preview[0], at(-1_000_000));
    assert_eq!(status.preview[99], at(-1_000_000 + 99));
    assert!(
        status.message.unwrap_or_default().contains("1000000 fire time"),
        "an exact count says no \"at least\""
    );
    assert!(cluster.runs().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_backfill_of_fifty_fire_times_creates_them_in_batches_never_more_unfinished_than_the_bound() {
    let cluster = Cluster::start().await;
    cluster
        .apply(paused(
            every("batch", "1h").max_running(1, ConcurrencyPolicy::Wait),
        ))
        .await;
    let most = watch_unfinished(&cluster, "fifty");
    create(&cluster, backfill("fifty", "batch", hours(-50), hours(0))).await;
    let bound = 1 + BATCH_BUFFER;
    assert_eq!(
        backfilled(&cluster, "fifty").await.len(),
        bound,
        "the first batch fills the pool and its buffer"
    );
    let first = status(&cluster, "fifty").await;
    assert_eq!(first.phase, Some(BackfillPhase::Running));
    assert_eq!((first.fire_times, first.created), (Some(50), bound as i64));
    assert_eq!(first.cursor, Some(hours(-50 + bound as i64 - 1)));

    run_to_completion(&cluster, "fifty", 100, |_| {}).await;
    let most = *most.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(most, bound, "never more than {bound} unfinished runs at once");
    let runs = backfilled(&cluster, "fifty").await;
    assert_eq!(fire_secs(&runs), (-50..0).map(|h| h * 3600).collect::<Vec<_>>());
    assert_eq!(status(&cluster, "fifty").await.created, 50);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_operator_carries_on_from_the_cursor_without_duplicates_or_gaps() {
    let mut cluster = Cluster::start().await;
    cluster
        .apply(paused(
            every("resume", "1h").max_running(1, ConcurrencyPolicy::Wait),
        ))
        .await;
    create(&cluster, backfill("month", "resume", hours(-30), hours(0))).await;
    for _ in 0..4 {
        finish_pods(&cluster).await;
    }
    let before = status(&cluster, "month").await;
    assert_eq!(before.phase, Some(BackfillPhase::Running));
    let cursor = before.cursor.expect("a cursor after the first batches");
    assert!(cursor < hours(-1), "stopped in the middle: {cursor}");

    cluster.stop_operator().await;
    cluster.start_operator();
    cluster.settle().await;
    run_to_completion(&cluster, "month", 80, |_| {}).await;

    let runs = backfilled(&cluster, "month").await;
    assert_eq!(
        fire_secs(&runs),
        (-30..0).map(|h| h * 3600).collect::<Vec<_>>(),
        "every fire time once"
    );
    let creates = cluster
        .writes()
        .iter()
        .filter(|w| w.starts_with("POST") && w.ends_with("/jobruns"))
        .count();
    assert_eq!(creates, 30, "no create was sent twice");
    assert_eq!(status(&cluster, "month").await.created, 30);
    let reasons = cluster.reasons_of("month").await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "BackfillStarted").count(),
        1,
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_backfill_of_a_missing_schedule_fails_with_a_warning_and_carries_on_once_it_exists() {
    let cluster = Cluster::start().await;
    create(&cluster, backfill("early", "later", hours(-3), hours(0))).await;
    let failed = status(&cluster, "early").await;
    assert_eq!(failed.phase, Some(BackfillPhase::Failed));
    assert_eq!(
        failed.message.as_deref(),
        Some("Schedule \"later\" does not exist")
    );
    let events = cluster.events_of("early").await;
    assert_eq!(
        events,
        vec![(
            "BackfillFailed".to_string(),
            "Schedule \"later\" does not exist".to_string()
        )]
    );

    // `kubectl apply -f dir/` may create the Backfill before its Schedule.
    cluster.apply(paused(every("later", "1h"))).await;
    run_to_completion(&cluster, "early", 20, |_| {}).await;
    assert_eq!(
        fire_secs(&backfilled(&cluster, "early").await),
        vec![-3 * 3600, -2 * 3600, -3600]
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_the_schedule_of_a_running_backfill_fails_it() {
    let cluster = Cluster::start().await;
    cluster
        .apply(paused(
            every("doomed", "1h").max_running(1, ConcurrencyPolicy::Wait),
        ))
        .await;
    create(&cluster, backfill("orphan", "doomed", hours(-30), hours(0))).await;
    assert_eq!(
        status(&cluster, "orphan").await.phase,
        Some(BackfillPhase::Running)
    );
    cluster.delete_schedule("doomed").await;
    let status = status(&cluster, "orphan").await;
    assert_eq!(status.phase, Some(BackfillPhase::Failed));
    assert_eq!(
        status.message.as_deref(),
        Some("Schedule \"doomed\" does not exist")
    );
    let reasons = cluster.reasons_of("orphan").await;
    assert_eq!(reasons.last().map(String::as_str), Some("BackfillFailed"));
}

#[tokio::test(start_paused = true)]
async fn backfilled_runs_wait_in_their_own_pool_and_never_hold_up_the_schedules_live_runs() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("live", "1h").max_running(1, ConcurrencyPolicy::Wait))
        .await;
    create(&cluster, backfill("past", "live", hours(-5), hours(0))).await;
    let running: BTreeMap<String, bool> = cluster
        .pods()
        .await
        .iter()
        .map(|p| (p.name_any(), true))
        .collect();
    assert!(
        running.contains_key("live-1767225600-1"),
        "the live run at t0 started: {running:?}"
    );
    assert_eq!(
        running.len(),
        2,
        "one live run and one backfilled run: {running:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_backfill_named_longer_than_a_label_value_keeps_its_own_concurrency_policy() {
    let cluster = Cluster::start().await;
    cluster
        .apply(paused(every("etl", "1h").max_running(1, ConcurrencyPolicy::Wait)))
        .await;
    // The `horolog.dev/backfill` label holds the hashed short form of this name; admission
    // must still find the Backfill (and its Skip) from it.
    let name = format!("rerun-{}", "x".repeat(80));
    let mut skipping = backfill(&name, "etl", hours(-5), hours(0));
    skipping.spec.concurrency_policy = Some(ConcurrencyPolicy::Skip);
    create(&cluster, skipping).await;
    cluster.advance(1).await;
    let runs: Vec<JobRun> = cluster
        .runs()
        .await
        .into_iter()
        .filter(|r| r.labels().contains_key(BACKFILL_LABEL))
        .collect();
    assert_eq!(runs.len(), 5);
    let label = runs[0].labels()[BACKFILL_LABEL].clone();
    assert!(label.len() <= 63, "{label}");
    let phases: Vec<JobRunPhase> = runs.iter().map(|r| r.phase()).collect();
    assert_eq!(
        phases.iter().filter(|p| **p == JobRunPhase::Skipped).count(),
        4,
        "the Backfill's Skip, not the Schedule's Wait: {phases:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_backfill_runs_the_fire_times_after_exclusion_unless_it_ignores_exclusions() {
    let cluster = Cluster::start().await;
    let mut report = paused(every("report", "1h"));
    report.spec.trigger.exclude = Some(
        serde_json::from_value(serde_json::json!({"ranges": [
            {"from": "2025-12-31T19:00:00Z", "to": "2025-12-31T21:00:00Z"}
        ]}))
        .unwrap(),
    );
    cluster.apply(report).await;
    create(
        &cluster,
        dry_run(backfill("excluding", "report", hours(-10), hours(0))),
    )
    .await;
    let status_excluding = status(&cluster, "excluding").await;
    assert_eq!(
        status_excluding.fire_times,
        Some(8),
        "19:00 and 20:00 are excluded"
    );
    assert!(!status_excluding.preview.contains(&hours(-5)));
    let mut ignoring = dry_run(backfill("ignoring", "report", hours(-10), hours(0)));
    ignoring.spec.ignore_exclusions = true;
    create(&cluster, ignoring).await;
    assert_eq!(status(&cluster, "ignoring").await.fire_times, Some(10));
}
