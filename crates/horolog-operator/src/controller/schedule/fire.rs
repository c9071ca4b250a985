//! Firing: the cursor a pass plans from (moved by a trigger edit, and by catchUp Disabled at
//! the end of an interruption), the plan of the due fire times, and what it turns into (runs
//! to create, counts, Events).

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan::{self, Plan, Policy};
use horolog_core::progress::Progress;
use horolog_core::trigger::Trigger;
use kube::ResourceExt;
use tracing::info;

use super::edit::{cursor, replaced_trigger};
use super::pass::{Pass, PlanOutcome, TaskLookup, UPCOMING};
use super::ready::was_stopped;
use crate::api::{CatchUpPolicy, CoalescePolicy};
use crate::controller::events::Note;
use crate::names::{jobrun_for, run_name};

/// Plans the due fire times (when `firing`), creates their runs, and moves the cursor.
pub fn fire(pass: &mut Pass<'_>, trigger: &Trigger, firing: bool) -> PlanOutcome {
    let description = trigger.describe();
    pass.status.trigger = Some(description.clone());
    let mut outcome = PlanOutcome {
        trigger: description,
        ..PlanOutcome::default()
    };
    let mut cursor = cursor(pass, trigger, &mut outcome);
    if !firing || max_runs_reached(pass) {
        pass.status.cursor = cursor;
        pass.status.next_fire_time = None;
        pass.status.upcoming_fire_times = Vec::new();
        outcome.exhausted = max_runs_reached(pass);
        return outcome;
    }
    // The fire times of triggers replaced by edits, each up to its edit, by the same rule;
    // then the cursor is at the edit (the new trigger's fire times before it are not planned).
    for replaced in std::mem::take(&mut pass.status.replaced_triggers) {
        let until = replaced.until;
        if cursor.is_some_and(|cursor| cursor >= until) {
            continue;
        }
        let old = replaced_trigger(pass, trigger, &replaced);
        let planned = old.map(|old| segment(pass, &old, cursor, until, &mut outcome).1);
        cursor = planned.flatten().max(Some(until)).max(cursor);
    }
    let (planned, cursor) = segment(pass, trigger, cursor, pass.input.now, &mut outcome);
    pass.status.cursor = cursor;
    if max_runs_reached(pass) {
        pass.status.next_fire_time = None;
        pass.status.upcoming_fire_times = Vec::new();
        outcome.exhausted = true;
    } else {
        pass.status.next_fire_time = planned.next_fire_time;
        pass.status.upcoming_fire_times = plan::upcoming(trigger, cursor, UPCOMING);
        outcome.exhausted = planned.next_fire_time.is_none();
        // Wake at the next excluded fire time too, to count it when it passes.
        let uncounted = trigger.next_counted(cursor, planned.next_fire_time, WAKE_SEARCH);
        outcome.wake = planned.next_fire_time.into_iter().chain(uncounted).min();
    }
    outcome
}

/// The Schedule's progress as this pass has it so far.
fn progress_of(pass: &Pass<'_>) -> Progress {
    Progress {
        cursor: pass.status.cursor,
        fired_count: pass.status.fired_count,
        max_runs: pass.input.schedule.spec.max_runs,
    }
}

/// How many of the trigger's own fire times before the next fire time one pass looks at for
/// the next excluded one (usually the first is it).
const WAKE_SEARCH: usize = 1_000;

