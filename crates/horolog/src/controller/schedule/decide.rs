//! The Schedule reconciler's decision: pure, a function of the Schedule, its trigger, its
//! runs, its Task and the current time. It plans the due fire times, settles finished runs,
//! and says what to create, what to delete, what status to write (and how urgently), which
//! Events to publish and when to look again.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan::{self, CatchUp, Plan, Policy};
use horolog_core::trigger::{Trigger, TriggerError};
use kube::ResourceExt;
use tracing::info;

use super::settle::{self, Settled, set_condition};
use super::{jobrun_for, run_name, run_now_name, trigger_hash};
use crate::api::{
    CatchUpPolicy, CoalescePolicy, Condition, JobRun, RESUME_ANNOTATION, RUN_NOW_ANNOTATION, Schedule,
    ScheduleStatus, Task, find_condition,
};
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
}

/// Why the Schedule does not fire, if it does not.
#[derive(Clone, Debug, PartialEq)]
struct Gate {
    reason: &'static str,
    message: String,
    warning: bool,
}

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let schedule = input.schedule;
    let now = input.now;
    let old = schedule.status.clone().unwrap_or_default();
    let generation = schedule.metadata.generation;
    let mut status = ScheduleStatus {
        observed_generation: generation,
        ..old.clone()
    };
    let mut events = Vec::new();
    let mut create = Vec::new();

    lift_failures(schedule, &old, &mut status, &mut events);
    if let Some(value) = schedule.annotation(RUN_NOW_ANNOTATION)
        && old.last_run_now.as_deref() != Some(value)
    {
        // A manual run does not depend on the trigger: it works while paused, finished or
        // invalid.
        let name = run_now_name(&schedule.name_any(), value);
        info!(run = %name, value, "run-now: firing once");
        create.push(jobrun_for(
            schedule,
            &input.task,
            name,
            now,
            TimeDelta::zero(),
            None,
        ));
        status.last_run_now = Some(value.to_string());
    }
    let settled = settle::settle(&mut status, input.runs, input.gone, generation, now);

    let mut plan_outcome = PlanOutcome::default();
    let gate = gate(&input, &status);
    if let Ok(trigger) = input.trigger {
        plan_outcome = fire(
            &input,
            trigger,
            gate.is_none(),
            &old,
            &mut status,
            &mut create,
            &mut events,
        );
    } else {
        status.trigger = None;
        status.next_fire_time = None;
        status.upcoming_fire_times = Vec::new();
    }
    settle::add_active(&mut status, input.runs, &create, &plan_outcome.rediscovered);

    let exhausted = plan_outcome.exhausted && input.trigger.is_ok();
    let finished = exhausted && status.active.is_empty();
    // Finished when its last run did: the latest completion among its runs, if any.
    let last_completion = input.runs.iter().filter_map(|run| run.completion_time()).max();
    status.finished_at = if finished {
        old.finished_at.or(last_completion.or(Some(now)))
    } else {
        None
    };
    let gate = gate.or_else(|| {
        exhausted.then(|| Gate {
            reason: "Finished",
            message: if schedule
                .spec
                .max_runs
                .is_some_and(|max| status.fired_count >= max)
            {
                format!("fired maxRuns ({}) times", status.fired_count)
            } else {
                format!(
                    "the trigger has no more fire times ({})",
                    plan_outcome.trigger.clone().unwrap_or_default()
                )
            },
            warning: false,
        })
    });
    ready(&old, &mut status, gate.as_ref(), generation, now, &mut events);

    let write = urgency(&old, &status, &create, &settled, input.settings.status_delay, now);
    if write == Write::Now {
        events.extend(settled.events.iter().cloned());
    }
    let delete = history_to_delete(schedule, input.runs, &status, &old, write);
    let ttl_at = status.finished_at.and_then(|at| {
        schedule
            .spec
            .ttl_seconds_after_finished
            .map(|ttl| at + TimeDelta::seconds(ttl.max(0)))
    });
    let delete_schedule = ttl_at.is_some_and(|at| at <= now);
    let mut requeue = [
        plan_outcome.wake,
        match write {
            Write::At(at) => Some(at),
            _ => None,
        },
        ttl_at.filter(|_| !delete_schedule),
    ]
    .into_iter()
    .flatten()
    .min();
    if delete_schedule {
        requeue = None;
    }
    Decision {
        create,
        delete,
        status,
        write,
        events: if matches!(write, Write::At(_)) {
            Vec::new()
        } else {
            events
        },
        requeue,
        delete_schedule,
        missed: plan_outcome.missed,
        coalesced: plan_outcome.coalesced,
    }
}

