//! Starting an attempt of a JobRun: its Pod, built from its own template or its Task's, in one
//! place for both callers (the Schedule reconciler starting a run it has just created, and the
//! JobRun reconciler starting one that waited, a one-off run, or a retry).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::PostParams;
use kube::core::NamespaceResourceScope;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    /// The API server refused the create with 403: a ResourceQuota (`exceeded quota`), an
    /// admission webhook or policy. Nothing is wrong with the template itself, so the run
    /// stays Pending (reason `CreateRefused`) and is retried with backoff until its start
    /// deadline.
    CreateRefused {
        /// The kind of the object, `Pod` or `Job`.
        kind: String,
        /// Its name.
        name: String,
        /// The server's message.
        message: String,
    },
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
    let started = create(ctx, &namespace, &pod).await?;
    if let Started::Refused { .. } | Started::CreateRefused { .. } = started {
        return Ok(started);
    }
    ctx.pods.created(
        run,
        PodView {
            name: name.clone(),
            uid: String::new(),
            attempt,
            report: PodReport::default(),
            deleting: false,
            deleted_at: None,
            tracking: Some(0),
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
    let started = create(ctx, &namespace, &job).await?;
    if let Started::Refused { .. } | Started::CreateRefused { .. } = started {
        return Ok(started);
    }
    ctx.jobs.created(run, &name);
    if let Started::Created(_) = &started {
        info!(run = %run.name_any(), fire_time = %run.fire_time(), job = %name, "job created");
        if let Some(observer) = ctx.observer() {
            observer.pod_created(ctx.now() - run.not_before());
        }
    }
    Ok(started)
}

/// Creates a run's Pod or Job: Created, Existed (an earlier reconcile or replica made it),
/// Refused when the API server rejects the template as invalid (400, 422: the run then
/// fails, naming it), or CreateRefused when it forbids the create (403: a ResourceQuota, an
/// admission webhook or policy, which may change: the run waits and is retried).
async fn create<K>(ctx: &Context, namespace: &str, object: &K) -> Result<Started, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = object.name_any();
    let kind = K::kind(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(Started::Created(name)),
        Err(err) if is_already_exists(&err) => existing(&api, namespace, object, err).await,
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Started::CreateRefused {
            kind: kind.to_string(),
            name,
            message: status.message,
        }),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 422) => Ok(Started::Refused {
            reason: "InvalidPodTemplate",
            message: format!(
                "spec.template: the API server rejected {} {name}: {}",
                kind.to_lowercase(),
                status.message
            ),
        }),
        Err(err) => Err(Error::api("create", kind.to_string(), namespace, &name, err)),
    }
}

/// The create of `object` found one of its name: it is the run's (an earlier reconcile or
/// replica made it: Existed) only when its controller ownerReference names the same uid as
/// `object`'s (the run's). One left by an earlier JobRun of the same name, deleted and
/// created again, is waited for (a Conflict, retried: garbage collection removes it within
/// seconds). Anything else is not the operator's to adopt or delete: the run fails with
/// NameConflict, and the object is left alone.
async fn existing<K>(api: &Api<K>, namespace: &str, object: &K, err: kube::Error) -> Result<Started, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let name = object.name_any();
    let kind = K::kind(&()).to_string();
    let found = match api.get_opt(&name).await {
        Ok(Some(found)) => found,
        // Gone since: create it on the retry.
        Ok(None) => return Err(Error::api("create", kind, namespace, &name, err)),
        Err(get) => return Err(Error::api("get", kind, namespace, &name, get)),
    };
    let controller = |o: &K| {
        o.owner_references()
            .iter()
            .find(|r| r.controller == Some(true))
            .cloned()
    };
    let (ours, theirs) = (controller(object), controller(&found));
    match (&ours, &theirs) {
        (Some(ours), Some(theirs)) if ours.uid == theirs.uid => Ok(Started::Existed(name)),
        (Some(ours), Some(theirs)) if ours.kind == theirs.kind && ours.name == theirs.name => {
            info!(%name, old = %theirs.uid, "the name is still taken by the previous run of this name; waiting for it to go");
            Err(Error::api("create", kind, namespace, &name, err))
        }
        _ => {
            let owner = match &theirs {
                Some(o) => format!("it is controlled by {} {}", o.kind, o.name),
                None => "it has no controller".to_string(),
            };
            Ok(Started::Refused {
                reason: "NameConflict",
                message: format!(
                    "{} {name} already exists and is not this run's ({owner}); it is left alone: delete or rename it, then create the run again",
                    kind.to_lowercase()
                ),
            })
        }
    }
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
