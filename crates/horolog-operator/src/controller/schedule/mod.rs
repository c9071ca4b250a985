//! The Schedule reconciler: plan the due fire times, create their JobRuns (and at once the
//! Pods of those that may start), settle finished runs, keep the history short, and write
//! what happened to status and Events.
//!
//! [`reconcile`] is the thin edge (read the caches, call [`decide`](decide::decide), write,
//! requeue); `decide.rs` holds every decision, `settle.rs` the counting of finished runs.

pub mod decide;
mod edit;
mod fire;
pub mod pass;
mod ready;
pub mod settle;
pub mod stage;
mod staged;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use futures::StreamExt;
use horolog_core::admission::Verdict;
use horolog_core::trigger::Trigger;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::attempt::{self, Started};
use super::error::refusal;
use super::events::Note;
use super::jobrun::CREATE_REFUSED;
use super::{Context, Error, MANAGER, admission, is_already_exists};
use crate::api::{JobRun, RUN_NOW_ANNOTATION, Schedule};
use decide::{Decision, Input, Settings, TaskLookup, Write};

pub use decide::{READY, UPCOMING};

pub use crate::names::{run_name, run_now_name, trigger_hash};

/// Reconciles one Schedule: read the caches, decide, create runs (and the Pods of those that
/// may start), write status when it changed, delete history, publish Events, requeue.
#[instrument(skip(schedule, ctx), fields(kind = "Schedule", namespace = %schedule.namespace().unwrap_or_default(), object = %schedule.name_any()))]
pub async fn reconcile(schedule: Arc<Schedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    if schedule.meta().deletion_timestamp.is_some() {
        // Garbage collection removes the runs with their owner.
        ctx.forget(&schedule.namespace().unwrap_or_default(), &schedule.name_any());
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(schedule.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let namespace = schedule.namespace().unwrap_or_default();
    let now = ctx.now();
    let created = schedule.created_at().unwrap_or(now);
    let trigger = Trigger::compile(&schedule.spec.trigger, created);
    let runs = ctx.runs_of(&schedule);
    let task = schedule
        .task_name()
        .map(|name| (name, ctx.task(&namespace, name)));
    let task_lookup = match &task {
        None => TaskLookup::NotUsed,
        Some((name, None)) => TaskLookup::Missing(name),
        Some((_, Some(task))) => TaskLookup::Found(task),
    };
    // Its Calendars and its Task's, applied to the trigger; a missing one stops firing.
    let found_task = task.as_ref().and_then(|(_, task)| task.as_deref());
    let calendar = |name: &str| ctx.calendar(&namespace, name);
    let trigger = trigger
        .and_then(|trigger| super::calendar::with_calendars(trigger, &schedule, found_task, &calendar));
    let calendars_changed_at = super::calendar::calendars_changed_at(&schedule, found_task, &calendar);
    let first_pass = ctx.first_pass(&schedule);
    let active = schedule
        .status
        .as_ref()
        .map(|s| s.active.clone())
        .unwrap_or_default();
    let gone: HashSet<String> = active
        .iter()
        .filter(|a| !runs.iter().any(|r| r.name_any() == a.name))
        .filter(|a| first_pass || ctx.runs.was_deleted(&namespace, &a.name))
        .map(|a| a.name.clone())
        .collect();
    let settings = Settings {
        catch_up: ctx.config.catch_up,
        default_grace: ctx.config.defaults.misfire_grace_time.map(|d| d.as_chrono()),
        status_delay: TimeDelta::from_std(ctx.config.status_delay).unwrap_or_default(),
        stage_ahead: TimeDelta::from_std(ctx.config.stage_ahead).unwrap_or_default(),
    };
    // Runs staged ahead of a fire time that has come, not started: the pass decides that fire
    // time as if nothing were staged (see `decide_staged`).
    let (due, runs) = staged::due(&ctx, &schedule, runs, now);
    let input = Input {
        schedule: &schedule,
        trigger: trigger.as_ref(),
        runs: &runs,
        gone: &gone,
        task: task_lookup,
        now,
        interrupted: first_pass || ctx.retries.recovering(&super::status::key_of(schedule.as_ref())),
        settings: &settings,
        calendars_changed_at,
    };
    let decision = decide::decide_staged(input, &due);
    apply(&schedule, decision, &ctx).await
}

/// Carries out a decision.
async fn apply(schedule: &Schedule, mut decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    let mut created: Vec<Arc<JobRun>> = Vec::new();
    let mut taken = None;
    for run in std::mem::take(&mut decision.create) {
        let run = &run;
        match api.create(&params, run).await {
            Ok(stored) => created.push(Arc::new(stored)),
            // The name is derived from the fire time: it exists, so this fire time was handled,
            // if this Schedule made it (see [`holder`]).
            Err(err) if is_already_exists(&err) => {
                match holder(ctx, &api, schedule, &run.name_any()).await? {
                    Holder::This => {}
                    Holder::Older => {
                        taken = Some(Error::api("create", "JobRun", &namespace, &run.name_any(), err));
                    }
                    Holder::Foreign(owner) => not_ours(&mut decision, run, &owner),
                }
            }
            Err(err) => {
                let name = run.name_any();
                return match refusal(&err) {
                    Some(message) => Err(refused(ctx, schedule, &name, message).await?),
                    None => Err(Error::api("create", "JobRun", &namespace, &name, err)),
                };
            }
        }
    }
    // Runs found created (staged ahead, or by a pass whose write was lost) start with the new
    // ones, before the status write: the Pod is the first write of the fire instant.
    let mut starting = created.clone();
    starting.extend(
        decision
            .start
            .iter()
            .filter_map(|name| ctx.jobrun(&namespace, name)),
    );
    start_created(ctx, &starting).await;
    if let Some(run) = decision.stage.take() {
        staged::create(&api, &params, run).await;
    }
    if let Some(err) = taken {
        // Not this Schedule's run: write nothing (the cursor stays before its fire time) and
        // plan again once garbage collection has removed it.
        info!(error = %err, "a JobRun of a deleted Schedule of the same name holds a run's name; planning again");
        return Err(err);
    }

    // Before the status write that counts their fire times as the plan says: a staged run
    // still there after it would be started as covered by the cursor.
    staged::unstage(ctx, schedule, std::mem::take(&mut decision.unstage)).await?;
    let old = schedule.status.clone().unwrap_or_default();
    let written = match decision.write {
        Write::Now => {
            ctx.status
                .patch(&ctx.client, schedule, &old, &decision.status)
                .await?
        }
        Write::Nothing | Write::At(_) => false,
    };
    if written || decision.write == Write::Nothing {
        for run_name in &decision.delete {
            info!(run = %run_name, "deleting JobRun beyond the history limit");
            ctx.delete_run(&namespace, run_name).await?;
        }
    }
    if !created.is_empty() {
        let names: Vec<String> = created.iter().map(|r| r.name_any()).collect();
        let message = match names.as_slice() {
            [one] => format!("created JobRun {one}"),
            [first, .., last] => format!("created {} JobRuns, {first} to {last}", names.len()),
            [] => String::new(),
        };
        ctx.publish(schedule, Note::normal("Fired", message)).await;
    }
    // A staged run fires in the pass that reaches its fire time and starts it.
    observe(ctx, schedule, &decision, created.len() + decision.start.len());
    if written {
        for note in decision.events {
            ctx.publish(schedule, note).await;
        }
    }
    if decision.delete_schedule {
        info!("ttlSecondsAfterFinished passed: deleting the Schedule and, by owner, its JobRuns");
        let uid = schedule.uid().unwrap_or_default();
        ctx.delete::<Schedule>(
            &namespace,
            &schedule.name_any(),
            &uid,
            &DeleteParams::background(),
        )
        .await?;
        return Ok(Action::await_change());
    }
    Ok(match decision.requeue {
        Some(at) => Action::requeue((at - ctx.now()).to_std().unwrap_or_default()),
        None => Action::await_change(),
    })
}

/// The API server refused to create the JobRun `name` (quota, webhook, a name or label rule):
/// Ready=False with reason `CreateRefused` and a Warning Event with the server's message, then
/// the error that retries with backoff. Nothing else of the pass is written: its cursor does
/// not move, so the next pass plans the same fire times again (the runs it created before the
/// refusal answer AlreadyExists then), and a fire time whose start deadline passes meanwhile
/// is counted missed. The next pass that goes through sets Ready back to True.
async fn refused(ctx: &Context, schedule: &Schedule, name: &str, message: String) -> Result<Error, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let old = schedule.status.clone().unwrap_or_default();
    let text = format!("the API server refused to create JobRun {name}: {message}; retrying");
    let mut status = old.clone();
    ready::refused(&mut status, text.clone(), schedule.metadata.generation, ctx.now());
    let written = ctx.status.patch(&ctx.client, schedule, &old, &status).await?;
    if written {
        ctx.publish(schedule, Note::warning(CREATE_REFUSED, text)).await;
    }
    Ok(Error::Refused {
        kind: "JobRun".into(),
        namespace,
        name: name.to_string(),
        message,
        retry_by: None,
    })
}

/// Whose JobRun of a name this Schedule's pass wanted to create, which exists.
enum Holder {
    /// This Schedule's (its controller ownerReference names this uid): an earlier pass made it.
    This,
    /// Another Schedule's of this name (deleted, its runs not yet collected): wait for it.
    Older,
    /// Anyone else's: no controller (orphaned by `--cascade=orphan` from a deleted Schedule of
    /// this name, or made by hand), or a controller of another kind; never collected. Said
    /// how, for the Event.
    Foreign(String),
}

/// Who holds JobRun `name`, which exists.
async fn holder(ctx: &Context, api: &Api<JobRun>, schedule: &Schedule, name: &str) -> Result<Holder, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let existing = match ctx.jobrun(&namespace, name) {
        Some(cached) => Some(cached.as_ref().clone()),
        None => api
            .get_opt(name)
            .await
            .map_err(|err| Error::api("get", "JobRun", &namespace, name, err))?,
    };
    // Gone since: the next pass creates it.
    let Some(existing) = existing else {
        return Ok(Holder::Older);
    };
    let controller = existing
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .cloned();
    Ok(match controller {
        Some(owner) if Some(&owner.uid) == schedule.uid().as_ref() => Holder::This,
        Some(owner) if owner.kind == "Schedule" => Holder::Older,
        Some(owner) => Holder::Foreign(format!("it is controlled by {} {}", owner.kind, owner.name)),
        None => Holder::Foreign(
            "it has no controller: orphaned from a deleted Schedule of this name, or made by hand".into(),
        ),
    })
}

