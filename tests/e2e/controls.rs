//! Schedule controls on a real cluster: the overlap policies BufferOne, Terminate and Allow,
//! pauseAfterFailures and the resume annotation, catchUp Disabled, maxRuns and
//! ttlSecondsAfterFinished. The scenarios of crates/horolog/tests/controls.rs, on the wall
//! clock.
//!
//! A run holds its Schedule's slot from the moment its Pod exists, so the overlap policies
//! need no node: a Pod that stays Pending holds the slot as a running one does.

use std::time::Duration;

use chrono::TimeDelta;
use horolog::api::RESUME_ANNOTATION;
use kube::ResourceExt;
use serde_json::json;

use super::*;

const HISTORY: &str = r#"{"successfulRunsHistoryLimit": 100, "failedRunsHistoryLimit": 100}"#;

/// `extra` with history limits high enough that no run of the test is deleted.
fn keeping_history(mut extra: Value) -> Value {
    let history: Value = serde_json::from_str(HISTORY).unwrap_or_default();
    if let (Some(extra), Some(history)) = (extra.as_object_mut(), history.as_object()) {
        for (key, value) in history {
            extra.entry(key.clone()).or_insert(value.clone());
        }
    }
    extra
}

fn message_of(run: &JobRun) -> String {
    run.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

/// (operator) concurrencyPolicy BufferOne with maxRunningJobs 1: while the first run holds
/// the slot, the second waits; the third replaces it (the second ends Skipped, its message
/// naming BufferOne, counted in status.skippedRuns) and waits in its place; when the first is
/// cancelled the third starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_one_keeps_only_the_newest_waiting_run() {
    e2e("buffer-one", Needs::Operator, |env| async move {
        let name = "buffered";
        let extra = keeping_history(json!({"maxRunningJobs": 1, "concurrencyPolicy": "BufferOne"}));
        apply_schedule(
            &env,
            &schedule_running(name, json!({"interval": "10s"}), "sleep 600", extra),
        )
        .await;
        let runs = wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "the second run Waiting",
            |runs| runs.len() >= 2 && phase(&runs[1]) == Some(JobRunPhase::Waiting),
        )
        .await;
        let (first, second) = (runs[0].name_any(), runs[1].name_any());
        wait_pod_of(&env, &first, Duration::from_secs(30)).await;
        let runs = wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "the third run Waiting, the second Skipped",
            |runs| {
                runs.len() >= 3
                    && phase(&runs[1]) == Some(JobRunPhase::Skipped)
                    && phase(&runs[2]) == Some(JobRunPhase::Waiting)
            },
        )
        .await;
        let third = runs[2].name_any();
        assert!(
            message_of(&runs[1]).contains("BufferOne"),
            "{second}: {:?}",
            runs[1].status
        );
        assert!(pods_of(&env, &second).await.is_empty(), "{second} never started");
        cancel_run(&env, &first, "e2e").await;
        wait_pod_of(&env, &third, Duration::from_secs(30)).await;
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
        wait_schedule(&env, name, Duration::from_secs(90), "status.skippedRuns 1", |s| {
            status_of(s).skipped_runs == 1
        })
        .await;
    })
    .await;
}

/// (operator) concurrencyPolicy Terminate with maxRunningJobs 1: the next fire time cancels
/// the running run (reason Replaced, the message naming Terminate and the new run) and deletes
/// its Pod with grace period 0 — gone at once although the Pod asks for 60 s — and the new run
/// gets a Pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_replaces_the_running_run_at_once() {
    e2e("terminate", Needs::Operator, |env| async move {
        let name = "hard";
        let extra = keeping_history(json!({"maxRunningJobs": 1, "concurrencyPolicy": "Terminate"}));
        let mut object = schedule_running(name, json!({"interval": "15s"}), "sleep 600", extra);
        object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
            json!(60);
        apply_schedule(&env, &object).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a first run", |runs| {
            !runs.is_empty()
        })
        .await;
        let first = runs[0].name_any();
        wait_pod_of(&env, &first, Duration::from_secs(30)).await;
        let runs = wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "the first run Cancelled by the second",
            |runs| runs.len() >= 2 && phase(&runs[0]) == Some(JobRunPhase::Cancelled),
        )
        .await;
        let second = runs[1].name_any();
        let status = runs[0].status.clone().unwrap_or_default();
        assert_eq!(status.reason.as_deref(), Some("Replaced"), "{first}: {status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(
            message.contains("Terminate") && message.contains(&second),
            "{first}: {message:?}"
        );
        wait_pods_gone(&env, &first, Duration::from_secs(10)).await;
        wait_pod_of(&env, &second, Duration::from_secs(30)).await;
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
    })
    .await;
}

