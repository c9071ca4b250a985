//! Faults: an API server that stops answering, a crash between two API calls, a dropped
//! watch, and the cost of a run in writes. The in-memory API server injects the faults
//! (`ApiServer::faults`) and counts every request as `apiserver_request_total` does.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, OPERATOR};
use fixtures::*;
use horolog::api::{CoalescePolicy, ConcurrencyPolicy, JobRunPhase};
use horolog_memserver::RequestMatch;

#[tokio::test(start_paused = true)]
async fn after_an_api_outage_every_due_fire_time_is_handled_within_two_seconds() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("pulse", "1s")
                .coalesce(CoalescePolicy::All)
                .history(100, 100),
        )
        .await;
    cluster.advance(3).await;
    // The operator's side of an outage: its requests are refused and its watches end; the
    // test's own client still reads, so "nothing was created" is checked, not assumed.
    cluster
        .server
        .faults()
        .refuse(RequestMatch::any().client(OPERATOR));
    cluster.server.faults().drop_watches();
    cluster.advance(12).await;
    let before = cluster.fire_secs("pulse").await;
    assert!(
        before.iter().all(|&s| s <= 4),
        "nothing is created during the outage: {before:?}"
    );
    cluster.server.faults().restore();
    let restored = (horolog::clock::Clock::now(&cluster.clock) - t0()).num_seconds();
    cluster.advance(2).await;
    let fired = cluster.fire_secs("pulse").await;
    assert!(
        fired.contains(&restored),
        "the fire time due when the API server came back ({restored} s) is handled within 2 s: {fired:?}"
    );
    let last = fired.last().copied().unwrap_or_default();
    assert_eq!(
        fired,
        (0..=last).collect::<Vec<i64>>(),
        "every fire time of the outage, once each"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_right_after_creating_a_pod_leaves_nothing_to_do_twice() {
    let mut cluster = Cluster::start().await;
    cluster.server.faults().refuse_after(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("create")
            .resource("pods"),
    );
    cluster.apply(every("crashy", "1h")).await;
    // The operator created the JobRun and its Pod, then "died": nothing else got through.
    cluster.stop_operator().await;
    cluster.server.faults().restore();
    assert_eq!(cluster.pod_names().await, vec!["crashy-1767225600-1"]);
    let schedule = cluster.schedule("crashy").await;
    assert!(
        schedule.status.is_none_or(|s| s.cursor.is_none()),
        "the status was never written"
    );

    cluster.start_operator();
    cluster.settle().await;
    assert_eq!(
        cluster.runs_of("crashy").await.len(),
        1,
        "the fire time is planned again, not created again"
    );
    assert_eq!(
        cluster.pod_names().await,
        vec!["crashy-1767225600-1"],
        "the Pod is adopted"
    );
    cluster.pod_exits("crashy-1767225600-1", 0, "once").await;
    assert_eq!(cluster.phases("crashy").await, vec![JobRunPhase::Succeeded]);
    let status = cluster.schedule("crashy").await.status.unwrap_or_default();
    assert_eq!(status.cursor, Some(at(0)));
    assert_eq!(status.fired_count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_run_is_never_deleted_before_the_status_that_covers_it_is_written() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("short", "1m").history(0, 0).result_ttl("1s"))
        .await;
    // From now on the Schedule's status cannot be written.
    cluster.server.faults().fail(
        RequestMatch::any()
            .client(OPERATOR)
            .verb("patch")
            .resource("schedules")
            .subresource("status"),
        usize::MAX,
        500,
    );
    cluster.pod_exits("short-1767225600-1", 0, "").await;
    cluster.advance(90).await;
    let names: Vec<String> = cluster
        .runs_of("short")
        .await
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    assert!(
        names.contains(&"short-1767225600".to_string()),
        "neither history nor resultTTL deletes a run its Schedule has not counted: {names:?}"
    );
    cluster.server.faults().restore();
    cluster.advance(90).await;
    assert!(
        !cluster
            .runs_of("short")
            .await
            .iter()
            .any(|r| r.metadata.name.as_deref() == Some("short-1767225600")),
        "deleted once counted"
    );
    let created = cluster
        .server
        .request_counts()
        .iter()
        .filter(|(key, _)| key.client == OPERATOR && key.resource == "jobruns" && key.code == 201)
        .map(|(_, n)| *n)
        .sum::<u64>();
    let fires = cluster
        .schedule("short")
        .await
        .status
        .unwrap_or_default()
        .fired_count as u64;
    assert_eq!(created, fires, "no fire time was created twice");
}

#[tokio::test(start_paused = true)]
async fn skip_wait_and_replace_run_without_a_single_conflict() {
    let cluster = Cluster::start().await;
    for (name, policy) in [
        ("skip", ConcurrencyPolicy::Skip),
        ("wait", ConcurrencyPolicy::Wait),
        ("replace", ConcurrencyPolicy::Replace),
    ] {
        cluster.apply(every(name, "10s").max_running(1, policy)).await;
    }
    for second in 0..12 {
        cluster.advance(10).await;
        if second % 3 == 0 {
            for pod in cluster.pods().await {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
                if phase == "Pending" {
                    cluster.pod_running(&name).await;
                } else if phase == "Running" {
                    cluster.pod_exits(&name, 0, "").await;
                }
            }
        }
    }
    assert!(cluster.operator_writes() > 50, "the test exercised the operator");
    assert_eq!(
        cluster.operator_responses(409),
        0,
        "{:#?}",
        cluster.server.request_counts()
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_watch_neither_loses_nor_repeats_a_fire_time() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("steady", "5s")
                .coalesce(CoalescePolicy::All)
                .history(100, 100),
        )
        .await;
    for _ in 0..6 {
        cluster.advance(5).await;
        cluster.server.faults().drop_watches();
    }
    cluster.advance(5).await;
    assert_eq!(
        cluster.fire_secs("steady").await,
        (0..=35).step_by(5).collect::<Vec<i64>>()
    );
}

/// A steady state: a Schedule firing every minute, a pod that runs for a second and succeeds,
/// history limits 1. Counted after the first fires: what each further run costs the API
/// server in the operator's own writes (GC's deletes of finished Pods and the kubelet's
/// writes come on top, on a real cluster as for CronJob). BENCHMARKS.md states this number.
#[tokio::test(start_paused = true)]
async fn a_steady_state_run_costs_six_operator_writes() {
    let cluster = Cluster::start().await;
    cluster.apply(every("minutely", "1m").history(1, 1)).await;
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for minute in 0..12 {
        let pod = format!("minutely-{}-1", 1_767_225_600 + 60 * minute);
        cluster.pod_running(&pod).await;
        cluster.advance_to(at(60 * minute + 1)).await;
        cluster.pod_exits(&pod, 0, "").await;
        // Two identical points of the cycle, ten runs apart.
        match minute {
            1 => first = cluster.server.request_counts(),
            11 => last = cluster.server.request_counts(),
            _ => {}
        }
        cluster.advance_to(at(60 * (minute + 1))).await;
    }
    let writes_of = |counts: &[(horolog_memserver::RequestKey, u64)]| {
        let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
        for (key, n) in counts
            .iter()
            .filter(|(key, _)| key.client == OPERATOR && key.verb.is_write())
        {
            *by_kind
                .entry(format!(
                    "{} {}/{}",
                    key.verb.name(),
                    key.resource,
                    key.subresource
                ))
                .or_default() += n;
        }
        by_kind
    };
    let (before, after) = (writes_of(&first), writes_of(&last));
    let per_kind: Vec<(String, f64)> = after
        .iter()
        .map(|(kind, n)| {
            let was = before.get(kind).copied().unwrap_or_default();
            (kind.clone(), (n - was) as f64 / 10.0)
        })
        .collect();
    let per_run: f64 = per_kind.iter().map(|(_, n)| n).sum();
    eprintln!("{per_run} operator writes per run: {per_kind:#?}");
    // JobRun create, Pod create, the JobRun's final status (Running is not written for a run
    // shorter than 2 s), the patch that removes the Pod's tracking finalizer once that status
    // is written, one Schedule status write per fire (the success is folded into it), and
    // the delete of the run the history limit drops.
    assert!(per_run <= 6.0, "{per_run} writes per run");
    assert_eq!(cluster.operator_responses(409), 0);
}
