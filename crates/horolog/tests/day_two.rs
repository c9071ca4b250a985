//! What `kubectl get` and `kubectl describe` show a user on day two: the LastRunSucceeded
//! condition, Warning Events on the Schedule for failed and missed runs, the JobRun named in
//! `Fired`, the run's context in the Pod's environment, and the schema defaults that keep the
//! printer columns from being blank. The real operator on the in-memory API server, on
//! tokio's paused clock.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, NS};
use fixtures::*;
use horolog::api::{ConcurrencyPolicy, JobRun, JobRunPhase, Schedule};
use horolog::controller::EventPolicy;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// `(status, reason, message)` of the Schedule's LastRunSucceeded condition.
async fn last_run(cluster: &Cluster, schedule: &str) -> Option<(String, String, String)> {
    let status = cluster.schedule(schedule).await.status.unwrap_or_default();
    status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "LastRunSucceeded")
        .map(|c| (c.status, c.reason, c.message))
}

#[tokio::test(start_paused = true)]
async fn last_run_succeeded_follows_the_last_finished_run_and_names_it() {
    let cluster = Cluster::start().await;
    cluster
        .apply(every("report", "10m").backoff_limit(0).history(5, 5))
        .await;
    assert_eq!(last_run(&cluster, "report").await, None, "no run has finished");

    cluster.pod_exits("report-1767225600-1", 0, "ok").await;
    // A success is folded into the next status write, within --schedule-status-delay.
    cluster.advance(61).await;
    let (status, reason, message) = last_run(&cluster, "report").await.unwrap_or_default();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Succeeded"));
    assert!(message.contains("report-1767225600"), "{message}");

    cluster.advance_to(at(600)).await;
    cluster.pod_exits("report-1767226200-1", 3, "disk full").await;
    let (status, reason, message) = last_run(&cluster, "report").await.unwrap_or_default();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "Failed"),
        "a failure is written at once"
    );
    assert!(message.contains("report-1767226200"), "{message}");
    let warnings: Vec<_> = cluster
        .events_of("report")
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "RunFailed")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].1.contains("report-1767226200"), "{warnings:?}");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_misses_its_start_deadline_is_a_warning_on_its_schedule() {
    let cluster = Cluster::start().await;
    cluster
        .apply(
            every("strict", "1m")
                .grace("30s")
                .max_running(1, ConcurrencyPolicy::Wait)
                .history(5, 5),
        )
        .await;
    cluster.pod_running("strict-1767225600-1").await;
    // The run at 60 s waits for the slot; its deadline (90 s) passes while it waits.
    cluster.advance_to(at(100)).await;
    let missed = cluster
        .run("strict-1767225660")
        .await
        .and_then(|r| r.status)
        .and_then(|s| s.phase);
    assert_eq!(missed, Some(JobRunPhase::Missed));
    let events = cluster.events_of("strict").await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "Missed" && note.contains("strict-1767225660")),
        "{events:?}"
    );
    let (status, reason, _) = last_run(&cluster, "strict").await.unwrap_or_default();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Missed"));
}

#[tokio::test(start_paused = true)]
async fn fired_names_the_jobrun_when_every_event_is_asked_for() {
    let cluster = Cluster::start_with(|config| config.events = EventPolicy::All).await;
    cluster.apply(every("named", "1m")).await;
    let fired: Vec<_> = cluster
        .events_of("named")
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "Fired")
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].1.contains("named-1767225600"), "{fired:?}");
}

#[tokio::test(start_paused = true)]
async fn routine_events_are_left_out_by_default() {
    let cluster = Cluster::start().await;
    cluster.apply(every("quiet", "1m")).await;
    cluster.pod_exits("quiet-1767225600-1", 0, "ok").await;
    let reasons = cluster.reasons_of("quiet").await;
    let run_reasons = cluster.reasons_of("quiet-1767225600").await;
    for routine in ["Fired", "PodCreated", "Started", "Succeeded"] {
        assert!(!reasons.iter().any(|r| r == routine), "{reasons:?}");
        assert!(!run_reasons.iter().any(|r| r == routine), "{run_reasons:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_pod_carries_the_runs_context_in_its_environment() {
    let cluster = Cluster::start().await;
    cluster.apply(every("context", "1m")).await;
    let pods = cluster.pods().await;
    let env: Vec<(String, String)> = pods
        .first()
        .and_then(|p| p.spec.as_ref())
        .map(|s| s.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.name.starts_with("HOROLOG_"))
        .map(|v| (v.name, v.value.unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        [
            ("HOROLOG_SCHEDULE", "context"),
            ("HOROLOG_JOBRUN", "context-1767225600"),
            ("HOROLOG_FIRE_TIME", "2026-01-01T00:00:00Z"),
            ("HOROLOG_ATTEMPT", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[tokio::test(start_paused = true)]
async fn schema_defaults_fill_paused_timezone_and_the_first_phase() {
    // No operator: what is read back is the API server's doing alone.
    let cluster = Cluster::without_operator();
    let schedules: Api<Schedule> = Api::namespaced(cluster.client.clone(), NS);
    schedules
        .create(&PostParams::default(), &every("defaults", "1m"))
        .await
        .expect("create the Schedule");
    // Read back untyped: `paused: false` would deserialize the same from an absent field.
    let request = http::Request::get(format!(
        "/apis/horolog.dev/v1alpha1/namespaces/{NS}/schedules/defaults"
    ))
    .body(Vec::new())
    .expect("a GET request");
    let stored: serde_json::Value = cluster.client.request(request).await.expect("read the Schedule");
    assert_eq!(stored["spec"]["paused"], json!(false), "PAUSED column says false");
    assert_eq!(
        stored["spec"]["trigger"]["timezone"],
        json!("UTC"),
        "TIMEZONE column says UTC"
    );

    let runs: Api<JobRun> = Api::namespaced(cluster.client.clone(), NS);
    let created = runs
        .create(&PostParams::default(), &one_off("by-hand"))
        .await
        .expect("create the JobRun");
    let read = runs.get("by-hand").await.expect("read the JobRun");
    for run in [created, read] {
        assert_eq!(
            serde_json::to_value(run.status).unwrap_or_default(),
            json!({"phase": "Scheduled"}),
            "PHASE column says Scheduled before the operator has seen the run"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_follow_each_schedule_and_the_queues_drain() {
    let metrics = horolog::metrics::Metrics::new();
    let observer = metrics.clone();
    let cluster =
        Cluster::start_with(move |config| config.observer = Some(std::sync::Arc::new(observer))).await;
    cluster.apply(every("watched", "1m")).await;
    cluster.pod_exits("watched-1767225600-1", 0, "ok").await;
    let text = metrics.encode();
    for line in [
        // 2026-01-01T00:01:00Z
        r#"horolog_schedule_next_fire_time_seconds{namespace="default",schedule="watched"} 1767225660"#,
        r#"horolog_schedule_interval_seconds{namespace="default",schedule="watched"} 60"#,
        r#"horolog_schedule_runs_total{namespace="default",schedule="watched",outcome="Succeeded"} 1"#,
        r#"horolog_reconcile_queue_depth{controller="schedule"} 0"#,
        r#"horolog_reconcile_queue_depth{controller="jobrun"} 0"#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line} not in\n{text}");
    }
}
