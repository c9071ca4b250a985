//! Exactly once on a real cluster: every fire time becomes exactly one outcome (a run, or a
//! count of coalesced or missed fire times) across catch-ups, trigger edits and operator
//! restarts; cancels; the conditions `kubectl wait` reads. The scenarios of
//! crates/horolog/tests/exactly_once.rs, on the wall clock.

use std::time::Duration;

use chrono::TimeDelta;
use kube::ResourceExt;
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

use super::*;

const THREE_DAYS: i64 = 3 * 86_400;

/// (operator) A Schedule firing every second from three days ago, created with all of its fire
/// times due, makes exactly one JobRun: for the latest fire time with `coalesce: Latest`, for
/// the earliest with `Earliest`; `status.coalescedFireTimes` counts the other 259,200 and a
/// Coalesced Event says so. (The trigger ends a few seconds before the Schedule is created, so
/// the wall clock adds no fire time of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_day_backlog_of_seconds_makes_exactly_one_run() {
    e2e("backlog", Needs::Operator, |env| async move {
        let end = now_secs() - TimeDelta::seconds(5);
        let start = end - TimeDelta::seconds(THREE_DAYS);
        let cases = [("latest", "Latest", end), ("earliest", "Earliest", start)];
        for (name, coalesce, _) in cases {
            let trigger = json!({"interval": "1s", "startTime": rfc3339(start), "endTime": rfc3339(end)});
            apply_schedule(&env, &schedule(name, trigger, json!({"coalesce": coalesce}))).await;
        }
        for (name, coalesce, expected) in cases {
            let schedule = wait_schedule(
                &env,
                name,
                Duration::from_secs(60),
                "every due fire time handled",
                |s| status_of(s).cursor == Some(end) && status_of(s).last_fire_time.is_some(),
            )
            .await;
            let runs = settled_runs(&env, name, 1).await;
            let run = &runs[0];
            assert_eq!(
                run.spec.fire_time,
                Some(expected),
                "coalesce {coalesce}: the one run of {name}"
            );
            assert_eq!(run.name_any(), format!("{name}-{}", expected.timestamp()));
            let status = status_of(&get_schedule(&env, name).await);
            assert_eq!(
                status.coalesced_fire_times,
                THREE_DAYS,
                "coalesce {coalesce}: every other due fire time is merged: {}",
                describe_schedule(&schedule)
            );
            assert_eq!(status.missed_fire_times, 0, "{name}");
            assert_eq!(status.fired_count, 1, "{name}");
            assert_eq!(status.last_fire_time, Some(expected), "{name}");
            wait_event(&env, name, "Coalesced", Duration::from_secs(30)).await;
        }
    })
    .await;
}

/// (operator) A trigger edit applies from the moment of the edit: a Schedule created with a
/// yearly cron is edited, 8 s after its creation, to a daily one whose time of day lies 5 s
/// after the creation. That fire time passed before the edit: no run for it, not counted
/// missed, and the next fire time is the same time tomorrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_edit_applies_from_the_moment_of_the_edit() {
    e2e("trigger-edit", Needs::Operator, |env| async move {
        let name = "edited";
        let mut object = schedule(name, json!({"cron": "0 0 1 1 *"}), json!({}));
        let applied = apply_schedule(&env, &object).await;
        let created = created_at(&applied.metadata);
        wait_schedule(
            &env,
            name,
            Duration::from_secs(60),
            "the yearly trigger observed",
            |s| observed(s) && status_of(s).next_fire_time.is_some(),
        )
        .await;
        let between = created + TimeDelta::seconds(5);
        let edit_at = created + TimeDelta::seconds(8);
        if let Ok(wait) = (edit_at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let daily = format!(
            "{} {} {} * * *",
            between.format("%-S"),
            between.format("%-M"),
            between.format("%-H")
        );
        object["spec"]["trigger"] = json!({"cron": daily});
        let edited = apply_schedule(&env, &object).await;
        let generation = edited.metadata.generation;
        let schedule = wait_schedule(&env, name, Duration::from_secs(60), "the edit observed", |s| {
            s.status.as_ref().and_then(|st| st.observed_generation) == generation
        })
        .await;
        let status = status_of(&schedule);
        assert_eq!(
            status.next_fire_time,
            Some(between + TimeDelta::days(1)),
            "{daily}: {between} passed before the edit; the next fire time is tomorrow's"
        );
        assert_eq!(status.missed_fire_times, 0, "{between} is not counted missed");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs = runs_of(&env, name).await;
        assert!(
            runs.is_empty(),
            "nothing fires for {between}, before the edit: {}",
            describe_runs(&runs)
        );
        wait_event(&env, name, "TriggerChanged", Duration::from_secs(30)).await;
    })
    .await;
}

