//! The Schedule reconciler's decision: pure, a function of the Schedule, its trigger, its
//! runs, its Task and the current time. It plans the due fire times, settles finished runs,
//! and says what to create, what to delete, what status to write (and how urgently), which
//! Events to publish and when to look again.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kube::ResourceExt;
use tracing::info;

use super::fire::fire;
use super::pass::PlanOutcome;
use super::ready;
use super::settle::{self, Settled};
use super::stage;
use crate::api::{JobRun, RUN_NOW_ANNOTATION, Schedule, ScheduleStatus, find_condition, set_condition};
use crate::names::{jobrun_for, run_now_name};

pub use super::pass::{Decision, Input, Pass, Settings, TaskLookup, UPCOMING, Write};
pub use crate::api::READY;

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    decide_staged(input, &[])
}

/// Decides one reconcile with `due`: runs staged ahead of a fire time that has come and not
/// started, left out of `input.runs`. The pass decides as if nothing had been staged
/// (coalesce, misfireGraceTime, maxRuns, pauses and edits as without staging); a staged run
/// then stands for the run the pass would create for its fire time, and is started instead,
/// or is deleted when the pass keeps no run for it (its fire time counted as the plan says:
/// missed, coalesced, excluded, or not a fire time any more). Pure.
pub fn decide_staged(input: Input<'_>, due: &[Arc<JobRun>]) -> Decision {
    let mut decision = decide_pass(input);
    for run in due {
        let name = run.name_any();
        match decision.create.iter().position(|c| c.name_any() == name) {
            Some(kept) => {
                decision.create.remove(kept);
                decision.start.push(name);
            }
            None => decision.unstage.push(stage::not_kept(run, input.now)),
        }
    }
    decision
}

fn decide_pass(input: Input<'_>) -> Decision {
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
    let staging = stage::stage(&pass, input.trigger.ok(), gate.as_ref(), &planned);
    let mut decision = conclude(pass, &settled, &planned);
    decision.requeue = decision.requeue.into_iter().chain(staging.wake).min();
    decision.stage = staging.create;
    decision.unstage = staging.unstage;
    decision.start = planned
        .rediscovered
        .iter()
        .filter(|name| {
            input.runs.iter().any(|run| {
                run.name_any() == **name
                    && !run.is_finished()
                    && run.cancel_requested().is_none()
                    && run
                        .status
                        .as_ref()
                        .is_none_or(|s| s.pod_name.is_none() && s.attempts.is_none())
            })
        })
        .cloned()
        .collect();
    decision
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
        pass.input.task.found(),
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
        stage: None,
        unstage: Vec::new(),
        start: Vec::new(),
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