/// (operator) concurrencyPolicy Allow: no limit — three runs of a 3 s interval whose pods
/// never end each get a Pod; none waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_starts_every_run_whatever_is_running() {
    e2e("allow", Needs::Operator, |env| async move {
        let name = "all-in";
        let extra = keeping_history(json!({"concurrencyPolicy": "Allow"}));
        apply_schedule(
            &env,
            &schedule_running(name, json!({"interval": "3s"}), "sleep 600", extra),
        )
        .await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "3 runs", |runs| {
            runs.len() >= 3
        })
        .await;
        for run in runs.iter().take(3) {
            wait_pod_of(&env, &run.name_any(), Duration::from_secs(30)).await;
        }
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
        let runs = runs_of(&env, name).await;
        assert!(
            runs.iter().all(|r| phase(r) != Some(JobRunPhase::Waiting)),
            "nothing waits under Allow: {}",
            describe_runs(&runs)
        );
    })
    .await;
}

/// (operator + a node that runs pods) pauseAfterFailures 2 with pods running `false`: after
/// two failed runs in a row the Schedule stops firing — Ready=False reason TooManyFailures, a
/// Warning Event, spec.paused untouched — and the annotation `horolog.dev/resume` lifts it
/// (a Resumed Event, and the fire times that passed meanwhile go through coalesce: one run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_after_failures_stops_firing_until_resumed() {
    e2e("pause-after-failures", Needs::Operator, |env| async move {
        if !pods_run_or_skip(&env, "pauseAfterFailures").await {
            return;
        }
        let name = "fragile";
        let extra = keeping_history(json!({"pauseAfterFailures": 2}));
        apply_schedule(
            &env,
            &schedule_running(name, json!({"interval": "6s"}), "false", extra),
        )
        .await;
        let schedule = wait_schedule(
            &env,
            name,
            Duration::from_secs(120),
            "Ready=False TooManyFailures",
            |s| ready_of(s) == Some(("False".into(), "TooManyFailures".into())),
        )
        .await;
        let status = status_of(&schedule);
        assert!(
            status.consecutive_failures >= 2,
            "consecutiveFailures {}",
            status.consecutive_failures
        );
        assert!(!schedule.spec.paused, "the operator never edits spec");
        let event = wait_event(&env, name, "TooManyFailures", Duration::from_secs(30)).await;
        assert_eq!(event.type_.as_deref(), Some("Warning"), "{event:?}");

        let before = runs_of(&env, name).await;
        let failed = before
            .iter()
            .filter(|r| phase(r) == Some(JobRunPhase::Failed))
            .count();
        assert!(failed >= 2, "{}", describe_runs(&before));
        tokio::time::sleep(Duration::from_secs(14)).await;
        let during = runs_of(&env, name).await;
        assert_eq!(
            during.len(),
            before.len(),
            "nothing fires while paused after failures: {}",
            describe_runs(&during)
        );

        patch_schedule(
            &env,
            name,
            json!({"metadata": {"annotations": {RESUME_ANNOTATION: "e2e"}}}),
        )
        .await;
        wait_schedule(&env, name, Duration::from_secs(60), "the resume served", |s| {
            status_of(s).last_resume.as_deref() == Some("e2e")
        })
        .await;
        let after = wait_runs(
            &env,
            name,
            Duration::from_secs(30),
            "a run after the resume",
            |runs| runs.len() > during.len(),
        )
        .await;
        wait_event(&env, name, "Resumed", Duration::from_secs(30)).await;
        let caught_up = fire_times(&after)
            .into_iter()
            .filter(|t| fire_times(&during).last().is_none_or(|last| t > last))
            .count();
        assert!(
            caught_up <= 2,
            "the paused fire times coalesce into one run (and the next may have come): {}",
            describe_runs(&after)
        );
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
    })
    .await;
}

/// (operator) catchUp Disabled: pausing a 2 s interval Schedule for ~8 s and resuming it
/// carries on from the moment of the resume: no run for a fire time of the pause, those fire
/// times counted in status.missedFireTimes, and runs again after the resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_disabled_records_the_fire_times_of_a_pause_as_missed() {
    e2e("catch-up-disabled", Needs::Operator, |env| async move {
        let name = "now-on";
        let extra = keeping_history(json!({"catchUp": "Disabled"}));
        apply_schedule(&env, &schedule(name, json!({"interval": "2s"}), extra)).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a first run", |runs| {
            !runs.is_empty()
        })
        .await;
        let anchor = fire_times(&runs)[0];
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
        let paused = Utc::now();
        wait_schedule(&env, name, Duration::from_secs(60), "Ready=True Paused", |s| {
            observed(s) && ready_of(s) == Some(("True".into(), "Paused".into()))
        })
        .await;
        let missed_before = status_of(&get_schedule(&env, name).await).missed_fire_times;
        tokio::time::sleep(Duration::from_secs(8)).await;
        let resumed = Utc::now();
        patch_schedule(&env, name, json!({"spec": {"paused": false}})).await;
        wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "a run after the resume",
            |runs| fire_times(runs).last().is_some_and(|t| *t >= resumed),
        )
        .await;
        let runs = runs_of(&env, name).await;
        // A margin of 2 s after the pause for the operator to see it.
        let quiet_from = paused + TimeDelta::seconds(2);
        let in_pause: Vec<DateTime<Utc>> = fire_times(&runs)
            .into_iter()
            .filter(|t| *t > quiet_from && *t < resumed)
            .collect();
        assert!(
            in_pause.is_empty(),
            "runs for fire times of the pause ({quiet_from} to {resumed}): {in_pause:?}"
        );
        // The fire times of the pause on the Schedule's 2 s grid.
        let grid = |t: DateTime<Utc>| (t - anchor).num_milliseconds().div_euclid(2000);
        let passed = grid(resumed) - grid(quiet_from);
        let schedule = wait_schedule(
            &env,
            name,
            Duration::from_secs(60),
            "the paused fire times counted missed",
            |s| status_of(s).missed_fire_times - missed_before >= passed,
        )
        .await;
        let missed = status_of(&schedule).missed_fire_times - missed_before;
        assert!(
            missed <= passed + 3,
            "missedFireTimes grew by {missed}, about {passed} fire times passed during the pause"
        );
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
    })
    .await;
}

