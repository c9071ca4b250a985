//! The Backfill reconciler: run the fire times of a Schedule's trigger in `[from, to)` as if
//! they had happened, each with the JobRun the Schedule would have created for it.
//!
//! [`reconcile`] is the thin edge (read the caches, call [`decide`], create, write status,
//! publish Events); [`decide`] holds every decision and is pure.
//!
//! A range may hold a million fire times, so nothing here is proportional to the range:
//!
//! - the count (`status.fireTimes`) comes from [`FireTimes::due_between`], exact and
//!   arithmetic for `interval` and `calendarInterval` triggers, a lower bound past the scan
//!   limit for the others (the message then says "at least");
//! - runs are created in batches: at most the pool's limit plus [`BATCH_BUFFER`] of this
//!   Backfill's runs are unfinished at any moment; each batch moves `status.cursor` (the last
//!   fire time handled), and the next batch waits for a run of this Backfill to finish. A
//!   restart carries on after the cursor;
//! - one pass visits at most [`MAX_VISITS_PER_PASS`] fire times, however many of them
//!   already have a JobRun.
//!
//! A fire time whose JobRun name exists already (it ran, or an earlier pass created it) is
//! done: it is never created twice. Backfilled runs have no start deadline (a backfill has no
//! misfire) and no jitter; their admission (`admission.rs`) is a pool of their own, so a
//! backfill never holds up the Schedule's live fire times.

pub mod decide;
mod range;

use std::sync::Arc;

use horolog_core::trigger::Trigger;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, instrument};

use super::error::refusal;
use super::events::Note;
use super::jobrun::CREATE_REFUSED;
use super::schedule::decide::TaskLookup;
use super::schedule::run_name;
use super::{Context, Error, MANAGER, admission, is_already_exists};
use crate::api::{BACKFILL_LABEL, Backfill, BackfillPhase, BackfillStatus, JobRun, Schedule};
use crate::pod::{MAX_NAME_LEN, short_name};

use decide::CACHE_BEHIND_RECHECK;
pub use decide::{BATCH_BUFFER, Decision, Input, MAX_VISITS_PER_PASS, ScheduleLookup, decide};
use range::Range;
pub use range::trigger_origin;

/// The Backfills to wake when `schedule` changed or went away: those that name it and have
/// not completed (a missing Schedule that appears lets a Failed one carry on).
pub fn of_schedule(ctx: &Context, schedule: &Schedule) -> Vec<ObjectRef<Backfill>> {
    let namespace = schedule.namespace().unwrap_or_default();
    backfills_where(ctx, &namespace, |b| b.spec.schedule_name == schedule.name_any())
}

/// The Backfills to wake when `run` changed: the one that created it, and those of its
/// Schedule whose range holds its fire time (a Backfill completes once every run of its
/// range has finished).
pub fn woken_by(ctx: &Context, run: &JobRun) -> Vec<ObjectRef<Backfill>> {
    let Some(schedule) = run.spec.schedule_name.as_deref() else {
        return Vec::new();
    };
    let namespace = run.namespace().unwrap_or_default();
    let label = run.labels().get(BACKFILL_LABEL);
    backfills_where(ctx, &namespace, |b| {
        b.spec.schedule_name == schedule
            && (label == Some(&short_name(&b.name_any(), MAX_NAME_LEN))
                || Range::of(b).contains(run.fire_time()))
    })
}

fn backfills_where(
    ctx: &Context,
    namespace: &str,
    wanted: impl Fn(&Backfill) -> bool,
) -> Vec<ObjectRef<Backfill>> {
    ctx.stores
        .backfills
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace))
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) != Some(BackfillPhase::Complete))
        .filter(|b| wanted(b))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// Reconciles one Backfill: read the caches, decide, create the batch's runs, write status