/// (operator, in-process only) Stopping the operator (`controller::run`) for 7 s in the middle
/// of a 2 s interval Schedule (coalesce All) and starting it again leaves no gap and no
/// duplicate: the fire times form one unbroken 2 s sequence, the ones of the downtime
/// included, each with one JobRun with one Pod, and `status.firedCount` equals the runs.
/// Skipped with `HOROLOG_E2E_OPERATOR=external`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_leaves_no_gap_and_no_duplicate() {
    e2e("restart", Needs::Operator, |env| async move {
        if !env.operator_in_process() {
            println!("skipping restart: the operator is external (HOROLOG_E2E_OPERATOR=external)");
            return;
        }
        let name = "steady";
        let extra =
            json!({"coalesce": "All", "successfulRunsHistoryLimit": 1000, "failedRunsHistoryLimit": 1000});
        apply_schedule(&env, &schedule(name, json!({"interval": "2s"}), extra)).await;
        wait_runs(&env, name, Duration::from_secs(60), "3 JobRuns", |runs| {
            runs.len() >= 3
        })
        .await;
        assert!(env.stop_operator().await, "the in-process operator was running");
        let stopped = Utc::now();
        tokio::time::sleep(Duration::from_secs(7)).await;
        let restarted = Utc::now();
        assert!(env.start_operator());
        let after = restarted + TimeDelta::seconds(4);
        wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "a JobRun fired 4 s after the restart",
            |runs| fire_times(runs).last().is_some_and(|t| *t >= after),
        )
        .await;
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
        wait_schedule(&env, name, Duration::from_secs(60), "paused observed", observed).await;
        let (runs, status) = env
            .eventually(
                Duration::from_secs(30),
                "status.firedCount to count every JobRun",
                || async {
                    let runs = runs_of(&env, name).await;
                    let status = status_of(&get_schedule(&env, name).await);
                    if status.fired_count == runs.len() as i64 {
                        Ok((runs, status))
                    } else {
                        Err(format!(
                            "firedCount {}, {}",
                            status.fired_count,
                            describe_runs(&runs)
                        ))
                    }
                },
            )
            .await;
        let times = fire_times(&runs);
        assert_eq!(times.len(), runs.len(), "every run has a fire time");
        let steps: Vec<i64> = times.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
        assert!(
            steps.iter().all(|&s| s == 2),
            "fire times are one unbroken 2 s sequence (steps {steps:?}): {times:?}"
        );
        let downtime = times.iter().filter(|t| **t > stopped && **t < restarted).count();
        assert!(
            downtime >= 2,
            "the fire times of the downtime ({stopped} to {restarted}) ran after the restart: {times:?}"
        );
        for run in &runs {
            let pods = pods_of(&env, &run.name_any()).await;
            let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
            assert!(
                names.len() <= 1 && names.iter().all(|n| n.ends_with("-1")),
                "{}: one Pod, its first attempt: {names:?}",
                run.name_any()
            );
        }
        assert_eq!(status.missed_fire_times, 0);
        assert_eq!(status.coalesced_fire_times, 0);
    })
    .await;
}

/// A one-off JobRun of a Task that does not exist: Pending (reason TaskNotFound), no Pod.
fn of_missing_task(name: &str) -> Value {
    json!({
        "apiVersion": "horolog.dev/v1alpha1",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": {"taskRef": {"name": "not-created"}},
    })
}