/// A new `horolog.dev/resume` value, or a spec change, lifts a pause after failures.
fn lift_failures(
    schedule: &Schedule,
    old: &ScheduleStatus,
    status: &mut ScheduleStatus,
    events: &mut Vec<Note>,
) {
    let resume = schedule
        .annotation(RESUME_ANNOTATION)
        .filter(|value| old.last_resume.as_deref() != Some(*value));
    let spec_changed =
        old.observed_generation.is_some() && old.observed_generation != schedule.metadata.generation;
    if resume.is_none() && !spec_changed {
        return;
    }
    if let Some(value) = resume {
        status.last_resume = Some(value.to_string());
    }
    if status.consecutive_failures > 0 {
        let why = match resume {
            Some(value) => format!("{RESUME_ANNOTATION}={value:?}"),
            None => "the spec changed".to_string(),
        };
        if schedule.spec.pause_after_failures.is_some() {
            events.push(Note::normal(
                "Resumed",
                format!(
                    "{why}: consecutive failures reset from {}",
                    status.consecutive_failures
                ),
            ));
        }
        status.consecutive_failures = 0;
    }
}

/// Why the Schedule must not fire now, if it must not (the trigger's own exhaustion is found
/// by planning).
fn gate(input: &Input<'_>, status: &ScheduleStatus) -> Option<Gate> {
    let spec = &input.schedule.spec;
    if let Err(fault) = input.trigger {
        return Some(Gate {
            reason: fault.kind.reason(),
            message: fault.to_string(),
            warning: true,
        });
    }
    if let TaskLookup::Missing(task) = input.task {
        return Some(Gate {
            reason: "TaskNotFound",
            message: format!(
                "spec.taskRef.name: Task {task:?} does not exist in this namespace; firing starts when it does"
            ),
            warning: true,
        });
    }
    if spec.paused {
        return Some(Gate {
            reason: "Paused",
            message: "paused: nothing fires until spec.paused is false".into(),
            warning: false,
        });
    }
    if let Some(limit) = spec.pause_after_failures
        && status.consecutive_failures >= i64::from(limit)
    {
        return Some(Gate {
            reason: "TooManyFailures",
            message: format!(
                "{} consecutive runs failed (pauseAfterFailures {limit}): nothing fires until a run succeeds, annotation {RESUME_ANNOTATION} gets a new value, or the spec changes",
                status.consecutive_failures
            ),
            warning: true,
        });
    }
    None
}

/// What planning found.
#[derive(Clone, Debug, Default)]
struct PlanOutcome {
    /// The trigger has no more fire times (or maxRuns is reached).
    exhausted: bool,
    /// When the next fire time is due, if firing.
    wake: Option<DateTime<Utc>>,
    /// The trigger in short.
    trigger: Option<String>,
    /// Planned runs that already exist (created before a crash): listed in `active` even if
    /// finished, so they are counted once.
    rediscovered: Vec<String>,
    missed: i64,
    coalesced: i64,
}

