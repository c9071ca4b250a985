//! The Schedule reconciler's decision: pure, a function of the Schedule, its trigger, its
//! runs, its Task and the current time. It plans the due fire times, settles finished runs,
//! and says what to create, what to delete, what status to write (and how urgently), which
//! Events to publish and when to look again.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan::CatchUp;
use horolog_core::trigger::{Trigger, TriggerError};
use kube::ResourceExt;
use tracing::info;

use super::fire::{PlanOutcome, fire};
use super::ready;
use super::settle::{self, Settled, set_condition};
use super::{jobrun_for, run_now_name};
use crate::api::{JobRun, RUN_NOW_ANNOTATION, Schedule, ScheduleStatus, Task, find_condition};
use crate::controller::events::Note;

/// The condition type of a Schedule that says whether it fires.
pub const READY: &str = "Ready";
/// How many fire times `status.upcomingFireTimes` lists.
pub const UPCOMING: usize = 5;

/// What the decision needs to know besides the Schedule.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The catch-up bound of the planner.
    pub catch_up: CatchUp,
    /// `--default-misfire-grace-time`.
    pub default_grace: Option<TimeDelta>,
    /// How long settling successful runs may wait for the next status write
    /// (`--schedule-status-delay`).
    pub status_delay: TimeDelta,
}

/// The Schedule's Task, when it names one.
#[derive(Clone, Copy, Debug)]
pub enum TaskLookup<'a> {
    /// The Schedule has a jobTemplate.
    NotUsed,
    /// It names a Task that does not exist.
    Missing(&'a str),
    /// It names this Task.
    Found(&'a Task),
}

/// Everything one reconcile of a Schedule reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The Schedule, as cached.
    pub schedule: &'a Schedule,
    /// Its compiled trigger, or why it does not compile.
    pub trigger: Result<&'a Trigger, &'a TriggerError>,
    /// Its runs, as cached.
    pub runs: &'a [Arc<JobRun>],
    /// Runs of `status.active` known to be deleted.
    pub gone: &'a HashSet<String>,
    /// Its Task.
    pub task: TaskLookup<'a>,
    /// The current time.
    pub now: DateTime<Utc>,
    /// True when this reconcile ends an interruption of the operator: the first pass since
    /// the process started, or the first after the API server was unavailable.
    pub interrupted: bool,
    /// The operator's settings.
    pub settings: &'a Settings,
    /// When the Calendars the Schedule uses last changed (the latest write to one's spec):
    /// an edit of one applies from then.
    pub calendars_changed_at: Option<DateTime<Utc>>,
}

/// When the new status should be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Nothing changed.
    Nothing,
    /// Now: the cursor moved, a run was created, a condition changed, or news is bad.
    Now,
    /// Only finished runs were settled: at this instant, or with an earlier write.
    At(DateTime<Utc>),
}

/// Everything one reconcile of a Schedule decided.
#[derive(Clone, Debug)]
pub struct Decision {
    /// JobRuns to create (`AlreadyExists` means an earlier reconcile did).
    pub create: Vec<JobRun>,
    /// Settled runs beyond the history limits, to delete once the status is written.
    pub delete: Vec<String>,
    /// The new status.
    pub status: ScheduleStatus,
    /// When to write it.
    pub write: Write,
    /// Events to publish with the write.
    pub events: Vec<Note>,
    /// When to reconcile again; `None`: only when something changes.
    pub requeue: Option<DateTime<Utc>>,
    /// `ttlSecondsAfterFinished` has passed: delete the Schedule.
    pub delete_schedule: bool,
    /// Fire times recorded as missed by this pass, and merged away by coalescing.
    pub missed: i64,
    /// Fire times merged away by this pass.
    pub coalesced: i64,
    /// Fire times excluded by this pass.
    pub excluded: i64,
}