/// (operator; the Running part with a node that runs pods) Annotation `horolog.dev/cancel`:
/// a Pending run (a one-off of a Task that does not exist) and a Waiting one (held by maxRunningJobs 1) end
/// Cancelled at once, reason CancelRequested, the annotation's value in the message, without
/// ever getting a Pod; a Running run's Pod is deleted (gone, or being deleted within its
/// 1 s grace period) and the run ends Cancelled. Without a node the run holding the slot is
/// cancelled while its Pod is Pending, with the same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_annotation_cancels_pending_waiting_and_running_runs() {
    e2e("cancel", Needs::Operator, |env| async move {
        let cancelled = |run: &JobRun| {
            phase(run) == Some(JobRunPhase::Cancelled)
                && run.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("CancelRequested")
        };
        let run: JobRun = serde_json::from_value(of_missing_task("later"))
            .unwrap_or_else(|err| panic!("JobRun later: {err}"));
        env.jobruns()
            .create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun later: {err}"));
        let pending = wait_run(
            &env,
            "later",
            Duration::from_secs(30),
            "Pending with reason TaskNotFound",
            |r| {
                phase(r) == Some(JobRunPhase::Pending)
                    && r.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("TaskNotFound")
            },
        )
        .await;
        assert!(pods_of(&env, "later").await.is_empty(), "{pending:?}");
        cancel_run(&env, "later", "e2e-pending").await;
        let run = wait_run(&env, "later", Duration::from_secs(30), "Cancelled", cancelled).await;
        let status = run.status.clone().unwrap_or_default();
        assert!(
            status
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("e2e-pending"),
            "{status:?}"
        );
        assert_eq!(
            run_condition(&run, "Failed").map(|(s, _)| s).as_deref(),
            Some("True"),
            "a cancelled run is Failed=True for kubectl wait: {status:?}"
        );
        assert!(
            pods_of(&env, "later").await.is_empty(),
            "a cancelled Pending run has no Pod"
        );

        let name = "one-slot";
        let extra = json!({
            "maxRunningJobs": 1,
            "concurrencyPolicy": "Wait",
            "successfulRunsHistoryLimit": 10,
            "failedRunsHistoryLimit": 10,
        });
        apply_schedule(
            &env,
            &schedule_running(name, json!({"interval": "5s"}), "sleep 600", extra),
        )
        .await;
        let runs = wait_runs(
            &env,
            name,
            Duration::from_secs(60),
            "a second JobRun, Waiting",
            |runs| runs.len() >= 2 && phase(&runs[1]) == Some(JobRunPhase::Waiting),
        )
        .await;
        let (holding, waiting) = (runs[0].name_any(), runs[1].name_any());
        wait_pod_of(&env, &holding, Duration::from_secs(30)).await;
        cancel_run(&env, &waiting, "e2e-waiting").await;
        wait_run(&env, &waiting, Duration::from_secs(30), "Cancelled", cancelled).await;
        assert!(
            pods_of(&env, &waiting).await.is_empty(),
            "a cancelled Waiting run has no Pod"
        );

        let running = pods_run_or_skip(
            &env,
            "cancelling a Running run (cancelling its Pending Pod instead)",
        )
        .await;
        if running {
            wait_run(&env, &holding, Duration::from_secs(120), "Running", |r| {
                phase(r) == Some(JobRunPhase::Running)
            })
            .await;
        }
        cancel_run(&env, &holding, "e2e-running").await;
        let run = wait_run(&env, &holding, Duration::from_secs(30), "Cancelled", cancelled).await;
        assert!(
            run.status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .unwrap_or_default()
                .contains("e2e-running"),
            "{:?}",
            run.status
        );
        let seen = wait_pods_deleted(&env, &holding, Duration::from_secs(30)).await;
        println!("cancel: the Pod of the cancelled run {holding} is {seen}");
        patch_schedule(&env, name, json!({"spec": {"paused": true}})).await;
    })
    .await;
}

/// (operator + a node that runs pods) What `kubectl wait --for=condition=Complete jobrun/NAME`
/// waits for, watched as kubectl does: a run that succeeds gets `Complete=True` (and no
/// `Failed=True`); one that fails gets `Failed=True` and never `Complete=True`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_condition_complete_sees_a_successful_run() {
    e2e("wait-complete", Needs::Operator, |env| async move {
        if !pods_run_or_skip(&env, "kubectl wait checks").await {
            return;
        }
        for (name, script) in [("done", "echo ok > /dev/termination-log"), ("broken", "exit 1")] {
            let run: JobRun = serde_json::from_value(one_off(name, script))
                .unwrap_or_else(|err| panic!("JobRun {name}: {err}"));
            env.jobruns()
                .create(&PostParams::default(), &run)
                .await
                .unwrap_or_else(|err| panic!("create JobRun {name}: {err}"));
        }
        let has = |type_: &'static str| {
            move |run: Option<&JobRun>| {
                run.and_then(|r| run_condition(r, type_))
                    .is_some_and(|(status, _)| status == "True")
            }
        };
        for (name, wanted, unwanted, phase_wanted) in [
            ("done", "Complete", "Failed", JobRunPhase::Succeeded),
            ("broken", "Failed", "Complete", JobRunPhase::Failed),
        ] {
            let waited = tokio::time::timeout(
                Duration::from_secs(120),
                await_condition(env.jobruns(), name, has(wanted)),
            )
            .await;
            let run = match waited {
                Ok(Ok(Some(run))) => run,
                Ok(Ok(None)) => panic!("JobRun {name} was deleted while waiting for {wanted}"),
                Ok(Err(err)) => panic!("watching JobRun {name}: {err}"),
                Err(_) => {
                    let seen = env.jobruns().get(name).await.ok().and_then(|r| r.status);
                    panic!("timed out after 120s waiting for {name} condition {wanted}=True; status {seen:?}")
                }
            };
            assert_eq!(phase(&run), Some(phase_wanted), "{name}: {:?}", run.status);
            assert!(
                !has(unwanted)(Some(&run)),
                "{name} is {wanted}=True and {unwanted}=True: {:?}",
                run.status
            );
        }
    })
    .await;
}
