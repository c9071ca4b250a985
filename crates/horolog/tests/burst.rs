//! The top of the minute (issue 25): many Schedules due at one instant do not queue behind
//! each other in the operator, and no Pod is ever created before its fire time (plus jitter).
//! On the in-memory API server with tokio's paused clock: a request delay stands in for an
//! API server's round trip, and the server's change feed gives each Pod's exact creation
//! instant (creationTimestamp has whole seconds only).

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use cluster::{Cluster, NS, OPERATOR};
use fixtures::*;
use horolog::api::{JobRun, Schedule, TriggerSpec};
use horolog::controller::DEFAULT_CONCURRENCY;
use horolog_memserver::RequestMatch;
use kube::api::{Api, PostParams};

/// Creates `schedule` without waiting for the operator to react.
async fn create(cluster: &Cluster, schedule: Schedule) {
    Api::<Schedule>::namespaced(cluster.client.clone(), NS)
        .create(&PostParams::default(), &schedule)
        .await
        .unwrap_or_else(|err| panic!("create schedule: {err}"));
}

/// A Schedule firing every minute from `at(60)` on.
fn minutely_from_60(name: &str) -> Schedule {
    schedule(
        name,
        TriggerSpec {
            interval: Some("1m".parse().unwrap_or_else(|e| panic!("{e}"))),
            start_time: Some(at(60).fixed_offset()),
            ..TriggerSpec::default()
        },
    )
}

/// Forty Schedules fall due at the same instant while every write of the operator takes a
/// second (an API server's round trip, scaled up). A run's Pod needs two writes (its JobRun,
/// then the Pod), so with no queue of the operator's own every Pod exists two seconds after
/// the fire time. One Schedule reconcile after another, as 8 workers writing JobRun, Pod and
/// status in sequence did, the last Pods waited 5 × 3 round trips.
#[tokio::test(start_paused = true)]
async fn schedules_due_at_one_instant_start_their_pods_together() {
    const SCHEDULES: usize = 40;
    let cluster = Cluster::start_with(|config| config.concurrency = DEFAULT_CONCURRENCY).await;
    for i in 0..SCHEDULES {
        create(&cluster, minutely_from_60(&format!("s{i}"))).await;
    }
    cluster.settle().await;
    let created = cluster.record_pod_creations();
    cluster.server.faults().delay(
        RequestMatch::any().client(OPERATOR).writes(),
        StdDuration::from_secs(1),
    );
    cluster.advance_to(at(60)).await;
    cluster.advance(20).await;

    let created = created.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let late: Vec<(String, i64)> = created
        .iter()
        .map(|(pod, at_)| (pod.clone(), (*at_ - at(60)).num_milliseconds()))
        .filter(|(_, ms)| *ms > 2_000)
        .collect();
    assert_eq!(created.len(), SCHEDULES, "one Pod per Schedule: {created:?}");
    assert!(
        late.is_empty(),
        "every Pod exists two round trips (2 s) after the fire time; later: {late:?}"
    );
}

/// The JobRun of `pod` (`<run>-<attempt>`) and the instant its Pod may be created at the
/// earliest: its fire time plus its jitter.
async fn not_before(cluster: &Cluster, pod: &str) -> (String, DateTime<Utc>) {
    let run_name = pod
        .rsplit_once('-')
        .map(|(run, _)| run.to_string())
        .unwrap_or_else(|| panic!("pod {pod} is not named <run>-<attempt>"));
    let run: JobRun = cluster
        .run(&run_name)
        .await
        .unwrap_or_else(|| panic!("the JobRun {run_name} of pod {pod} exists"));
    let fire_time = run
        .spec
        .fire_time
        .unwrap_or_else(|| panic!("{run_name} has a fire time"));
    let jitter = run
        .spec
        .jitter
        .map(|j| TimeDelta::from_std(j.as_std()).unwrap_or_default())
        .unwrap_or_default();
    (run_name, fire_time + jitter)
}

/// Never early: Schedules of several triggers, with and without jitter, some due at the same
/// instant, run for five minutes with a slow API server part of the time; every Pod's creation
/// instant is at or after its run's fire time plus jitter.
#[tokio::test(start_paused = true)]
async fn no_pod_is_created_before_its_fire_time_plus_jitter() {
    let cluster = Cluster::start_with(|config| config.concurrency = DEFAULT_CONCURRENCY).await;
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
    let schedules = [
        cron("top", "* * * * *"),
        cron("top-jitter", "* * * * *").jitter("20s"),
        cron("odd-second", "7,37 * * * * *"),
        every("interval", "17s").history(100, 100),
        every("interval-jitter", "45s").jitter("30s").history(100, 100),
        minutely_from_60("from-60").jitter("3s").history(100, 100),
    ];
    for schedule in schedules {
        create(&cluster, schedule).await;
    }
    cluster.advance(150).await;
    // A slow API server for a while: decisions made before a delayed write still wait.
    cluster.server.faults().delay(
        RequestMatch::any().client(OPERATOR).writes(),
        StdDuration::from_millis(700),
    );
    cluster.advance(60).await;
    cluster.server.faults().restore();
    cluster.advance(90).await;

    let created = created.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        created.len() >= 30,
        "enough Pods to say something: {}",
        created.len()
    );
    let mut early = Vec::new();
    for (pod, created_at) in &created {
        let (run, not_before) = not_before(&cluster, pod).await;
        if *created_at < not_before {
            early.push(format!(
                "{pod} of {run}: created {created_at}, not before {not_before}"
            ));
        }
    }
    assert!(
        early.is_empty(),
        "Pods created before their fire time plus jitter: {early:#?}"
    );
}