/// Plans the due fire times (when `firing`), creates their runs, and moves the cursor.
fn fire(
    input: &Input<'_>,
    trigger: &Trigger,
    firing: bool,
    old: &ScheduleStatus,
    status: &mut ScheduleStatus,
    create: &mut Vec<JobRun>,
    events: &mut Vec<Note>,
) -> PlanOutcome {
    let schedule = input.schedule;
    let now = input.now;
    let description = trigger.describe();
    status.trigger = Some(description.clone());
    let mut outcome = PlanOutcome {
        trigger: Some(description),
        ..PlanOutcome::default()
    };

    // The cursor: status.cursor, or lastFireTime for Schedules written before it existed.
    let hash = trigger_hash(&schedule.spec.trigger);
    let mut cursor = old.cursor.or(old.last_fire_time);
    if old.trigger_hash.as_ref().is_some_and(|h| *h != hash) {
        // An edit applies from the moment of the edit: the new trigger's earlier fire times
        // are neither run nor counted.
        events.push(Note::normal(
            "TriggerChanged",
            format!("the trigger changed; it fires from {} on", now.to_rfc3339()),
        ));
        cursor = Some(now);
    }
    status.trigger_hash = Some(hash);

    let max_runs_reached = schedule
        .spec
        .max_runs
        .is_some_and(|max| status.fired_count >= max);
    if !firing || max_runs_reached {
        status.cursor = cursor;
        status.next_fire_time = None;
        status.upcoming_fire_times = Vec::new();
        outcome.exhausted = max_runs_reached;
        return outcome;
    }

    let resumed = matches!(
        find_condition(&old.conditions, READY).map(|c| c.reason.as_str()),
        Some("Paused" | "TooManyFailures" | "TaskNotFound")
    );
    // catchUp Disabled carries on from the end of an interruption; a new Schedule's fire times
    // before its creation passed before anyone asked for them.
    let served = old.trigger_hash.is_some();
    let skip_until = match schedule.spec.catch_up {
        CatchUpPolicy::Enabled => None,
        CatchUpPolicy::Disabled if served && (resumed || input.interrupted) => Some(now),
        CatchUpPolicy::Disabled if !served => schedule
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(crate::pod::chrono_time)
            .map(|created| created - TimeDelta::nanoseconds(1)),
        CatchUpPolicy::Disabled => None,
    };
    if let Some(until) = skip_until {
        let skipped = plan::plan(
            trigger,
            cursor,
            until,
            &policy_for(input, CoalescePolicy::Latest, None),
            |_, _| TimeDelta::zero(),
        );
        let passed = skipped.runs.len() as i64
            + skipped.missed.len() as i64
            + skipped.coalesced as i64
            + skipped.dropped as i64;
        if passed > 0 {
            events.push(Note::warning(
                "Missed",
                format!("catchUp Disabled: {passed} fire time(s) that passed during the interruption are recorded as missed"),
            ));
            status.missed_fire_times += passed;
            outcome.missed += passed;
            status.last_fire_time = status.last_fire_time.max(skipped.cursor);
            cursor = skipped.cursor;
        }
    }

    let seed = schedule.uid().unwrap_or_else(|| schedule.name_any());
    let grace = grace_of(input);
    let policy = policy_for(input, schedule.spec.coalesce, grace);
    let planned = plan::plan(trigger, cursor, now, &policy, |fire, cap| {
        plan::seeded_jitter(&seed, fire, cap)
    });
    apply_plan(input, &planned, status, create, events, &mut outcome);
    status.cursor = planned.cursor;
    let max_runs_reached = schedule
        .spec
        .max_runs
        .is_some_and(|max| status.fired_count >= max);
    if max_runs_reached {
        status.next_fire_time = None;
        status.upcoming_fire_times = Vec::new();
        outcome.exhausted = true;
    } else {
        status.next_fire_time = planned.next_fire_time;
        status.upcoming_fire_times = plan::upcoming(trigger, planned.cursor, UPCOMING);
        outcome.exhausted = planned.next_fire_time.is_none();
        outcome.wake = planned.next_fire_time;
    }
    outcome
}

