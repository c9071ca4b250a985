//! The Backfill decision: pure, a function of the Backfill, its Schedule and trigger, the
//! runs that exist and the current time. It counts the range, picks the next batch of fire
//! times to create, moves the cursor and says the phase.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan::upcoming;
use horolog_core::trigger::{Trigger, TriggerError};
use kube::ResourceExt;
use tracing::info;

use super::range::{Range, count_is_exact, rfc3339};
use crate::api::{
    BACKFILL_LABEL, BACKFILL_PREVIEW, Backfill, BackfillPhase, BackfillStatus, Condition, JobRun, Schedule,
    find_condition, set_condition,
};
use crate::controller::events::Note;
use crate::controller::schedule::decide::TaskLookup;
use crate::names::{MAX_NAME_LEN, jobrun_for, run_name, short_name};

/// The condition type of a Backfill, as on batch/v1 Job.
pub const COMPLETE: &str = "Complete";

/// How many of a Backfill's runs may wait beyond its pool's limit: enough that a slot that
/// frees is taken at once by the JobRun reconciler, without waiting for the next batch.
pub const BATCH_BUFFER: usize = 10;

/// The most fire times a Backfill covers when its spec.maxFireTimes is absent: a larger range
/// is refused as a whole (phase Failed, reason TooManyFireTimes).
pub const DEFAULT_MAX_FIRE_TIMES: i64 = 10_000;

/// Fire times one pass visits at most (those whose JobRun exists cost a visit but no slot).
pub const MAX_VISITS_PER_PASS: usize = 1000;

/// How soon a pass cut short by a JobRun the cache does not show yet looks again, should the
/// run's watch event not wake it first.
pub(super) const CACHE_BEHIND_RECHECK: Duration = Duration::from_secs(1);

/// The Schedule a Backfill names, as the caches show it.
#[derive(Clone, Copy, Debug)]
pub enum ScheduleLookup<'a> {
    /// No Schedule of that name.
    Missing,
    /// It is being deleted.
    Deleting,
    /// The Schedule, its trigger (compiled as the backfill reads it) and its Task.
    Found {
        /// The Schedule.
        schedule: &'a Schedule,
        /// Its trigger, or why it does not compile.
        trigger: Result<&'a Trigger, &'a TriggerError>,
        /// Its Task.
        task: TaskLookup<'a>,
    },
}

/// Everything one reconcile of a Backfill reads.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The Backfill, as cached.
    pub backfill: &'a Backfill,
    /// Its Schedule.
    pub schedule: ScheduleLookup<'a>,
    /// The Schedule's runs, as cached.
    pub runs: &'a [Arc<JobRun>],
    /// Any JobRun of the namespace by name, as cached.
    pub existing: &'a dyn Fn(&str) -> Option<Arc<JobRun>>,
    /// The limit of the backfill's pool of slots (the Schedule's maxRunningJobs, else 1).
    pub limit: usize,
    /// Fire times counted one by one at most; past it a scanning trigger's count is a lower
    /// bound.
    pub scan_limit: usize,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// Everything one reconcile of a Backfill decided.