/// One pass of the decision: what it read, and what it has decided so far.
pub struct Pass<'a> {
    /// What the reconcile read.
    pub input: Input<'a>,
    /// The status as read.
    pub old: ScheduleStatus,
    /// The status being decided.
    pub status: ScheduleStatus,
    /// Events decided so far.
    pub events: Vec<Note>,
    /// JobRuns to create.
    pub create: Vec<JobRun>,
}

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let old = input.schedule.status.clone().unwrap_or_default();
    let generation = input.schedule.metadata.generation;
    let mut pass = Pass {
        status: ScheduleStatus {
            observed_generation: generation,
            ..old.clone()
        },
        old,
        input,
        events: Vec::new(),
        create: Vec::new(),
    };
    ready::lift_failures(&mut pass);
    run_now(&mut pass);
    let settled = settle::settle(&mut pass.status, input.runs, input.gone, generation, input.now);
    let gate = ready::gate(&input, &pass.status);
    let planned = match input.trigger {
        Ok(trigger) => fire(&mut pass, trigger, gate.is_none()),
        Err(_) => {
            pass.status.trigger = None;
            pass.status.next_fire_time = None;
            pass.status.upcoming_fire_times = Vec::new();
            PlanOutcome::default()
        }
    };
    settle::add_active(&mut pass.status, input.runs, &pass.create, &planned.rediscovered);
    let exhausted = planned.exhausted && input.trigger.is_ok();
    set_finished(&mut pass, exhausted);
    let max_runs = input.schedule.spec.max_runs;
    let gate = gate.or_else(|| exhausted.then(|| ready::finished(&pass.status, max_runs, &planned.trigger)));
    ready::ready(&mut pass, gate.as_ref(), generation, input.now);
    conclude(pass, &settled, &planned)
}

/// A new `horolog.dev/run-now` value: one run at once. A manual run does not depend on the
/// trigger: it works while paused, finished or invalid.
fn run_now(pass: &mut Pass<'_>) {
    let schedule = pass.input.schedule;
    let Some(value) = schedule.annotation(RUN_NOW_ANNOTATION) else {
        return;
    };
    if pass.old.last_run_now.as_deref() == Some(value) {
        return;
    }
    let name = run_now_name(&schedule.name_any(), value);
    info!(run = %name, value, "run-now: firing once");
    let now = pass.input.now;
    pass.create.push(jobrun_for(
        schedule,
        &pass.input.task,
        name,
        now,
        TimeDelta::zero(),
        None,
    ));
    pass.status.last_run_now = Some(value.to_string());
}

/// `finishedAt`: set when the trigger has no more fire times and every run is counted, to the
/// completion of the last run (the moment it finished), kept while it stays finished.
fn set_finished(pass: &mut Pass<'_>, exhausted: bool) {
    let finished = exhausted && pass.status.active.is_empty();
    let last_completion = pass
        .input
        .runs
        .iter()
        .filter_map(|run| run.completion_time())
        .max();
    pass.status.finished_at = if finished {
        pass.old.finished_at.or(last_completion.or(Some(pass.input.now)))
    } else {
        None
    };
}

/// The decision, from a pass done: when to write, what to delete, when to look again.
fn conclude(pass: Pass<'_>, settled: &Settled, planned: &PlanOutcome) -> Decision {
    let Pass {
        input,
        old,
        status,
        mut events,
        create,
    } = pass;
    let now = input.now;
    let write = urgency(&old, &status, &create, settled, input.settings.status_delay, now);
    match write {
        Write::Now => events.extend(settled.events.iter().cloned()),
        // Nothing is said until it is written; a later pass says it again.
        Write::At(_) => events.clear(),
        Write::Nothing => {}
    }
    let delete = history_to_delete(input.schedule, input.runs, &status, &old, write);
    // Checked: the schema bounds the TTL, but an object written before that bound existed
    // must not panic the reconciler (TimeDelta::seconds panics past ~292 billion years).
    let ttl_at = status.finished_at.and_then(|at| {
        input
            .schedule
            .spec
            .ttl_seconds_after_finished
            .and_then(|ttl| TimeDelta::try_seconds(ttl.max(0)))
            .and_then(|ttl| at.checked_add_signed(ttl))
    });
    let delete_schedule = ttl_at.is_some_and(|at| at <= now);
    let write_at = match write {
        Write::At(at) => Some(at),
        _ => None,
    };
    let requeue = [planned.wake, write_at, ttl_at]
        .into_iter()
        .flatten()
        .min()
        .filter(|_| !delete_schedule);
    Decision {
        create,
        delete,
        status,
        write,
        events,
        requeue,
        delete_schedule,
        missed: planned.missed,
        coalesced: planned.coalesced,
        excluded: planned.excluded,
    }
}

