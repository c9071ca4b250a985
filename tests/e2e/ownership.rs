//! What the operator did not create, did not see, or no longer owns, on a real cluster: a Pod
//! someone else made under a run's Pod name is never adopted nor deleted (NameConflict); a
//! JobRun deleted and created again under its name runs fresh; a deleted Schedule (also with
//! `--cascade=orphan`) starts none of its waiting runs. The scenarios of
//! crates/horolog/tests/exactly_once.rs, with the real garbage collector's lag.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use super::*;

fn reason(run: &JobRun) -> Option<String> {
    run.status.as_ref().and_then(|s| s.reason.clone())
}

/// (operator) A Pod `victim-1` made as `kubectl run` would (no owner, no horolog label), then
/// a one-off JobRun `victim`: the run ends Failed, reason NameConflict, with a Warning Event
/// naming the Pod, and the Pod is untouched (same uid, not being deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_the_operator_did_not_create_is_neither_adopted_nor_deleted() {
    e2e("name-conflict", Needs::Operator, |env| async move {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "victim-1", "labels": {"run": "victim"}},
            "spec": pod_template("sleep 600")["spec"],
        }))
        .unwrap_or_else(|err| panic!("pod: {err}"));
        let pod = env
            .pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|err| panic!("create pod victim-1: {err}"));
        let run: JobRun = serde_json::from_value(one_off("victim", "echo ok"))
            .unwrap_or_else(|err| panic!("JobRun victim: {err}"));
        env.jobruns()
            .create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun victim: {err}"));
        wait_run(
            &env,
            "victim",
            Duration::from_secs(30),
            "Failed NameConflict",
            |r| phase(r) == Some(JobRunPhase::Failed) && reason(r).as_deref() == Some("NameConflict"),
        )
        .await;
        let event = wait_event(&env, "victim", "Failed", Duration::from_secs(30)).await;
        assert!(
            event.note.as_deref().unwrap_or_default().contains("pod victim-1"),
            "{event:?}"
        );
        cancel_run(&env, "victim", "e2e").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let still = env
            .pods()
            .get("victim-1")
            .await
            .unwrap_or_else(|err| panic!("the Pod is still there: {err}"));
        assert_eq!(still.uid(), pod.uid());
        assert!(still.metadata.deletion_timestamp.is_none(), "not deleted");
        assert!(still.owner_references().is_empty(), "not adopted");
    })
    .await;
}