/// The run `run` this pass planned cannot be created: a JobRun that is not this Schedule's
/// holds its name. It is never taken as this Schedule's (neither listed nor counted as its
/// run); its fire time is recorded as missed (a run-now value as used), with a Warning Event
/// naming the object, which is left alone.
fn not_ours(decision: &mut Decision, run: &JobRun, owner: &str) {
    let name = run.name_any();
    let status = &mut decision.status;
    status.active.retain(|a| a.name != name);
    status.active_count = i32::try_from(status.active.len()).unwrap_or(i32::MAX);
    let run_now = run.annotations().contains_key(RUN_NOW_ANNOTATION);
    if !run_now {
        status.fired_count = (status.fired_count - 1).max(0);
        status.missed_fire_times += 1;
        decision.missed += 1;
    }
    let what = if run_now {
        "the run-now value made no run".to_string()
    } else {
        format!("fire time {} is recorded as missed", run.fire_time().to_rfc3339())
    };
    warn!(run = %name, %owner, "a JobRun that is not this Schedule's holds the name of its run");
    decision.events.push(Note::warning(
        "NameConflict",
        format!(
            "JobRun {name} already exists and is not this Schedule's ({owner}); it is left alone and {what}"
        ),
    ));
}

/// How many Pods one Schedule reconcile creates at once (a catch-up with `coalesce: All`
/// creates up to 100 runs in one pass).
const STARTS_AT_ONCE: usize = 16;