/// When the new status must be written: at once for anything but settled successes, which
/// may wait `status_delay` for the next write (at the next fire time, usually).
fn urgency(
    old: &ScheduleStatus,
    status: &ScheduleStatus,
    create: &[JobRun],
    settled: &Settled,
    delay: TimeDelta,
    now: DateTime<Utc>,
) -> Write {
    if status == old {
        return Write::Nothing;
    }
    if !create.is_empty() || settled.bad_news || settled.names.is_empty() || delay <= TimeDelta::zero() {
        return Write::Now;
    }
    // Would anything but the settling change? Then write now.
    let mut unsettled = status.clone();
    unsettled.active = old.active.clone();
    unsettled.active_count = old.active_count;
    unsettled.last_successful_time = old.last_successful_time;
    unsettled.consecutive_failures = old.consecutive_failures;
    unsettled.skipped_runs = old.skipped_runs;
    unsettled.missed_fire_times = old.missed_fire_times;
    unsettled.finished_at = old.finished_at;
    let mut conditions = status.conditions.clone();
    if let Some(last) = find_condition(&old.conditions, settle::LAST_RUN_SUCCEEDED).cloned() {
        set_condition(&mut conditions, last);
    } else {
        conditions.retain(|c| c.type_ != settle::LAST_RUN_SUCCEEDED);
    }
    unsettled.conditions = conditions;
    if unsettled != *old {
        return Write::Now;
    }
    let at = settled.earliest_completion.unwrap_or(now) + delay;
    if at <= now { Write::Now } else { Write::At(at) }
}

/// Settled runs beyond `successfulRunsHistoryLimit` / `failedRunsHistoryLimit`, oldest first.
/// Only runs whose settling is (or is being) written and whose fire time the written cursor
/// covers: a run deleted before either would be created again, or never counted.
fn history_to_delete(
    schedule: &Schedule,
    runs: &[Arc<JobRun>],
    status: &ScheduleStatus,
    old: &ScheduleStatus,
    write: Write,
) -> Vec<String> {
    let written = if write == Write::Now { status } else { old };
    let listed: HashSet<&str> = written.active.iter().map(|a| a.name.as_str()).collect();
    let (mut succeeded, mut unsuccessful) = (Vec::new(), Vec::new());
    for run in runs.iter().filter(|run| {
        run.is_finished()
            && !run.is_backfill()
            && !listed.contains(run.name_any().as_str())
            // A run-now run is listed in the same write that records its annotation value.
            && (run.annotations().contains_key(RUN_NOW_ANNOTATION) || written.cursor.is_some_and(|c| run.fire_time() <= c))
    }) {
        if run.phase() == crate::api::JobRunPhase::Succeeded {
            succeeded.push(run);
        } else {
            unsuccessful.push(run);
        }
    }
    let mut delete = Vec::new();
    for (mut finished, keep) in [
        (succeeded, schedule.spec.successful_history()),
        (unsuccessful, schedule.spec.failed_history()),
    ] {
        // Newest first by fire time; the name breaks ties so the order is stable.
        finished.sort_by_key(|run| std::cmp::Reverse((run.fire_time(), run.name_any())));
        delete.extend(finished.iter().skip(keep).map(|run| run.name_any()));
    }
    delete
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