/// Plans `trigger`'s due fire times in `(cursor, until]` by the Schedule's rule, creates their
/// runs and counts the rest; start deadlines are against now (an old trigger's window ends
/// earlier). Returns the plan and the cursor after it.
fn segment(
    pass: &mut Pass<'_>,
    trigger: &Trigger,
    mut cursor: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    outcome: &mut PlanOutcome,
) -> (Plan, Option<DateTime<Utc>>) {
    // Excluded fire times are counted from here, whatever catch-up passes over.
    let counted_from = cursor;
    if let Some(skip) = skip_until(pass) {
        cursor = skip_passed(pass, trigger, cursor, skip.min(until), outcome);
    }
    let schedule = pass.input.schedule;
    let seed = schedule.uid().unwrap_or_else(|| schedule.name_any());
    let policy = policy(pass, schedule.spec.coalesce, grace(pass));
    let mut planned = plan::plan(trigger, cursor, until, &policy, |fire, cap| {
        plan::seeded_jitter(&seed, fire, cap)
    });
    let now = pass.input.now;
    let (runs, late): (Vec<_>, Vec<_>) = std::mem::take(&mut planned.runs)
        .into_iter()
        .partition(|run| run.start_deadline.is_none_or(|deadline| deadline >= now));
    planned.runs = runs;
    planned.missed.extend(late.iter().map(|run| run.fire_time));
    planned.missed.sort();
    create_runs(pass, &planned, cursor, outcome);
    count(pass, &planned, cursor, outcome);
    // Every fire time up to `until` is planned, so the cursor may pass over the excluded ones
    // up to it too: it moves over each in the write that counts it, so none counts twice.
    let counted = count_excluded(pass, trigger, counted_from, until, outcome);
    let cursor = planned.cursor.max(counted);
    (planned, cursor)
}

fn max_runs_reached(pass: &Pass<'_>) -> bool {
    progress_of(pass).max_runs_reached()
}

/// With catchUp Disabled, the instant up to which due fire times are passed over: now, at the
/// end of an interruption (a resume, the operator's start, the API server's return); just
/// before its creation, for a new Schedule (its earlier fire times passed before anyone asked
/// for them).
fn skip_until(pass: &Pass<'_>) -> Option<DateTime<Utc>> {
    let schedule = pass.input.schedule;
    if schedule.spec.catch_up == CatchUpPolicy::Enabled {
        return None;
    }
    if pass.old.trigger_hash.is_none() {
        return schedule
            .created_at()
            .map(|created| created - TimeDelta::nanoseconds(1));
    }
    (was_stopped(&pass.old) || pass.input.interrupted).then_some(pass.input.now)
}

/// Passes over the fire times up to `until`, recording them as missed; returns the new cursor.
fn skip_passed(
    pass: &mut Pass<'_>,
    trigger: &Trigger,
    cursor: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    outcome: &mut PlanOutcome,
) -> Option<DateTime<Utc>> {
    let policy = policy(pass, CoalescePolicy::Latest, None);
    let skipped = plan::plan(trigger, cursor, until, &policy, |_, _| TimeDelta::zero());
    // A run a lost pass created in the window is that fire time's outcome already, and is
    // counted as fired (and listed, so its end is counted) like any run.
    let existing = existing_runs(pass, cursor, skipped.cursor);
    let created = existing.len() as i64;
    rediscover(pass, &existing, outcome);
    let passed = (skipped.runs.len() as i64
        + skipped.missed.len() as i64
        + skipped.coalesced as i64
        + skipped.dropped as i64)
        .saturating_sub(created);
    if passed <= 0 {
        return skipped.cursor.max(cursor);
    }
    pass.events.push(Note::warning(
        "Missed",
        format!("catchUp Disabled: {passed} fire time(s) that passed during the interruption are recorded as missed"),
    ));
    pass.status.missed_fire_times += passed;
    outcome.missed += passed;
    pass.status.last_fire_time = pass.status.last_fire_time.max(skipped.cursor);
    skipped.cursor
}