/// when it changed, publish Events.
#[instrument(skip(backfill, ctx), fields(kind = "Backfill", namespace = %backfill.namespace().unwrap_or_default(), object = %backfill.name_any()))]
pub async fn reconcile(backfill: Arc<Backfill>, ctx: Arc<Context>) -> Result<Action, Error> {
    if backfill.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(backfill.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let old = backfill.status.clone().unwrap_or_default();
    if old.phase == Some(BackfillPhase::Complete) {
        return Ok(Action::await_change());
    }
    let namespace = backfill.namespace().unwrap_or_default();
    let now = ctx.now();
    let schedule = ctx.schedule(&namespace, &backfill.spec.schedule_name);
    let trigger = schedule.as_ref().map(|schedule| {
        let created = schedule.created_at().unwrap_or(now);
        let origin = trigger_origin(&schedule.spec.trigger, created, backfill.spec.from);
        Trigger::compile(&schedule.spec.trigger, origin)
    });
    let task = schedule.as_ref().and_then(|s| {
        s.task_name()
            .map(|name| (name.to_string(), ctx.task(&namespace, name)))
    });
    let task_lookup = match &task {
        None => TaskLookup::NotUsed,
        Some((name, None)) => TaskLookup::Missing(name),
        Some((_, Some(task))) => TaskLookup::Found(task),
    };
    // The fire times after exclusion, as the Schedule runs them, unless the Backfill opts out.
    let found_task = task.as_ref().and_then(|(_, task)| task.as_deref());
    let trigger = match (&schedule, trigger) {
        (Some(schedule), Some(trigger)) if !backfill.spec.ignore_exclusions => {
            Some(trigger.and_then(|trigger| {
                super::calendar::with_calendars(trigger, schedule, found_task, &|name| {
                    ctx.calendar(&namespace, name)
                })
            }))
        }
        (_, trigger) => trigger.map(|t| t.map(Trigger::ignoring_exclusions)),
    };
    let lookup = match (&schedule, &trigger) {
        (Some(schedule), _) if schedule.meta().deletion_timestamp.is_some() => ScheduleLookup::Deleting,
        (Some(schedule), Some(trigger)) => ScheduleLookup::Found {
            schedule,
            trigger: trigger.as_ref(),
            task: task_lookup,
        },
        _ => ScheduleLookup::Missing,
    };
    if let ScheduleLookup::Found { schedule, .. } = lookup
        && !backfill.spec.dry_run
        && runs_cache_behind(&ctx, &backfill, schedule).await?
    {
        return Ok(Action::requeue(CACHE_BEHIND_RECHECK));
    }
    let runs = schedule.as_ref().map(|s| ctx.runs_of(s)).unwrap_or_default();
    let existing = |name: &str| ctx.jobrun(&namespace, name);
    let limit = schedule
        .as_ref()
        .and_then(|s| admission::limit_of(&ctx, s))
        .unwrap_or(1);
    let decision = decide(Input {
        backfill: &backfill,
        schedule: lookup,
        runs: &runs,
        existing: &existing,
        limit,
        scan_limit: ctx.config.catch_up.max_scanned,
        now,
    });
    apply(&backfill, decision, &ctx).await
}

/// True when the JobRun cache has not caught up with this Backfill's last batch: the run of
/// its cursor is neither in the cache nor known deleted, yet the API server has it. A batch
/// decided on such a cache could count too few unfinished runs and go past the bound.
///
/// The one live read of the Backfill reconciler, kept on purpose: the stores alone cannot
/// tell "the watch has not shown my create yet" from "it was deleted before this process
/// started" (the deletion memory is per process), and guessing wrong either overruns the
/// bound or stalls the Backfill. It is one GET, only when the cursor's run is missing from
/// the cache and not known deleted, which is rare: a moment after a batch, or after a restart.
async fn runs_cache_behind(ctx: &Context, backfill: &Backfill, schedule: &Schedule) -> Result<bool, Error> {
    let Some(cursor) = backfill.status.as_ref().and_then(|s| s.cursor) else {
        return Ok(false);
    };
    let namespace = backfill.namespace().unwrap_or_default();
    let name = run_name(&schedule.name_any(), cursor);
    if ctx.jobrun(&namespace, &name).is_some() || ctx.runs.was_deleted(&namespace, &name) {
        return Ok(false);
    }
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.get_opt(&name).await {
        Ok(found) => Ok(found.is_some()),
        Err(err) => Err(Error::api("get", "JobRun", &namespace, &name, err)),
    }
}

/// Carries out a decision: the creates first, then the status that counts them.
async fn apply(backfill: &Backfill, decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let namespace = backfill.namespace().unwrap_or_default();
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    for run in &decision.create {
        match api.create(&params, run).await {
            Ok(_) => {}
            // The cache did not show it: it is behind. Decide again on a newer one; the runs
            // this pass created count then as this Backfill's (by their label).
            Err(err) if is_already_exists(&err) => {
                info!(run = %run.name_any(), "JobRun exists but the cache does not show it yet; looking again");
                return Ok(Action::requeue(CACHE_BEHIND_RECHECK));
            }
            Err(err) => {
                let name = run.name_any();
                let Some(message) = refusal(&err) else {
                    return Err(Error::api("create", "JobRun", &namespace, &name, err));
                };
                // Quota, a webhook, a name or label rule: said in status and a Warning Event,
                // and retried with backoff; the cursor stays, so nothing is skipped.
                let old = backfill.status.clone().unwrap_or_default();
                let text = format!("the API server refused to create JobRun {name}: {message}; retrying");
                let status = BackfillStatus {
                    message: Some(text.clone()),
                    ..old.clone()
                };
                if ctx.status.patch(&ctx.client, backfill, &old, &status).await? {
                    ctx.publish(backfill, Note::warning(CREATE_REFUSED, text)).await;
                }
                return Err(Error::Refused {
                    kind: "JobRun".into(),
                    namespace,
                    name,
                    message,
                    retry_by: None,
                });
            }
        }
    }
    let old = backfill.status.clone().unwrap_or_default();
    let written = ctx
        .status
        .patch(&ctx.client, backfill, &old, &decision.status)
        .await?;
    if written {
        for note in decision.events {
            ctx.publish(backfill, note).await;
        }
    }
    Ok(Action::await_change())
}
