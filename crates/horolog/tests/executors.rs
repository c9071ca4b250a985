//! The two executors: a bare Pod (the default, covered by every other test) and a batch/v1
//! Job per run (`executor: Job`), through every phase. The test plays the Job controller.

#[path = "controller/cluster.rs"]
mod cluster;
#[path = "controller/fixtures.rs"]
mod fixtures;

use cluster::{Cluster, NS};
use fixtures::*;
use horolog::api::{ConcurrencyPolicy, Executor, JobRunPhase, Schedule};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use JobRunPhase::*;

fn as_job(mut schedule: Schedule) -> Schedule {
    if let Some(template) = schedule.spec.job_template.as_mut() {
        template.spec.executor = Some(Executor::Job);
        template.spec.backoff_limit = Some(2);
        template.metadata = Some(horolog::api::TemplateMeta {
            labels: [("kueue.x-k8s.io/queue-name".to_string(), "batch".to_string())].into(),
            annotations: Default::default(),
        });
    }
    schedule
}

async fn jobs(cluster: &Cluster) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    let mut jobs = api
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    jobs.sort_by_key(|j| j.name_any());
    jobs
}

/// The Job controller stand-in: writes the Job's status.
async fn job_status(cluster: &Cluster, job: &str, status: serde_json::Value) {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    api.patch_status(
        job,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .unwrap_or_else(|err| panic!("patch job {job}: {err}"));
    cluster.settle().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_run_follows_its_job_to_success_with_the_result_of_its_pod() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster.apply(as_job(every("batch", "1h"))).await;
    let created = jobs(&cluster).await;
    assert_eq!(created.len(), 1);
    let job = &created[0];
    assert_eq!(job.name_any(), "batch-1767225600-1");
    assert_eq!(
        job.labels().get("kueue.x-k8s.io/queue-name").map(String::as_str),
        Some("batch")
    );
    assert_eq!(job.spec.as_ref().and_then(|s| s.backoff_limit), Some(2));
    assert!(
        cluster.pod_names().await.is_empty(),
        "the Job controller makes the pods"
    );

    job_status(
        &cluster,
        "batch-1767225600-1",
        json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"}),
    )
    .await;
    cluster.advance(3).await;
    assert_eq!(cluster.phases("batch").await, vec![Running]);

    // The Job's pod (made by the Job controller), with its result.
    let template = job.spec.clone().unwrap_or_default().template;
    let mut pod = k8s_openapi::api::core::v1::Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        status: None,
    };
    pod.metadata.name = Some("batch-1767225600-1-x7k2p".into());
    // The Job controls its Pods (the run's Pods are those of its Job).
    pod.metadata.owner_references = Some(vec![
        kube::Resource::controller_owner_ref(job, &()).unwrap_or_else(|| panic!("the Job's owner reference")),
    ]);
    cluster.create_pod(pod).await;
    cluster.pod_exits("batch-1767225600-1-x7k2p", 0, "rows: 12").await;
    job_status(
        &cluster,
        "batch-1767225600-1",
        json!({"active": 0, "succeeded": 1, "completionTime": "2026-01-01T00:00:03Z",
               "conditions": [{"type": "Complete", "status": "True", "reason": "Completed"}]}),
    )
    .await;
    let run = cluster
        .run("batch-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(Succeeded));
    assert_eq!(run.result.as_deref(), Some("rows: 12"));
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.attempts, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_fails_its_run_with_the_jobs_reason() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster.apply(as_job(every("batch", "1h"))).await;
    job_status(
        &cluster,
        "batch-1767225600-1",
        json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
    )
    .await;
    let run = cluster
        .run("batch-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(Failed));
    assert_eq!(run.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(run.attempts, Some(3), "the Job's pods that failed");
}

#[tokio::test(start_paused = true)]
async fn a_suspended_job_keeps_its_run_pending_with_the_reason() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster.apply(as_job(every("queued", "1h"))).await;
    // Kueue suspends Jobs of a queue until it admits them.
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    api.patch(
        "queued-1767225600-1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap_or_else(|err| panic!("suspend: {err}"));
    cluster.settle().await;
    let run = cluster
        .run("queued-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(Pending));
    assert_eq!(run.reason.as_deref(), Some("Suspended"));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_job_run_deletes_its_job_and_replace_does_too() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster
        .apply(as_job(
            every("swap", "1m")
                .max_running(1, ConcurrencyPolicy::Replace)
                .history(5, 5),
        ))
        .await;
    job_status(&cluster, "swap-1767225600-1", json!({"active": 1})).await;
    cluster.advance(60).await;
    assert_eq!(cluster.phases("swap").await, vec![Cancelled, Scheduled]);
    let names: Vec<String> = jobs(&cluster).await.iter().map(|j| j.name_any()).collect();
    assert_eq!(
        names,
        vec!["swap-1767225660-1"],
        "the replaced run's Job is deleted"
    );
    cluster
        .patch_run(
            "swap-1767225660",
            json!({"metadata": {"annotations": {"horolog.dev/cancel": "ops"}}}),
        )
        .await;
    assert_eq!(cluster.phases("swap").await, vec![Cancelled, Cancelled]);
    assert!(jobs(&cluster).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn without_the_job_executor_a_job_run_fails_with_a_clear_reason() {
    let cluster = Cluster::start().await;
    cluster.apply(as_job(every("nope", "1h"))).await;
    let run = cluster
        .run("nope-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(run.phase, Some(Failed));
    assert_eq!(run.reason.as_deref(), Some("ExecutorUnavailable"));
    assert!(run.message.unwrap_or_default().contains("--job-executor"));
}

/// Deletes a Job as the TTL controller or a user would (background propagation).
async fn delete_job(cluster: &Cluster, job: &str) {
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    api.delete(job, &kube::api::DeleteParams::background())
        .await
        .unwrap_or_else(|err| panic!("delete job {job}: {err}"));
    cluster.settle().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_that_finished_and_was_deleted_while_no_operator_ran_is_recorded_not_created_again() {
    let mut cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster.apply(as_job(every("ttl", "1h"))).await;
    cluster.stop_operator().await;
    let run = cluster.run("ttl-1767225600").await.and_then(|r| r.status);
    assert!(
        run.and_then(|s| s.pod_name).is_none(),
        "the run's status does not name its Job yet (as after a crash right after its create)"
    );
    // The Job controller runs it to completion, then ttlSecondsAfterFinished deletes it.
    job_status(
        &cluster,
        "ttl-1767225600-1",
        json!({"active": 0, "succeeded": 1, "startTime": "2026-01-01T00:00:01Z", "completionTime": "2026-01-01T00:00:05Z",
               "conditions": [{"type": "Complete", "status": "True", "reason": "Completed"}]}),
    )
    .await;
    delete_job(&cluster, "ttl-1767225600-1").await;
    cluster.start_operator();
    cluster.advance(2).await;
    assert_eq!(
        cluster.phases("ttl").await,
        vec![Succeeded],
        "its outcome, recorded"
    );
    assert!(
        jobs(&cluster).await.is_empty(),
        "released once recorded, the Job goes; no second one is created"
    );
    let creates = cluster
        .writes()
        .iter()
        .filter(|w| w.starts_with("POST") && w.ends_with("/jobs"))
        .count();
    assert_eq!(creates, 1, "the run's Job was created once");

    // With its finalizer removed by hand while no operator ran, a Job the status named is
    // gone without a trace: the run fails Lost, and nothing runs twice.
    cluster.apply(as_job(every("lost", "1h"))).await;
    let lost = jobs(&cluster)
        .await
        .iter()
        .map(|j| j.name_any())
        .find(|n| n.starts_with("lost-"))
        .unwrap_or_else(|| panic!("the Job of lost"));
    job_status(
        &cluster,
        &lost,
        json!({"active": 1, "startTime": "2026-01-01T00:00:02Z"}),
    )
    .await;
    cluster.advance(3).await;
    assert_eq!(cluster.phases("lost").await, vec![Running]);
    cluster.stop_operator().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    api.patch(
        &lost,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap_or_else(|err| panic!("strip finalizer: {err}"));
    delete_job(&cluster, &lost).await;
    cluster.start_operator();
    cluster.advance(2).await;
    let runs = cluster.runs_of("lost").await;
    let status = runs.first().and_then(|r| r.status.clone()).unwrap_or_default();
    assert_eq!(
        (status.phase, status.reason.as_deref()),
        (Some(Failed), Some("Lost"))
    );
    assert!(
        jobs(&cluster).await.iter().all(|j| j.name_any() != lost),
        "not created again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_deleted_before_it_finished_fails_its_run_and_is_released() {
    let cluster = Cluster::start_with(|config| config.job_executor = true).await;
    cluster.apply(as_job(every("gone", "1h"))).await;
    job_status(&cluster, "gone-1767225600-1", json!({"active": 1})).await;
    delete_job(&cluster, "gone-1767225600-1").await;
    cluster.advance(1).await;
    let status = cluster
        .run("gone-1767225600")
        .await
        .and_then(|r| r.status)
        .unwrap_or_default();
    assert_eq!(
        (status.phase, status.reason.as_deref()),
        (Some(Failed), Some("JobDeleted"))
    );
    assert!(jobs(&cluster).await.is_empty(), "released, it goes");
}
