//! The Job executor on a real cluster: `executor: Job` runs each attempt as a batch/v1 Job
//! owned by the JobRun, which kube-controller-manager's job controller runs. The scenarios of
//! crates/horolog/tests/executors.rs, with the real job controller instead of the test playing
//! it.

use std::time::Duration;

use kube::ResourceExt;
use serde_json::json;

use super::*;

/// A Schedule every hour (so it fires once, at its creation) whose runs are batch/v1 Jobs
/// running `script`.
fn as_job(name: &str, script: &str) -> Value {
    let mut object = schedule_running(name, json!({"interval": "1h"}), script, json!({}));
    object["spec"]["jobTemplate"]["metadata"] = json!({"labels": {"team": "batch"}});
    object["spec"]["jobTemplate"]["spec"]["executor"] = json!("Job");
    object
}

/// (operator started with `job_executor = true` — an external one needs `--job-executor` —;
/// the run's outcome needs the job controller and a node that runs pods) A Schedule with
/// `jobTemplate.spec.executor: Job` runs its JobRun as a batch/v1 Job named `<run>-1`,
/// controlled by the JobRun, labelled with it and with the template's labels, with the run's
/// backoffLimit (0). The job controller runs it, and the run ends Succeeded with the pod's
/// termination message as result, exit code 0, one attempt, Complete=True; its Pods are the
/// Job's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_executor_runs_a_batch_job_owned_by_the_run() {
    let configure = |config: &mut horolog::controller::ControllerConfig| config.job_executor = true;
    harness::e2e_configured("job-executor", Needs::Operator, configure, |env| async move {
        let name = "batch";
        apply_schedule(&env, &as_job(name, "echo 'rows: 12' > /dev/termination-log")).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a run", |runs| {
            !runs.is_empty()
        })
        .await;
        let run = &runs[0];
        let run_name = run.name_any();
        let job_name = format!("{run_name}-1");
        let job = env
            .eventually(Duration::from_secs(60), &format!("Job {job_name}"), || async {
                env.jobs()
                    .get_opt(&job_name)
                    .await
                    .map_err(|err| format!("get: {err}"))?
                    .ok_or_else(|| {
                        format!(
                            "no Job; run status {:?}",
                            run.status.as_ref().map(|s| (&s.phase, &s.reason, &s.message))
                        )
                    })
            })
            .await;
        let owner = job
            .owner_references()
            .iter()
            .find(|o| o.kind == "JobRun")
            .cloned()
            .unwrap_or_else(|| panic!("Job {job_name} has no JobRun owner: {:?}", job.owner_references()));
        assert_eq!(
            (owner.name.as_str(), Some(owner.uid.as_str()), owner.controller),
            (run_name.as_str(), run.uid().as_deref(), Some(true)),
            "Job {job_name} owner"
        );
        assert_eq!(
            job.labels().get(JOBRUN_LABEL).map(String::as_str),
            Some(run_name.as_str()),
            "Job {job_name} label {JOBRUN_LABEL}"
        );
        assert_eq!(
            job.labels().get("team").map(String::as_str),
            Some("batch"),
            "Job {job_name}: the template's labels"
        );
        assert!(
            job.spec.as_ref().is_some_and(|s| s.backoff_limit == Some(0)),
            "Job {job_name}: the run's backoffLimit (default 0): {:?}",
            job.spec.as_ref().map(|s| s.backoff_limit)
        );

        if let Err(why) = harness::job_controller_runs(&env).await {
            println!("skipping the Job's outcome: {why}");
            return;
        }
        if !pods_run_or_skip(&env, "the Job's outcome").await {
            return;
        }
        let done = finished_run(&env, &run_name).await;
        let status = done.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(JobRunPhase::Succeeded), "{status:?}");
        assert_eq!(
            status.result.as_deref().map(str::trim),
            Some("rows: 12"),
            "the Job's pod's termination message: {status:?}"
        );
        assert_eq!(status.exit_code, Some(0), "{status:?}");
        assert_eq!(status.attempts, Some(1), "{status:?}");
        assert_eq!(
            run_condition(&done, "Complete").map(|(s, _)| s).as_deref(),
            Some("True"),
            "{status:?}"
        );
        // Every Pod of the run is the Job's (the job controller's), none the operator's own.
        let uid = job.uid().unwrap_or_default();
        for pod in pods_of(&env, &run_name).await {
            assert!(
                pod.owner_references()
                    .iter()
                    .any(|o| o.kind == "Job" && o.uid == uid),
                "Pod {} is not the Job's: {:?}",
                pod.name_any(),
                pod.owner_references()
            );
        }
    })
    .await;
}

/// (operator, in-process only: started without the Job executor) A run with `executor: Job`
/// fails at once with reason ExecutorUnavailable, its message naming `--job-executor`, and
/// no Job is created. Skipped with `HOROLOG_E2E_OPERATOR=external` (how the installed
/// operator runs is not known).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_job_executor_a_job_run_fails_with_a_clear_reason() {
    e2e("no-job-executor", Needs::Operator, |env| async move {
        if !env.operator_in_process() {
            println!("skipping no-job-executor: the operator is external (HOROLOG_E2E_OPERATOR=external)");
            return;
        }
        let name = "nope";
        apply_schedule(&env, &as_job(name, "true")).await;
        let runs = wait_runs(&env, name, Duration::from_secs(60), "a run", |runs| {
            !runs.is_empty()
        })
        .await;
        let run = wait_run(
            &env,
            &runs[0].name_any(),
            Duration::from_secs(30),
            "Failed",
            |r| phase(r) == Some(JobRunPhase::Failed),
        )
        .await;
        let status = run.status.clone().unwrap_or_default();
        assert_eq!(
            status.reason.as_deref(),
            Some("ExecutorUnavailable"),
            "{status:?}"
        );
        assert!(
            status
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("--job-executor"),
            "{status:?}"
        );
        let jobs = env
            .jobs()
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|err| panic!("listing Jobs: {err}"))
            .items;
        assert!(
            jobs.is_empty(),
            "Jobs created without the Job executor: {}",
            jobs.len()
        );
    })
    .await;
}