/// Starts the runs just created that may start now, so a run's Pod is the first write after
/// its JobRun. A run that may not start yet (jitter, no slot) is left to its own reconcile.
/// Admission decides one run after the other (each start holds its slots); the Pods of the
/// runs it lets start are then created concurrently, at most [`STARTS_AT_ONCE`] at a time.
async fn start_created(ctx: &Context, created: &[Arc<JobRun>]) {
    let now = ctx.now();
    let admitted: Vec<&Arc<JobRun>> = created
        .iter()
        .filter(|run| {
            run.not_before() <= now && admission::verdict(ctx, run, created, now, true) == Verdict::Start
        })
        .collect();
    futures::stream::iter(admitted)
        .for_each_concurrent(STARTS_AT_ONCE, |run| start_one(ctx, run))
        .await;
}

/// Creates the first Pod (or Job) of a run admission let start.
async fn start_one(ctx: &Context, run: &Arc<JobRun>) {
    match attempt::start(ctx, run, 1).await {
        Ok(Started::Created(pod)) => {
            ctx.publish(
                run.as_ref(),
                Note::normal("PodCreated", format!("created pod {pod} (attempt 1)")),
            )
            .await;
        }
        Ok(Started::Existed(_)) => {}
        // The JobRun reconciler reports what stopped it.
        Ok(Started::Refused { .. } | Started::TaskMissing(_) | Started::CreateRefused { .. }) => {
            ctx.slots.release(run)
        }
        Err(err) => {
            ctx.slots.release(run);
            warn!(run = %run.name_any(), error = %err, "could not start the run; its own reconcile will retry");
        }
    }
}

/// Tells the metrics what this pass did.
fn observe(ctx: &Context, schedule: &Schedule, decision: &Decision, fired: usize) {
    let Some(observer) = ctx.observer() else {
        return;
    };
    let namespace = schedule.namespace().unwrap_or_default();
    if fired > 0 {
        observer.fired(&namespace, &schedule.name_any(), fired);
    }
    if decision.missed > 0 || decision.coalesced > 0 {
        observer.planned(decision.missed as usize, decision.coalesced as usize);
    }
    if decision.excluded > 0 {
        observer.excluded(&namespace, &schedule.name_any(), decision.excluded as usize);
    }
    let upcoming = &decision.status.upcoming_fire_times;
    observer.schedule_state(&super::context::ScheduleState {
        namespace,
        name: schedule.name_any(),
        next_fire_time: decision.status.next_fire_time,
        interval_seconds: match upcoming.as_slice() {
            [first, second, ..] => Some((*second - *first).as_seconds_f64()),
            _ => None,
        },
        last_success: decision.status.last_successful_time,
        ready: condition_of(&decision.status, READY),
        paused: condition_of(&decision.status, "Paused"),
        active_runs: i64::from(decision.status.active_count),
        consecutive_failures: decision.status.consecutive_failures,
    });
}

/// (status is True, reason) of a condition of `status`; (false, "") when it is absent.
fn condition_of(status: &crate::api::ScheduleStatus, type_: &str) -> (bool, String) {
    crate::api::find_condition(&status.conditions, type_)
        .map_or((false, String::new()), |c| (c.status == "True", c.reason.clone()))
}