#[derive(Clone, Debug)]
pub struct Decision {
    /// JobRuns to create, oldest fire time first. The status below counts them as created.
    pub create: Vec<JobRun>,
    /// The new status.
    pub status: BackfillStatus,
    /// Events to publish once the status is written.
    pub events: Vec<Note>,
}

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let backfill = input.backfill;
    let old = backfill.status.clone().unwrap_or_default();
    if old.phase == Some(BackfillPhase::Complete) {
        return unchanged(old);
    }
    let (schedule, trigger, task) = match resolved(&input) {
        Ok(found) => found,
        Err(failure) => return *failure,
    };
    let range = Range::of(backfill);
    let mut status = BackfillStatus {
        message: None,
        ..old.clone()
    };
    let count_text = count(&input, &mut status, schedule, trigger, range);
    let max = backfill
        .spec
        .max_fire_times
        .unwrap_or(DEFAULT_MAX_FIRE_TIMES)
        .max(1);
    let too_many = status.fire_times.is_some_and(|count| count > max);
    if too_many && !backfill.spec.dry_run && old.created == 0 {
        let message = format!(
            "{range} holds {count_text} fire times, more than spec.maxFireTimes ({max}); nothing was created: split the range into smaller Backfills or raise maxFireTimes"
        );
        let mut decision = failed(&input, "TooManyFireTimes", message);
        decision.status.fire_times = status.fire_times;
        return decision;
    }
    if backfill.spec.dry_run {
        status.preview = upcoming(trigger, Some(range.after()), BACKFILL_PREVIEW)
            .into_iter()
            .filter(|t| range.contains(*t))
            .collect();
        let mut message = format!("dry run: {count_text} fire time(s) in {range}; nothing created");
        if too_many {
            message.push_str(&format!(
                "; more than spec.maxFireTimes ({max}): a real run would be refused"
            ));
        }
        return complete(&input, status, "DryRun", message);
    }
    let (create, exhausted) = next_batch(&input, &mut status, schedule, &task, trigger, range);
    let unfinished = create.len()
        + input
            .runs
            .iter()
            .filter(|run| !run.is_finished() && range.contains(run.fire_time()))
            .count();
    let mut decision = if exhausted && unfinished == 0 {
        let message = format!(
            "every fire time in {range} ({count_text}) has a JobRun and all have finished; this Backfill created {}",
            status.created
        );
        complete(&input, status, "AllRunsFinished", message)
    } else {
        running(&input, &old, status, &count_text, range)
    };
    decision.create = create;
    decision
}

/// The Schedule, its trigger and its Task; or the decision that the Backfill failed.
fn resolved<'a>(input: &Input<'a>) -> Result<(&'a Schedule, &'a Trigger, TaskLookup<'a>), Box<Decision>> {
    let schedule_name = &input.backfill.spec.schedule_name;
    match input.schedule {
        ScheduleLookup::Missing => Err(Box::new(failed(
            input,
            "ScheduleNotFound",
            format!("Schedule {schedule_name:?} does not exist"),
        ))),
        ScheduleLookup::Deleting => Err(Box::new(failed(
            input,
            "ScheduleDeleted",
            format!("Schedule {schedule_name:?} is being deleted"),
        ))),
        ScheduleLookup::Found {
            trigger: Err(err), ..
        } => Err(Box::new(failed(
            input,
            err.kind.reason(),
            format!("the trigger of Schedule {schedule_name:?} is invalid: {err}"),
        ))),
        ScheduleLookup::Found {
            schedule,
            trigger: Ok(trigger),
            task,
        } => Ok((schedule, trigger, task)),
    }
}

/// Counts the range once (status.fireTimes) and says the count as messages do ("at least"
/// when it is a lower bound).
fn count(
    input: &Input<'_>,
    status: &mut BackfillStatus,
    schedule: &Schedule,
    trigger: &Trigger,
    range: Range,
) -> String {
    let (count, exact) = match status.fire_times {
        None => range.count(trigger, input.scan_limit),
        Some(count) => (
            count,
            count_is_exact(&schedule.spec.trigger, count, input.scan_limit),
        ),
    };
    status.fire_times = Some(count);
    if exact {
        count.to_string()
    } else {
        format!("at least {count}")
    }
}

/// The next batch of runs to create, after the cursor: as many as the pool leaves room for,
/// visiting at most [`MAX_VISITS_PER_PASS`] fire times. Moves the cursor; true when the range
/// is exhausted.
fn next_batch(
    input: &Input<'_>,
    status: &mut BackfillStatus,
    schedule: &Schedule,
    task: &TaskLookup<'_>,
    trigger: &Trigger,
    range: Range,
) -> (Vec<JobRun>, bool) {
    let backfill = input.backfill;
    let label = short_name(&backfill.name_any(), MAX_NAME_LEN);
    let ours = |run: &JobRun| {
        run.labels().get(BACKFILL_LABEL) == Some(&label)
            && run.spec.schedule_name.as_deref() == Some(schedule.name_any().as_str())
    };
    let waiting = input
        .runs
        .iter()
        .filter(|run| ours(run) && !run.is_finished())
        .count();
    let room = (input.limit.max(1) + BATCH_BUFFER).saturating_sub(waiting);
    let mut create = Vec::new();
    let mut visited = 0;
    let mut next = range.next_after(trigger, status.cursor);
    while let Some(fire_time) = next {
        if create.len() >= room || visited >= MAX_VISITS_PER_PASS {
            break;
        }
        visited += 1;
        let name = run_name(&schedule.name_any(), fire_time);
        match (input.existing)(&name) {
            // Created by a pass whose status write was lost: count it now.
            Some(run) if ours(&run) => status.created += 1,
            // It ran (or runs) already: done, not ours.
            Some(_) => {}
            None => {
                info!(%fire_time, run = %name, "backfilling");
                create.push(backfilled_run(schedule, task, backfill, name, fire_time));
                status.created += 1;
            }
        }
        status.cursor = Some(fire_time);
        next = range.next_after(trigger, status.cursor);
    }
    (create, next.is_none())
}