/// Counts the trigger's own fire times in `(from, to]` (`to` is now: each is counted once
/// its instant has passed, whether or not anything fires after it) that exclusion skipped
/// (`excludedFireTimes`, never a miss) or moved onto a fire time that runs anyway
/// (`coalescedFireTimes`), with the Event that says so. Returns the last own fire time looked
/// at: the cursor moves over it in the same status write, so none is counted twice, across
/// restarts too. Past the scan bound the rest are counted by the next pass.
fn count_excluded(
    pass: &mut Pass<'_>,
    trigger: &Trigger,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    outcome: &mut PlanOutcome,
) -> Option<DateTime<Utc>> {
    let (exclusions, _) = trigger.exclusions()?;
    if from.is_some_and(|from| to <= from) {
        return None;
    }
    let limit = pass.input.settings.catch_up.max_scanned;
    let counts = trigger.exclusion_counts(from, to, limit);
    if counts.excluded == 0 && counts.merged == 0 {
        return counts.through;
    }
    pass.status.excluded_fire_times += counts.excluded as i64;
    outcome.excluded += counts.excluded as i64;
    pass.status.coalesced_fire_times += counts.merged as i64;
    outcome.coalesced += counts.merged as i64;
    let names = exclusions.names().join(", ");
    let mut parts = Vec::new();
    if counts.excluded > 0 {
        parts.push(format!("{} fire time(s) excluded (no run)", counts.excluded));
    }
    if counts.merged > 0 {
        parts.push(format!(
            "{} moved onto a fire time that runs anyway (coalesced)",
            counts.merged
        ));
    }
    pass.events.push(Note::normal(
        "Excluded",
        format!("{} by {names}", parts.join("; ")),
    ));
    counts.through
}

/// The runs a plan creates: one per planned fire time that has no run yet (at most what
/// maxRuns leaves, after counting every run that already exists in the planned window).
fn create_runs(
    pass: &mut Pass<'_>,
    planned: &Plan,
    cursor: Option<DateTime<Utc>>,
    outcome: &mut PlanOutcome,
) {
    let schedule = pass.input.schedule;
    let exists = |fire_time| {
        let name = run_name(&schedule.name_any(), fire_time);
        pass.input.runs.iter().any(|run| run.name_any() == name)
    };
    // Every run in the window was created by a pass whose status write never happened, whether
    // this plan keeps its fire time or merges it away (coalesce Latest after a restart): it
    // counts in firedCount and against maxRuns, and is listed so that its end is counted.
    let mut existing = existing_runs(pass, cursor, planned.cursor);
    existing.extend(planned.runs.iter().map(|r| r.fire_time).filter(|t| exists(*t)));
    existing.sort();
    existing.dedup();
    rediscover(pass, &existing, outcome);
    let remaining = progress_of(pass).remaining();
    let new: Vec<_> = planned
        .runs
        .iter()
        .filter(|r| !exists(r.fire_time))
        .take(remaining)
        .collect();
    for run in &new {
        let name = run_name(&schedule.name_any(), run.fire_time);
        info!(fire_time = %run.fire_time, jitter = %run.jitter, run = %name, "fired");
        let job = jobrun_for(
            schedule,
            pass.input.task.found(),
            name,
            run.fire_time,
            run.jitter,
            run.start_deadline,
        );
        pass.create.push(job);
        pass.status.last_fire_time = pass.status.last_fire_time.max(Some(run.fire_time));
    }
    pass.status.fired_count += new.len() as i64;
}

/// Records the runs of `fire_times` (which exist, created by a pass whose status write never
/// happened, so never counted) as rediscovered: each counts once in firedCount.
fn rediscover(pass: &mut Pass<'_>, fire_times: &[DateTime<Utc>], outcome: &mut PlanOutcome) {
    let schedule = pass.input.schedule.name_any();
    for fire_time in fire_times {
        let name = run_name(&schedule, *fire_time);
        if !outcome.rediscovered.contains(&name) {
            outcome.rediscovered.push(name);
            pass.status.fired_count += 1;
            pass.status.last_fire_time = pass.status.last_fire_time.max(Some(*fire_time));
        }
    }
}