/// (operator) maxRuns 3 on a 2 s interval: exactly three runs, status.firedCount 3, no next
/// fire time, Ready=True reason Finished (the spec is done, nothing is wrong) and a Finished Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_runs_fires_that_many_times_then_finishes() {
    e2e("max-runs", Needs::Operator, |env| async move {
        let name = "thrice";
        let extra = keeping_history(json!({"maxRuns": 3}));
        apply_schedule(&env, &schedule(name, json!({"interval": "2s"}), extra)).await;
        let schedule = wait_schedule(&env, name, Duration::from_secs(60), "Ready=True Finished", |s| {
            ready_of(s) == Some(("True".into(), "Finished".into()))
        })
        .await;
        let status = status_of(&schedule);
        assert_eq!(status.fired_count, 3, "{}", describe_schedule(&schedule));
        assert_eq!(status.next_fire_time, None, "{}", describe_schedule(&schedule));
        // Two more periods: nothing else fires.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let runs = settled_runs(&env, name, 3).await;
        let steps: Vec<i64> = fire_times(&runs)
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds())
            .collect();
        assert_eq!(steps, [2, 2], "{}", describe_runs(&runs));
        wait_event(&env, name, "Finished", Duration::from_secs(30)).await;
    })
    .await;
}

/// (operator + garbage collector) ttlSecondsAfterFinished 5 on a date trigger: once its one
/// run has finished (it succeeds where a node runs pods; elsewhere it is cancelled), the
/// Schedule is deleted, and kube-controller-manager's garbage collector deletes its JobRun
/// and that run's Pod after it (asynchronously: waited for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_seconds_after_finished_deletes_the_schedule_and_by_gc_its_runs() {
    e2e("ttl", Needs::Operator, |env| async move {
        let name = "once";
        let at = now_secs() + TimeDelta::seconds(3);
        let extra = json!({"ttlSecondsAfterFinished": 5});
        apply_schedule(&env, &schedule(name, json!({"date": rfc3339(at)}), extra)).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "its run", |runs| {
            !runs.is_empty()
        })
        .await;
        let run = runs[0].name_any();
        let pod = wait_pod_of(&env, &run, Duration::from_secs(30)).await.name_any();
        if harness::pods_run(&env).await.is_ok() {
            wait_run(&env, &run, Duration::from_secs(120), "Succeeded", |r| {
                phase(r) == Some(JobRunPhase::Succeeded)
            })
            .await;
        } else {
            println!("ttl: no node runs pods here; cancelling the run to finish it");
            cancel_run(&env, &run, "e2e").await;
            wait_run(&env, &run, Duration::from_secs(30), "Cancelled", |r| {
                phase(r) == Some(JobRunPhase::Cancelled)
            })
            .await;
        }
        // Finished is recorded within --schedule-status-delay (60 s by default) of the run's end.
        env.eventually(
            Duration::from_secs(150),
            "the finished Schedule to be deleted",
            || async {
                match env.schedules().get_opt(name).await {
                    Ok(None) => Ok(()),
                    Ok(Some(s)) => Err(format!(
                        "{} finishedAt {:?}",
                        describe_schedule(&s),
                        s.status.as_ref().and_then(|st| st.finished_at)
                    )),
                    Err(err) => Err(format!("get: {err}")),
                }
            },
        )
        .await;
        env.eventually(
            Duration::from_secs(90),
            "the garbage collector to delete its JobRun",
            || async {
                match env.jobruns().get_opt(&run).await {
                    Ok(None) => Ok(()),
                    Ok(Some(r)) => Err(format!(
                        "{run} still there (deleting since {:?})",
                        r.metadata.deletion_timestamp
                    )),
                    Err(err) => Err(format!("get: {err}")),
                }
            },
        )
        .await;
        env.eventually(
            Duration::from_secs(90),
            "the garbage collector to delete the run's Pod",
            || async {
                match env.pods().get_opt(&pod).await {
                    Ok(None) => Ok(()),
                    Ok(Some(p)) => Err(format!(
                        "{pod} still there (deleting since {:?})",
                        p.metadata.deletion_timestamp
                    )),
                    Err(err) => Err(format!("get: {err}")),
                }
            },
        )
        .await;
    })
    .await;
}
