//! The tracking finalizer ([`crate::pod::TRACKING_FINALIZER`]) on a run's Pods and Jobs:
//! every Pod (and, with the Job executor, every Job) is created with it, so neither its end
//! nor its deletion (`ttlSecondsAfterFinished`, a drain, a user) can go unseen, and it is
//! removed (one JSON patch) once the run's status holds the outcome, or once the run is gone
//! or being deleted (a JobRun deleted by resultTTL, a history limit, a user or its
//! Schedule's deletion must not leave its Pods or Job Terminating).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use super::error::is_not_found;
use super::index::{JobView, PodView};
use super::{Context, Error, MANAGER};
use crate::api::{JobRun, JobRunStatus};
use crate::pod::TRACKING_FINALIZER;

/// True when `recorded` (a run's written status) holds the outcome of `pod`: the run has
/// finished, or a later attempt has been recorded.
pub fn recorded(recorded: &JobRunStatus, pod: &PodView) -> bool {
    recorded.phase.is_some_and(|phase| phase.is_finished())
        || recorded.attempts.is_some_and(|attempts| pod.attempt < attempts)
}

/// Releases the Pods of `run` that still carry the finalizer and whose outcome `status` (as
/// written) holds; with `all`, every one (the run is gone or being deleted).
pub async fn release_run(ctx: &Context, run: &JobRun, status: &JobRunStatus, all: bool) -> Result<(), Error> {
    let namespace = run.namespace().unwrap_or_default();
    let pods = ctx.pods.of_run(run);
    for pod in pods.values() {
        if pod.tracking.is_some() && (all || recorded(status, pod)) {
            release(ctx, &namespace, pod).await?;
            ctx.pods.released(run, pod.attempt);
        }
    }
    if let Some(job) = ctx.jobs.of_run(run)
        && job.tracking.is_some()
        && (all || status.phase.is_some_and(|phase| phase.is_finished()))
    {
        release_job(ctx, &namespace, &job).await?;
        ctx.jobs.released(run);
    }
    Ok(())
}

/// Removes the finalizer from `job`, as [`release`] does for a Pod.
pub async fn release_job(ctx: &Context, namespace: &str, job: &JobView) -> Result<(), Error> {
    match job.tracking {
        Some(at) => remove_finalizer::<Job>(ctx, namespace, &job.name, at).await,
        None => Ok(()),
    }
}

/// Removes the finalizer from `pod`. A Pod that is gone, or whose finalizers moved since the
/// watch showed them (the patch's test fails), is left to the next event.
pub async fn release(ctx: &Context, namespace: &str, pod: &PodView) -> Result<(), Error> {
    match pod.tracking {
        Some(at) => remove_finalizer::<Pod>(ctx, namespace, &pod.name, at).await,
        None => Ok(()),
    }
}

/// Removes the tracking finalizer at position `at` of object `name`: a JSON patch that tests
/// it is still there.
async fn remove_finalizer<K>(ctx: &Context, namespace: &str, name: &str, at: usize) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    let path = format!("/metadata/finalizers/{at}");
    let operations = json!([
        {"op": "test", "path": path, "value": TRACKING_FINALIZER},
        {"op": "remove", "path": path},
    ]);
    let Ok(operations) = serde_json::from_value(operations) else {
        return Ok(());
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    match api.patch(name, &params, &Patch::<()>::Json(operations)).await {
        Ok(_) => {
            info!(%kind, %name, "released (tracking finalizer removed)");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(kube::Error::Api(status)) if matches!(status.code, 409 | 422) => {
            debug!(%kind, %name, message = %status.message, "finalizers changed; the next event releases it");
            Ok(())
        }
        Err(err) => Err(Error::api("patch", kind, namespace, name, err)),
    }
}

/// Releases, in the background, the tracked Pods of run `namespace/run`, which is gone: seen
/// deleted by the JobRun watch, or absent from the filled JobRun cache while its Pod is being
/// deleted. Best effort: a failure is logged, and the Pod's next event tries again.
pub fn release_orphans(ctx: &std::sync::Arc<Context>, namespace: String, run: String, pods: Vec<PodView>) {
    let pods: Vec<PodView> = pods.into_iter().filter(|p| p.tracking.is_some()).collect();
    if pods.is_empty() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        for pod in &pods {
            if let Err(err) = release(&ctx, &namespace, pod).await {
                tracing::warn!(%run, pod = %pod.name, error = %err, "could not release the pod of a deleted run");
            }
        }
    });
}

/// Releases, in the background, the Job of run `namespace/run`, which is gone (as
/// [`release_orphans`] does for Pods).
pub fn release_orphan_job(ctx: &std::sync::Arc<Context>, namespace: String, run: String, job: JobView) {
    if job.tracking.is_none() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(err) = release_job(&ctx, &namespace, &job).await {
            tracing::warn!(%run, job = %job.name, error = %err, "could not release the job of a deleted run");
        }
    });
}
