//! The JobRun reconciler: start a run when admission lets it (one-off runs, runs that waited,
//! retries), follow its Pod into its status, cancel it when asked or replaced, and delete it
//! `resultTTL` after it finished.
//!
//! [`reconcile`] is the thin edge: read the caches, ask admission, call
//! [`decide`](decide::decide), carry the decision out (`apply`), including the slot it gives
//! back ([`Act::ReleaseSlot`]).

pub mod decide;
pub mod decision;
mod follow;
mod job;
mod queued;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument};

use super::attempt::{self, Started};
use super::{Context, Error, admission, tracking};
use crate::api::{BACKFILL_LABEL, JobRun, JobRunStatus, RUN_NOW_ANNOTATION, SCHEDULE_LABEL};
use decide::{Act, Decision, Input};

/// How long a Pod must have run before its run is reported Running: a run that ends sooner
/// goes from Pending to its outcome in one status write.
pub const RUNNING_REPORT_DELAY: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Reconciles one JobRun.
#[instrument(skip(run, ctx), fields(kind = "JobRun", namespace = %run.namespace().unwrap_or_default(), object = %run.name_any(), fire_time = %run.fire_time().to_rfc3339(), schedule = run.spec.schedule_name.as_deref().unwrap_or("")))]
pub async fn reconcile(run: Arc<JobRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    if run.meta().deletion_timestamp.is_some() {
        // Being deleted: its Pods go with it, and must not hang on their tracking finalizer.
        let status = run.status.clone().unwrap_or_default();
        tracking::release_run(&ctx, &run, &status, true).await?;
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(run.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let namespace = run.namespace().unwrap_or_default();
    let now = ctx.now();
    let job = ctx.jobs.of_run(&run);
    // A Job's Pods are the Job's (its controller), not the run's.
    let pods = match &job {
        Some(job) => ctx.pods.of_owner(&job.uid),
        None => ctx.pods.of_run(&run),
    };
    let deleted_attempt = ctx.pods.deleted_attempt(&run);
    let job_deleted = ctx.jobs.was_deleted(&run);
    // Started: it holds its slot, or its Pod (or Job) was deleted after it started.
    let started = admission::holds_slot(&ctx, &run) || job_deleted || deleted_attempt.is_some();
    if !started && !run.is_finished() && still_being_planned(&ctx, &run) {
        // Its Schedule's pass has not written its status yet: the pass starts it (with every
        // run the pass creates in view), or the status write wakes it. A run staged ahead of
        // its fire time waits for the pass at that time.
        let ahead = (run.fire_time() - now).to_std().unwrap_or_default();
        return Ok(Action::requeue(ahead + super::BEHIND_OWN_WRITE_RECHECK));
    }
    let verdict = (!run.is_finished() && run.cancel_requested().is_none())
        .then(|| admission::verdict(&ctx, &run, &[], now, !started));
    let task_missing = run
        .task_name()
        .filter(|task| ctx.task(&namespace, task).is_none());
    let pool = ctx.schedule_of(&run).map(|schedule| {
        let task = schedule.task_name().and_then(|t| ctx.task(&namespace, t));
        (
            admission::policy_of(&schedule, task.as_deref()),
            admission::limit_of(&ctx, &schedule),
        )
    });
    let orphaned = (!run.is_finished()).then(|| orphaned(&ctx, &run)).flatten();
    let decision = decide::decide(Input {
        run: &run,
        pods: &pods,
        verdict: verdict.as_ref(),
        pool,
        task_missing,
        orphaned: orphaned
            .as_ref()
            .map(|(reason, message)| (*reason, message.as_str())),
        deleted_attempt,
        executor: attempt::executor_of(&ctx, &run),
        job: job.as_ref(),
        job_deleted,
        may_expire: may_expire(&ctx, &run),
        now,
        running_report_delay: ctx.config.running_report_delay,
    });
    apply(&run, decision, &ctx).await
}

/// Carries out a decision.
async fn apply(run: &JobRun, mut decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let old = run.status.clone().unwrap_or_default();
    let mut refused = None;
    for act in std::mem::take(&mut decision.acts) {
        match act {
            Act::ReleaseSlot => ctx.slots.release(run),
            Act::Start(attempt) => refused = start(ctx, run, attempt, &old, &mut decision).await?,
            Act::DeletePod(pod, grace) => {
                let known = ctx.pods.of_run(run).into_values().find(|p| p.name == pod);
                let Some(uid) = owned_uid::<Pod>(ctx, run, &pod, known.map(|p| p.uid)).await? else {
                    continue;
                };
                info!(%pod, grace = ?grace, "deleting the run's pod");
                let params = match grace {
                    Some(seconds) => DeleteParams::background().grace_period(seconds as u32),
                    None => DeleteParams::background(),
                };
                ctx.delete::<Pod>(&namespace, &pod, &uid, &params).await?;
            }
            Act::DeleteJob(job, grace) => {
                let known = ctx.jobs.of_run(run).filter(|j| j.name == job).map(|j| j.uid);
                let Some(uid) = owned_uid::<Job>(ctx, run, &job, known).await? else {
                    continue;
                };
                info!(%job, grace = ?grace, "deleting the run's job and its pods");
                let mut params = DeleteParams::foreground();
                if let Some(seconds) = grace {
                    params = params.grace_period(seconds as u32);
                }
                ctx.delete::<Job>(&namespace, &job, &uid, &params).await?;
            }
            Act::DeleteSelf => {
                tracking::release_run(ctx, run, &old, true).await?;
                info!("deleting JobRun: resultTTL passed");
                ctx.delete_run(&namespace, &run.name_any()).await?;
                return Ok(Action::await_change());
            }
        }
    }
    if let Some(status) = &mut decision.status {
        // Every condition says which generation it was computed from (kstatus).
        for condition in &mut status.conditions {
            condition.observed_generation = condition.observed_generation.or(run.metadata.generation);
        }
        ctx.status.patch(&ctx.client, run, &old, status).await?;
        if old.phase != status.phase {
            finished(ctx, run, status);
        }
    }
    // Only once the status holding a Pod's outcome is written may the Pod go.
    tracking::release_run(ctx, run, decision.status.as_ref().unwrap_or(&old), false).await?;
    for note in decision.events {
        ctx.publish(run, note).await;
    }
    if let Some(err) = refused {
        // On status and in an Event already: the error only makes the retry back off.
        return Err(err);
    }
    Ok(match decision.requeue {
        Some(at) => Action::requeue((at - ctx.now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// The uid of `run`'s Pod or Job `name`, which the delete carries as its precondition: the
/// one the index learnt from the watch, else the one the API server shows, if that object's
/// controller is `run` (`None`: it is gone, or not the run's, and is left alone).
async fn owned_uid<K>(
    ctx: &Context,
    run: &JobRun,
    name: &str,
    known: Option<String>,
) -> Result<Option<String>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if let Some(uid) = known.filter(|uid| !uid.is_empty()) {
        return Ok(Some(uid));
    }
    let namespace = run.namespace().unwrap_or_default();
    let api: kube::Api<K> = kube::Api::namespaced(ctx.client.clone(), &namespace);
    let found = api
        .get_opt(name)
        .await
        .map_err(|err| Error::api("get", K::kind(&()).to_string(), &namespace, name, err))?;
    Ok(found
        .filter(|o| super::index::controller_uid(o) == run.uid())
        .and_then(|o| o.uid()))
}

/// Starts `attempt` and hands what the API server answered to the decision
/// ([`decision::answered`]), which says the status to write. A refused create also returns the
/// error that makes the reconcile retry with backoff, once that status is written.
async fn start(
    ctx: &Context,
    run: &JobRun,
    attempt: i32,
    old: &JobRunStatus,
    decision: &mut Decision,
) -> Result<Option<Error>, Error> {
    let started = attempt::start(ctx, run, attempt).await;
    if !matches!(started, Ok(Started::Created(_) | Started::Existed(_))) {
        ctx.slots.release(run);
    }
    let answer = started?;
    *decision = decision::answered(run, old, attempt, &answer, std::mem::take(decision), ctx.now());
    Ok(match answer {
        Started::CreateRefused { kind, name, message } => Some(Error::Refused {
            kind,
            namespace: run.namespace().unwrap_or_default(),
            name,
            message,
            retry_by: run
                .spec
                .start_deadline
                .map(|d| d + chrono::TimeDelta::milliseconds(1)),
        }),
        _ => None,
    })
}

pub use decision::CREATE_REFUSED;

/// A run that has just reached a final phase gives its slots back and is counted.
fn finished(ctx: &Context, run: &JobRun, status: &JobRunStatus) {
    let phase = status.phase.unwrap_or_default();
    if !phase.is_finished() {
        return;
    }
    ctx.slots.release(run);
    info!(fire_time = %run.fire_time(), phase = phase.as_str(), reason = ?status.reason, "finished");
    if let Some(observer) = ctx.observer() {
        let duration = status.start_time.zip(status.completion_time).map(|(s, c)| c - s);
        let namespace = run.namespace().unwrap_or_default();
        observer.finished(
            &namespace,
            run.spec.schedule_name.as_deref(),
            phase.as_str(),
            duration,
        );
    }
}

/// Why `run` must never start, if it must not: the Schedule that created it is deleted (gone
/// from the cache, or there under the same name with another uid: created again) or being
/// deleted, or, for a run a Schedule made with a Task, that Task is. A run with no Schedule
/// owner (one-off, or orphaned by `--cascade=orphan`) counts as made by the Schedule that
/// `horolog.dev/schedule` and `spec.scheduleName` name when it carries that label.
fn orphaned(ctx: &Context, run: &JobRun) -> Option<(&'static str, String)> {
    let namespace = run.namespace().unwrap_or_default();
    let owners: Vec<_> = run
        .owner_references()
        .iter()
        .filter(|o| o.kind == "Schedule")
        .collect();
    let name = match owners.first() {
        Some(owner) => owner.name.as_str(),
        None if run.labels().contains_key(SCHEDULE_LABEL) => run.spec.schedule_name.as_deref()?,
        None => return None,
    };
    let deleted = || {
        Some((
            "ScheduleDeleted",
            format!("Schedule {name} was deleted before this run started; it never starts"),
        ))
    };
    let Some(schedule) = ctx.schedule(&namespace, name) else {
        return deleted();
    };
    let same = if owners.is_empty() {
        !super::context::created_after(schedule.as_ref(), run)
    } else {
        owners.iter().any(|o| Some(&o.uid) == schedule.uid().as_ref())
    };
    if !same {
        return deleted();
    }
    if schedule.meta().deletion_timestamp.is_some() {
        return Some((
            "ScheduleDeleted",
            format!("Schedule {name} is being deleted; this run never starts"),
        ));
    }
    let task = run.task_name()?;
    match ctx.task(&namespace, task) {
        Some(found) if found.meta().deletion_timestamp.is_none() => None,
        _ => Some((
            "TaskDeleted",
            format!("Task {task} was deleted before this run started; it never starts"),
        )),
    }
}

/// (This and [`may_expire`] read the Schedule's status, from the store: it is the Schedule
/// reconciler's record of what it planned and counted, and a run must neither start before the
/// pass that made it is recorded nor go before it is counted. Carrying those facts on each
/// JobRun instead would cost a write per run.)
///
/// True while the Schedule pass that created `run` has not written its status: the run's fire
/// time is past the Schedule's cursor (or its run-now value is not recorded yet). Deciding
/// about it now would see only part of what that pass creates (during a catch-up, an older
/// run could take the slot the newest one is due).
fn still_being_planned(ctx: &Context, run: &JobRun) -> bool {
    let made_by_schedule = run.owner_references().iter().any(|o| o.kind == "Schedule");
    // A cancel needs no plan: the run ends Cancelled at once (a staged run too), and the pass
    // at its fire time counts it as that fire time's outcome.
    if run.is_backfill() || !made_by_schedule || run.cancel_requested().is_some() {
        return false;
    }
    let Some(schedule) = ctx.schedule_of(run) else {
        return false;
    };
    let status = schedule.status.clone().unwrap_or_default();
    match run.annotations().get(RUN_NOW_ANNOTATION) {
        Some(value) => status.last_run_now.as_ref() != Some(value),
        None => status.cursor.is_none_or(|cursor| run.fire_time() > cursor),
    }
}

/// True when a finished run may be deleted by its resultTTL: whoever counts it has done so,
/// and whoever plans its fire time has moved past it (deleting it earlier would let the fire
/// time run again, or go uncounted).
fn may_expire(ctx: &Context, run: &JobRun) -> bool {
    let namespace = run.namespace().unwrap_or_default();
    if let Some(backfill) = run.labels().get(BACKFILL_LABEL) {
        return ctx
            .backfill_labelled(&namespace, backfill)
            .and_then(|b| b.status.clone())
            .is_none_or(|status| status.cursor.is_some_and(|cursor| cursor >= run.fire_time()));
    }
    let Some(schedule) = ctx.schedule_of(run) else {
        return true;
    };
    let status = schedule.status.clone().unwrap_or_default();
    let name = run.name_any();
    let listed = status.active.iter().any(|a| a.name == name);
    let covered = run.annotations().contains_key(RUN_NOW_ANNOTATION)
        || status.cursor.is_some_and(|cursor| run.fire_time() <= cursor);
    !listed && covered
}