/// (operator) A one-off JobRun deleted (its Pod is garbage collected a moment later, within
/// its 1 s grace period) and created again at once under its name: the new run is not failed
/// for the old Pod's deletion; it gets a Pod of its own (owned by its uid), and with a node
/// that runs pods it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobrun_created_again_under_its_name_runs_fresh() {
    e2e("recreated", Needs::Operator, |env| async move {
        let run: JobRun = serde_json::from_value(one_off("again", "sleep 5; echo ok > /dev/termination-log"))
            .unwrap_or_else(|err| panic!("JobRun again: {err}"));
        env.jobruns()
            .create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun again: {err}"));
        wait_pod_of(&env, "again", Duration::from_secs(30)).await;
        env.jobruns()
            .delete("again", &DeleteParams::background())
            .await
            .unwrap_or_else(|err| panic!("delete JobRun again: {err}"));
        env.eventually(Duration::from_secs(30), "the old JobRun gone", || async {
            match env.jobruns().get_opt("again").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let created = env
            .jobruns()
            .create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun again, again: {err}"));
        let uid = created.uid().unwrap_or_default();
        env.eventually(Duration::from_secs(60), "a Pod of the new run", || async {
            let pods = pods_of(&env, "again").await;
            let owned = pods.iter().any(|p| {
                p.owner_references().iter().any(|o| o.uid == uid) && p.metadata.deletion_timestamp.is_none()
            });
            let run = env.jobruns().get("again").await.map_err(|e| e.to_string())?;
            assert_ne!(
                phase(&run),
                Some(JobRunPhase::Failed),
                "the new run is not failed for the old Pod: {:?}",
                run.status
            );
            owned.then_some(()).ok_or_else(|| format!("{} pods", pods.len()))
        })
        .await;
        if pods_run_or_skip(&env, "the re-created run's success").await {
            let run = finished_run(&env, "again").await;
            assert_eq!(phase(&run), Some(JobRunPhase::Succeeded), "{:?}", run.status);
        }
    })
    .await;
}

/// (operator) A Schedule with `maxRunningJobs: 1`, Wait, and runs Waiting, deleted as
/// `kubectl delete` does (background: the garbage collector deletes the runs a moment later)
/// and with `--cascade=orphan` (the runs stay): none of the waiting runs ever gets a Pod or a
/// PodCreated Event; the orphaned ones end Cancelled, reason ScheduleDeleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_schedule_starts_none_of_its_waiting_runs() {
    e2e("schedule-deleted", Needs::Operator, |env| async move {
        for (name, params) in [
            ("queue", DeleteParams::background()),
            ("kept", DeleteParams::orphan()),
        ] {
            let extra = json!({
                "maxRunningJobs": 1,
                "concurrencyPolicy": "Wait",
                "successfulRunsHistoryLimit": 10,
                "failedRunsHistoryLimit": 10,
            });
            apply_schedule(
                &env,
                &schedule_running(name, json!({"interval": "2s"}), "sleep 600", extra),
            )
            .await;
            let runs = wait_runs(
                &env,
                name,
                Duration::from_secs(60),
                "three runs Waiting",
                |runs| {
                    runs.iter()
                        .filter(|r| phase(r) == Some(JobRunPhase::Waiting))
                        .count()
                        >= 3
                },
            )
            .await;
            let waiting: Vec<String> = runs
                .iter()
                .filter(|r| phase(r) == Some(JobRunPhase::Waiting))
                .map(|r| r.name_any())
                .collect();
            env.schedules()
                .delete(name, &params)
                .await
                .unwrap_or_else(|err| panic!("delete Schedule {name}: {err}"));
            if name == "kept" {
                for run in &waiting {
                    let ended = wait_run(
                        &env,
                        run,
                        Duration::from_secs(30),
                        "Cancelled ScheduleDeleted",
                        |r| {
                            phase(r) == Some(JobRunPhase::Cancelled)
                                && reason(r).as_deref() == Some("ScheduleDeleted")
                        },
                    )
                    .await;
                    assert!(ended.owner_references().is_empty(), "orphaned");
                }
            } else {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            for run in &waiting {
                assert!(pods_of(&env, run).await.is_empty(), "{name}: {run} got a Pod");
                let events = env.events_of(run).await;
                assert!(
                    events.iter().all(|e| e.reason.as_deref() != Some("PodCreated")),
                    "{name}: {run} started: {}",
                    harness::describe_events(&events)
                );
            }
        }
    })
    .await;
}

/// (operator, in-process only; a node that runs pods) The operator stops right after a run's
/// Pod is created; the Pod runs, succeeds and is deleted (`kubectl delete pod`, a drain)
/// before any operator sees it. Its tracking finalizer keeps it, Terminating, until the next
/// operator records its outcome: the run ends Succeeded with the Pod's result, the Pod is
/// released and goes, and no second Pod is ever created. Skipped with
/// `HOROLOG_E2E_OPERATOR=external` (the harness cannot stop an installed operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_finished_and_vanished_while_unobserved_never_runs_again() {
    e2e("unobserved", Needs::Operator, |env| async move {
        if !env.operator_in_process() {
            println!("skipping unobserved: the operator is external (HOROLOG_E2E_OPERATOR=external)");
            return;
        }
        if !pods_run_or_skip(&env, "unobserved").await {
            return;
        }
        let run: JobRun = serde_json::from_value(one_off("drained", "sleep 5; echo once"))
            .unwrap_or_else(|err| panic!("JobRun drained: {err}"));
        env.jobruns()
            .create(&PostParams::default(), &run)
            .await
            .unwrap_or_else(|err| panic!("create JobRun drained: {err}"));
        let pod = wait_pod_of(&env, "drained", Duration::from_secs(30)).await;
        assert!(env.stop_operator().await, "the in-process operator was running");
        let uid = pod.uid().unwrap_or_default();
        assert!(
            pod.finalizers().iter().any(|f| f == "horolog.dev/run-tracking"),
            "the Pod carries the tracking finalizer: {:?}",
            pod.finalizers()
        );
        env.eventually(Duration::from_secs(120), "the Pod to succeed", || async {
            let pod = env
                .pods()
                .get("drained-1")
                .await
                .map_err(|err| format!("get: {err}"))?;
            match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Succeeded") => Ok(()),
                phase => Err(format!("phase {phase:?}")),
            }
        })
        .await;
        env.pods()
            .delete("drained-1", &DeleteParams::default())
            .await
            .unwrap_or_else(|err| panic!("delete pod drained-1: {err}"));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held = env
            .pods()
            .get("drained-1")
            .await
            .unwrap_or_else(|err| panic!("the Pod is held by its finalizer: {err}"));
        assert!(held.metadata.deletion_timestamp.is_some(), "Terminating");
        assert!(env.start_operator());
        let done = wait_run(&env, "drained", Duration::from_secs(60), "Succeeded", |r| {
            phase(r) == Some(JobRunPhase::Succeeded)
        })
        .await;
        let status = done.status.clone().unwrap_or_default();
        assert_eq!(status.attempts, Some(1), "{status:?}");
        env.eventually(Duration::from_secs(30), "the Pod released and gone", || async {
            match env.pods().get_opt("drained-1").await {
                Ok(None) => Ok(()),
                Ok(Some(pod)) if pod.uid().unwrap_or_default() != uid => {
                    panic!("drained-1 was created again (uid {:?}, was {uid})", pod.uid())
                }
                Ok(Some(pod)) => Err(format!("still there, finalizers {:?}", pod.finalizers())),
                Err(err) => Err(format!("get: {err}")),
            }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            pods_of(&env, "drained").await.is_empty(),
            "no Pod made again after the outcome"
        );
        let events = env.events_of("drained").await;
        let created = events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("PodCreated"))
            .count();
        assert!(created <= 1, "{}", harness::describe_events(&events));
    })
    .await;
}