/// Counts what the plan merged away and recorded as missed, with the Events that say so.
/// A fire time whose run a lost pass created (its status write never happened) is that run:
/// it is neither missed nor merged away again, whatever this plan did with it.
fn count(pass: &mut Pass<'_>, planned: &Plan, cursor: Option<DateTime<Utc>>, outcome: &mut PlanOutcome) {
    let created = existing_runs(pass, cursor, planned.cursor);
    let kept = planned
        .runs
        .first()
        .map(|r| r.fire_time)
        .or(planned.missed.first().copied());
    let mut planned = planned.clone();
    for fire_time in created {
        if planned.runs.iter().any(|r| r.fire_time == fire_time) {
            continue;
        }
        if let Some(kept) = planned.missed.iter().position(|t| *t == fire_time) {
            planned.missed.remove(kept);
            continue;
        }
        match planned.dropped_range.as_ref() {
            Some(dropped) if dropped.contains(&fire_time) => {
                planned.dropped = planned.dropped.saturating_sub(1)
            }
            _ => planned.coalesced = planned.coalesced.saturating_sub(1),
        }
    }
    let schedule = pass.input.schedule;
    let status = &mut pass.status;
    status.last_fire_time = status.last_fire_time.max(planned.missed.iter().copied().max());
    let missed_count = planned.missed.len() as i64 + planned.dropped as i64;
    status.missed_fire_times += missed_count;
    status.coalesced_fire_times += planned.coalesced as i64;
    outcome.missed += missed_count;
    outcome.coalesced += planned.coalesced as i64;
    let max_runs = pass.input.settings.catch_up.max_runs;
    pass.events
        .extend(notes(&planned, kept, schedule.spec.coalesce, max_runs));
}

/// The fire times in `(after, until]` that already have the run this Schedule's trigger
/// names after them.
fn existing_runs(
    pass: &Pass<'_>,
    after: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Vec<DateTime<Utc>> {
    let Some(until) = until else {
        return Vec::new();
    };
    let schedule = pass.input.schedule.name_any();
    pass.input
        .runs
        .iter()
        .filter(|run| run.name_any() == run_name(&schedule, run.fire_time()))
        .map(|run| run.fire_time())
        .filter(|t| after.is_none_or(|after| *t > after) && *t <= until)
        .collect()
}

/// The Events a plan deserves: merged fire times (into `kept`), missed ones, and the catch-up
/// cap.
fn notes(
    planned: &Plan,
    kept: Option<DateTime<Utc>>,
    coalesce: CoalescePolicy,
    max_runs: usize,
) -> Vec<Note> {
    let missed = &planned.missed;
    let mut notes = Vec::new();
    let at_least = if planned.exact { "" } else { "at least " };
    if planned.coalesced > 0 {
        notes.push(Note::normal(
            "Coalesced",
            format!(
                "{at_least}{} due fire times merged into one (coalesce {coalesce:?}): kept {}",
                planned.coalesced + 1,
                kept.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        ));
    }
    if !missed.is_empty() {
        let times: Vec<String> = missed.iter().take(5).map(|t| t.to_rfc3339()).collect();
        let more = match missed.len().saturating_sub(times.len()) {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        notes.push(Note::warning(
            "Missed",
            format!(
                "fire time(s) {}{more} missed: past misfireGraceTime when the operator saw them",
                times.join(", ")
            ),
        ));
    }
    if let Some(range) = planned.dropped_range.as_ref().filter(|_| planned.dropped > 0) {
        notes.push(Note::warning(
            "Missed",
            format!(
                "catch-up cap: {at_least}{} due fire times from {} to {} recorded as missed (coalesce All runs at most {max_runs} per catch-up; the newest were kept)",
                planned.dropped,
                range.start().to_rfc3339(),
                range.end().to_rfc3339(),
            ),
        ));
    }
    notes
}

/// The misfire grace time: the Schedule's, else its Task's, else the operator's default.
pub(super) fn grace(pass: &Pass<'_>) -> Option<TimeDelta> {
    let task = match pass.input.task {
        TaskLookup::Found(task) => task.spec.misfire_grace_time,
        _ => None,
    };
    pass.input
        .schedule
        .spec
        .misfire_grace_time
        .or(task)
        .map(|d| d.as_chrono())
        .or(pass.input.settings.default_grace)
}

pub(super) fn policy(pass: &Pass<'_>, coalesce: CoalescePolicy, grace: Option<TimeDelta>) -> Policy {
    Policy {
        coalesce,
        misfire_grace_time: grace,
        max_jitter: pass.input.schedule.spec.max_jitter.map(|d| d.as_chrono()),
        catch_up: pass.input.settings.catch_up,
    }
}
