//! Starting an attempt of a JobRun: its Pod, built from its own template or its Task's, in one
//! place for both callers (the Schedule reconciler starting a run it has just created, and the
//! JobRun reconciler starting one that waited, a one-off run, or a retry).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tracing::info;

use super::index::PodView;
use super::{Context, Error, MANAGER, is_already_exists};
use crate::api::{Executor, JobRun};
use crate::job::job_for;
use crate::pod::{PodReport, pod_for, template_of};

/// How a start went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Started {
    /// The Pod was created.
    Created(String),
    /// It existed already (an earlier reconcile, or another replica before a failover).
    Existed(String),
    /// It cannot be created: the run fails with this reason and message (a template the API
    /// server rejects, or no template at all).
    Refused {
        /// One CamelCase word.
        reason: &'static str,
        /// For people, naming the field.
        message: String,
    },
    /// The run's Task does not exist (yet): the run waits for it.
    TaskMissing(String),
}

/// Creates the Pod of attempt `attempt` (1-based) of `run` and records it in the Pod index.
pub async fn start(ctx: &Context, run: &JobRun, attempt: i32) -> Result<Started, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let task = match run.task_name() {
        Some(name) => match ctx.task(&namespace, name) {
            Some(task) => Some(task),
            None => return Ok(Started::TaskMissing(name.to_string())),
        },
        None => None,
    };
    let executor = executor_of(ctx, run);
    if executor == Executor::Job && !ctx.config.job_executor {
        return Ok(Started::Refused {
            reason: "ExecutorUnavailable",
            message:
                "spec.executor: Job: the operator runs without --job-executor (Helm: jobExecutor.enabled)"
                    .to_string(),
        });
    }
    let Some(template) = template_of(run, task.as_ref().map(|t| &t.spec)) else {
        return Ok(Started::Refused {
            reason: "NoTemplate",
            message: "spec.template: absent, and no Task provides one (set spec.template or spec.taskRef)"
                .to_string(),
        });
    };
    if executor == Executor::Job {
        return start_job(ctx, run, &template, attempt).await;
    }
    let pod = pod_for(run, &template, attempt)?;
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    let started = match api.create(&params, &pod).await {
        Ok(_) => Started::Created(name.clone()),
        Err(err) if is_already_exists(&err) => Started::Existed(name.clone()),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422) => {
            return Ok(Started::Refused {
                reason: "InvalidPodTemplate",
                message: format!(
                    "spec.template: the API server rejected pod {name}: {}",
                    status.message
                ),
            });
        }
        Err(err) => return Err(Error::api("create", "Pod", &namespace, &name, err)),
    };
    ctx.pods.created(
        &namespace,
        &run.name_any(),
        PodView {
            name: name.clone(),
            attempt,
            report: PodReport::default(),
            deleting: false,
        },
    );
    if let Started::Created(_) = &started {
        info!(run = %run.name_any(), fire_time = %run.fire_time(), pod = %name, attempt, "pod created");
        if attempt == 1
            && let Some(observer) = ctx.observer()
        {
            observer.pod_created(ctx.now() - run.not_before());
        }
    }
    Ok(started)
}

/// Creates the batch/v1 Job of `run` (the `Job` executor) and records it in the Job index.
async fn start_job(
    ctx: &Context,
    run: &JobRun,
    template: &PodTemplateSpec,
    attempt: i32,
) -> Result<Started, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let job = job_for(run, template, attempt)?;
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    let started = match api.create(&params, &job).await {
        Ok(_) => Started::Created(name.clone()),
        Err(err) if is_already_exists(&err) => Started::Existed(name.clone()),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422) => {
            return Ok(Started::Refused {
                reason: "InvalidPodTemplate",
                message: format!(
                    "spec.template: the API server rejected job {name}: {}",
                    status.message
                ),
            });
        }
        Err(err) => return Err(Error::api("create", "Job", &namespace, &name, err)),
    };
    ctx.jobs.created(&namespace, &run.name_any(), &name);
    if let Started::Created(_) = &started {
        info!(run = %run.name_any(), fire_time = %run.fire_time(), job = %name, "job created");
        if let Some(observer) = ctx.observer() {
            observer.pod_created(ctx.now() - run.not_before());
        }
    }
    Ok(started)
}

/// The executor of `run`: its own, else its Task's, else the operator's default.
pub fn executor_of(ctx: &Context, run: &JobRun) -> Executor {
    let namespace = run.namespace().unwrap_or_default();
    run.spec.run.executor.unwrap_or_else(|| {
        run.task_name()
            .and_then(|task| ctx.task(&namespace, task))
            .and_then(|task| task.spec.job_template.spec.executor)
            .unwrap_or(ctx.config.defaults.executor)
    })
}