/// Still running: the status says how far it got, and the first pass says it started.
fn running(
    input: &Input<'_>,
    old: &BackfillStatus,
    mut status: BackfillStatus,
    count_text: &str,
    range: Range,
) -> Decision {
    let message = match status.cursor {
        Some(cursor) => format!(
            "created {} of {count_text} JobRun(s); fire times handled up to {}",
            status.created,
            rfc3339(cursor)
        ),
        None => format!("{count_text} fire time(s) in {range}; waiting for a slot"),
    };
    status.phase = Some(BackfillPhase::Running);
    status.message = Some(message);
    condition(
        &mut status,
        old,
        false,
        "Running",
        "not every fire time has a finished JobRun yet".into(),
        input,
    );
    let mut events = Vec::new();
    if old.phase != Some(BackfillPhase::Running) {
        let schedule = &input.backfill.spec.schedule_name;
        events.push(Note::normal(
            "BackfillStarted",
            format!(
                "running {count_text} fire time(s) of Schedule {schedule} in {range}, as the concurrency policy admits them"
            ),
        ));
    }
    Decision {
        create: Vec::new(),
        status,
        events,
    }
}

/// The run of `fire_time`: the Schedule's, with no jitter, no start deadline and the
/// Backfill's label.
fn backfilled_run(
    schedule: &Schedule,
    task: &TaskLookup<'_>,
    backfill: &Backfill,
    name: String,
    fire_time: DateTime<Utc>,
) -> JobRun {
    let mut run = jobrun_for(schedule, task.found(), name, fire_time, TimeDelta::zero(), None);
    run.metadata.labels.get_or_insert_with(Default::default).insert(
        BACKFILL_LABEL.to_string(),
        short_name(&backfill.name_any(), MAX_NAME_LEN),
    );
    run
}

fn unchanged(status: BackfillStatus) -> Decision {
    Decision {
        create: Vec::new(),
        status,
        events: Vec::new(),
    }
}

/// Failed: the Schedule is missing or its trigger invalid. Not final: the Backfill carries
/// on from its cursor when the Schedule is back or fixed.
fn failed(input: &Input<'_>, reason: &str, message: String) -> Decision {
    let old = input.backfill.status.clone().unwrap_or_default();
    let mut status = BackfillStatus {
        phase: Some(BackfillPhase::Failed),
        message: Some(message.clone()),
        ..old.clone()
    };
    condition(&mut status, &old, false, reason, message.clone(), input);
    let events = if old.phase != Some(BackfillPhase::Failed) || old.message.as_ref() != Some(&message) {
        vec![Note::warning("BackfillFailed", message)]
    } else {
        Vec::new()
    };
    Decision {
        create: Vec::new(),
        status,
        events,
    }
}

fn complete(input: &Input<'_>, mut status: BackfillStatus, reason: &str, message: String) -> Decision {
    let old = input.backfill.status.clone().unwrap_or_default();
    status.phase = Some(BackfillPhase::Complete);
    status.message = Some(message.clone());
    condition(&mut status, &old, true, reason, message.clone(), input);
    Decision {
        create: Vec::new(),
        status,
        events: vec![Note::normal("BackfillComplete", message)],
    }
}

fn condition(
    status: &mut BackfillStatus,
    old: &BackfillStatus,
    ok: bool,
    reason: &str,
    message: String,
    input: &Input<'_>,
) {
    let condition = Condition::transition(
        find_condition(&old.conditions, COMPLETE),
        COMPLETE,
        ok,
        reason,
        message,
        input.backfill.metadata.generation,
        input.now,
    );
    set_condition(&mut status.conditions, condition);
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