/// Turns a plan into runs to create, counts and Events.
fn apply_plan(
    input: &Input<'_>,
    planned: &Plan,
    status: &mut ScheduleStatus,
    create: &mut Vec<JobRun>,
    events: &mut Vec<Note>,
    outcome: &mut PlanOutcome,
) {
    let schedule = input.schedule;
    let exists = |fire_time| {
        let name = run_name(&schedule.name_any(), fire_time);
        input.runs.iter().any(|run| run.name_any() == name)
    };
    let remaining = schedule
        .spec
        .max_runs
        .map_or(usize::MAX, |max| (max - status.fired_count).max(0) as usize);
    outcome.rediscovered = planned
        .runs
        .iter()
        .filter(|r| exists(r.fire_time))
        .map(|r| run_name(&schedule.name_any(), r.fire_time))
        .collect();
    let mut fired = Vec::new();
    for run in planned
        .runs
        .iter()
        .filter(|r| !exists(r.fire_time))
        .take(remaining)
    {
        let name = run_name(&schedule.name_any(), run.fire_time);
        info!(fire_time = %run.fire_time, jitter = %run.jitter, run = %name, "fired");
        fired.push(name.clone());
        create.push(jobrun_for(
            schedule,
            &input.task,
            name,
            run.fire_time,
            run.jitter,
            run.start_deadline,
        ));
        status.last_fire_time = status.last_fire_time.max(Some(run.fire_time));
    }
    // A rediscovered run was created by a pass whose status write never happened: it was
    // never counted.
    status.fired_count += (fired.len() + outcome.rediscovered.len()) as i64;
    let missed: Vec<DateTime<Utc>> = planned.missed.iter().copied().filter(|t| !exists(*t)).collect();
    status.last_fire_time = status.last_fire_time.max(missed.iter().copied().max());
    let missed_count = missed.len() as i64 + planned.dropped as i64;
    status.missed_fire_times += missed_count;
    status.coalesced_fire_times += planned.coalesced as i64;
    outcome.missed += missed_count;
    outcome.coalesced += planned.coalesced as i64;

    let at_least = if planned.exact { "" } else { "at least " };
    if planned.coalesced > 0 {
        let kept = planned
            .runs
            .first()
            .map(|r| r.fire_time)
            .or(planned.missed.first().copied());
        events.push(Note::normal(
            "Coalesced",
            format!(
                "{at_least}{} due fire times merged into one (coalesce {:?}): kept {}",
                planned.coalesced + 1,
                schedule.spec.coalesce,
                kept.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        ));
    }
    if !missed.is_empty() {
        let times: Vec<String> = missed.iter().take(5).map(|t| t.to_rfc3339()).collect();
        let more = missed.len().saturating_sub(times.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        events.push(Note::warning(
            "Missed",
            format!(
                "fire time(s) {}{more} missed: past misfireGraceTime when the operator saw them",
                times.join(", ")
            ),
        ));
    }
    if let Some(range) = planned.dropped_range.as_ref().filter(|_| planned.dropped > 0) {
        events.push(Note::warning(
            "Missed",
            format!(
                "catch-up cap: {at_least}{} due fire times from {} to {} recorded as missed (coalesce All runs at most {} per catch-up; the newest were kept)",
                planned.dropped,
                range.start().to_rfc3339(),
                range.end().to_rfc3339(),
                input.settings.catch_up.max_runs
            ),
        ));
    }
}

/// The misfire grace time: the Schedule's, else its Task's, else the operator's default.
fn grace_of(input: &Input<'_>) -> Option<TimeDelta> {
    let task = match input.task {
        TaskLookup::Found(task) => task.spec.misfire_grace_time,
        _ => None,
    };
    input
        .schedule
        .spec
        .misfire_grace_time
        .or(task)
        .map(|d| d.as_chrono())
        .or(input.settings.default_grace)
}

fn policy_for(input: &Input<'_>, coalesce: CoalescePolicy, grace: Option<TimeDelta>) -> Policy {
    Policy {
        coalesce,
        misfire_grace_time: grace,
        max_jitter: input.schedule.spec.max_jitter.map(|d| d.as_chrono()),
        paused: false,
        catch_up: input.settings.catch_up,
    }
}

/// Sets the Ready condition and the Events of its transitions.
fn ready(
    old: &ScheduleStatus,
    status: &mut ScheduleStatus,
    gate: Option<&Gate>,
    generation: Option<i64>,
    now: DateTime<Utc>,
    events: &mut Vec<Note>,
) {
    let previous = find_condition(&old.conditions, READY);
    let previous_reason = previous.map(|c| c.reason.as_str());
    let (ok, reason, message) = match gate {
        Some(gate) => (false, gate.reason, gate.message.clone()),
        None => (
            true,
            "Scheduled",
            format!("fires {}", status.trigger.clone().unwrap_or_default()),
        ),
    };
    if previous_reason != Some(reason) {
        match (gate, previous_reason) {
            (Some(gate), _) if gate.reason == "Paused" => events.push(Note::normal(
                "Paused",
                "paused: nothing fires until resumed".into(),
            )),
            (Some(gate), _) if gate.warning => {
                let event = match gate.reason {
                    "InvalidTimezone" => "InvalidTrigger",
                    other => other,
                };
                events.push(Note::warning(event, gate.message.clone()));
            }
            (Some(gate), _) => events.push(Note::normal(gate.reason, gate.message.clone())),
            (None, Some("Paused" | "TooManyFailures" | "TaskNotFound")) => events.push(Note::normal(
                "Resumed",
                "resumed: fire times that passed meanwhile go through catchUp, coalesce and misfireGraceTime"
                    .into(),
            )),
            (None, _) => {}
        }
    }
    let condition = Condition::transition(previous, READY, ok, reason, message, generation, now);
    set_condition(&mut status.conditions, condition);
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
