//! The JobRun reconciler: start a run when admission lets it (one-off runs, runs that waited,
//! retries), follow its Pod into its status, cancel it when asked or replaced, and delete it
//! `resultTTL` after it finished.
//!
//! [`reconcile`] is the thin edge: read the caches, ask admission, call
//! [`decide`](decide::decide), carry the decision out.

pub mod decide;
mod follow;
mod job;
mod queued;

use std::sync::Arc;

use horolog_core::admission::Verdict;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument};

use super::attempt::{self, Started};
use super::events::Note;
use super::{Context, Error, admission, tracking};
use crate::api::{BACKFILL_LABEL, JobRun, JobRunPhase, JobRunStatus, RUN_NOW_ANNOTATION};
use decide::{Act, Decision, Input};

/// How long a Pod must have run before its run is reported Running: a run that ends sooner
/// goes from Pending to its outcome in one status write.
pub const RUNNING_REPORT_DELAY: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Reconciles one JobRun.
#[instrument(skip(run, ctx), fields(jobrun = %run.name_any(), namespace = %run.namespace().unwrap_or_default(), schedule = run.spec.schedule_name.as_deref().unwrap_or("")))]
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
    if run.is_finished() {
        ctx.slots.release(&run);
    }
    let pods = ctx.pods.of_run(&namespace, &run.name_any());
    let job = ctx.jobs.of_run(&namespace, &run.name_any());
    let started = pods.values().next_back().is_some()
        || job.is_some()
        || ctx.jobs.was_deleted(&namespace, &run.name_any())
        || run.status.as_ref().is_some_and(|s| s.pod_name.is_some())
        || ctx.pods.deleted_attempt(&namespace, &run.name_any()).is_some();
    if !started && !run.is_finished() && still_being_planned(&ctx, &run) {
        // Its Schedule's pass has not written its status yet: the pass starts it (with every
        // run the pass creates in view), or the status write wakes it.
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
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
    let decision = decide::decide(Input {
        run: &run,
        pods: &pods,
        verdict: verdict.as_ref(),
        pool,
        task_missing,
        deleted_attempt: ctx.pods.deleted_attempt(&namespace, &run.name_any()),
        executor: attempt::executor_of(&ctx, &run),
        job: job.as_ref(),
        job_deleted: ctx.jobs.was_deleted(&namespace, &run.name_any()),
        may_expire: may_expire(&ctx, &run),
        now,
        running_report_delay: ctx.config.running_report_delay,
    });
    if verdict == Some(Verdict::Start) && !decision.acts.iter().any(|a| matches!(a, Act::Start(_))) {
        ctx.slots.release(&run);
    }
    apply(&run, decision, &ctx).await
}

/// Carries out a decision.
async fn apply(run: &JobRun, mut decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let old = run.status.clone().unwrap_or_default();
    for act in std::mem::take(&mut decision.acts) {
        match act {
            Act::Start(attempt) => start(ctx, run, attempt, &old, &mut decision).await?,
            Act::DeletePod(pod, grace) => {
                info!(%pod, grace = ?grace, "deleting the run's pod");
                let params = match grace {
                    Some(seconds) => DeleteParams::background().grace_period(seconds as u32),
                    None => DeleteParams::background(),
                };
                ctx.delete::<Pod>(&namespace, &pod, &params).await?;
            }
            Act::DeleteJob(job, grace) => {
                info!(%job, grace = ?grace, "deleting the run's job and its pods");
                let mut params = DeleteParams::foreground();
                if let Some(seconds) = grace {
                    params = params.grace_period(seconds as u32);
                }
                ctx.delete::<Job>(&namespace, &job, &params).await?;
            }
            Act::DeleteSelf => {
                tracking::release_run(ctx, run, &old, true).await?;
                info!("deleting JobRun: resultTTL passed");
                ctx.delete_run(&namespace, &run.name_any()).await?;
                return Ok(Action::await_change());
            }
        }
    }
    if let Some(status) = &decision.status {
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
    Ok(match decision.requeue {
        Some(at) => Action::requeue((at - ctx.now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// Starts `attempt`; what stops it (a rejected template, a missing Task) becomes the status
/// the decision writes.
async fn start(
    ctx: &Context,
    run: &JobRun,
    attempt: i32,
    old: &JobRunStatus,
    decision: &mut Decision,
) -> Result<(), Error> {
    let started = attempt::start(ctx, run, attempt).await;
    if !matches!(started, Ok(Started::Created(_) | Started::Existed(_))) {
        ctx.slots.release(run);
    }
    match started? {
        Started::Created(pod) => decision.events.push(Note::normal(
            "PodCreated",
            format!("created pod {pod} (attempt {attempt})"),
        )),
        Started::Existed(_) => {}
        Started::Refused { reason, message } => {
            let failed = decide::finish(old, None, JobRunPhase::Failed, reason, message.clone(), ctx.now());
            decision.status = failed.status;
            decision.events.push(Note::warning("Failed", message));
        }
        Started::TaskMissing(task) => {
            decision.status = Some(JobRunStatus {
                phase: Some(JobRunPhase::Pending),
                reason: Some("TaskNotFound".into()),
                message: Some(format!(
                    "spec.taskRef.name: Task {task:?} does not exist; the run starts when it does"
                )),
                ..old.clone()
            });
        }
    }
    Ok(())
}

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

/// True while the Schedule pass that created `run` has not written its status: the run's fire
/// time is past the Schedule's cursor (or its run-now value is not recorded yet). Deciding
/// about it now would see only part of what that pass creates (during a catch-up, an older
/// run could take the slot the newest one is due).
fn still_being_planned(ctx: &Context, run: &JobRun) -> bool {
    let made_by_schedule = run.owner_references().iter().any(|o| o.kind == "Schedule");
    if run.is_backfill() || !made_by_schedule {
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
            .backfill(&namespace, backfill)
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
