//! Calendars: the Calendar reconciler (status only: whether it and the Calendars it includes
//! are valid, how many Schedules and Tasks name it, its next excluded day), and how a Schedule
//! applies its Calendars to its trigger. The rules themselves are in
//! `horolog_core::exclusion`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Days, TimeDelta, Utc};
use chrono_tz::Tz;
use horolog_core::exclusion::{CalendarDef, CalendarProblem, Exclusions, resolve};
use horolog_core::trigger::{Trigger, TriggerError, TriggerErrorKind};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::events::Note;
use super::{Context, Error};
use crate::api::{Calendar, CalendarStatus, Condition, Schedule, Task, find_condition, set_condition};

/// The condition type of a Calendar.
pub use crate::api::READY;

/// The Calendars a Schedule names directly: its own calendarRefs, then its Task's.
pub fn roots(schedule: &Schedule, task: Option<&Task>) -> Vec<String> {
    let mut names: Vec<String> = schedule
        .spec
        .calendar_refs
        .iter()
        .chain(task.iter().flat_map(|t| t.spec.calendar_refs.iter()))
        .map(|r| r.name.clone())
        .collect();
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// A Calendar as the resolver sees it.
pub fn def_of(calendar: &Calendar) -> CalendarDef {
    CalendarDef {
        spec: calendar.spec.exclusions(),
        refs: calendar.spec.ref_names(),
    }
}

/// The Schedule's trigger with its Calendars (its own, its Task's and the ones they include)
/// and its `onExcluded` applied; or why it must not fire: a Calendar that does not exist, is
/// invalid or is part of a cycle (fail closed).
pub fn with_calendars(
    trigger: Trigger,
    schedule: &Schedule,
    task: Option<&Task>,
    lookup: &dyn Fn(&str) -> Option<Arc<Calendar>>,
) -> Result<Trigger, TriggerError> {
    let roots = roots(schedule, task);
    let on = schedule.spec.on_excluded;
    if roots.is_empty() {
        return Ok(trigger.excluding(Exclusions::default(), on));
    }
    let def = |name: &str| lookup(name).map(|c| def_of(&c));
    match resolve(&roots, &def) {
        Ok(calendars) => Ok(trigger.excluding(calendars, on)),
        Err(problem) => Err(schedule_error(&problem)),
    }
}

/// A Calendar problem as the Schedule that uses it reports it.
fn schedule_error(problem: &CalendarProblem) -> TriggerError {
    let (value, kind) = match problem {
        CalendarProblem::NotFound { name, .. } => (name.clone(), TriggerErrorKind::CalendarNotFound),
        CalendarProblem::Cycle { cycle } => (cycle.join(" -> "), TriggerErrorKind::CalendarCycle),
        CalendarProblem::Invalid { calendar, .. } => (calendar.clone(), TriggerErrorKind::InvalidCalendar),
    };
    let message = match problem {
        CalendarProblem::NotFound { .. } => format!("{problem}; nothing fires until it does"),
        _ => format!("{problem}; nothing fires until it is fixed"),
    };
    TriggerError {
        field: "calendarRefs".into(),
        value,
        message,
        kind,
    }
}

/// A short hash of the exclusions in force and `onExcluded`, appended to the trigger hash: a
/// Calendar edit (or one of trigger.exclude, onExcluded) applies from the moment of the edit,
/// like a trigger edit. `None` without exclusions, so Schedules without any keep their hash.
pub fn exclusion_hash(trigger: &Trigger) -> Option<String> {
    let (exclusions, on) = trigger.exclusions()?;
    let text = format!("{on:?}|{}", exclusions.fingerprint());
    Some(
        Sha256::digest(text.as_bytes())
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A short hash of what the Schedule and its Task choose about exclusions (the Calendars they
/// name, `onExcluded`), apart from what those Calendars hold: when it changes, the Schedule or
/// its Task was edited; when only [`exclusion_hash`] changes, a Calendar was. `None` when
/// they name no Calendar and leave onExcluded at its default.
pub fn choice_hash(schedule: &Schedule, task: Option<&Task>) -> Option<String> {
    let roots = roots(schedule, task);
    let on = schedule.spec.on_excluded;
    if roots.is_empty() && on == crate::api::OnExcluded::default() {
        return None;
    }
    let text = format!("{on:?}|{}", roots.join(","));
    Some(
        Sha256::digest(text.as_bytes())
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The hash a Schedule keeps in `status.triggerHash`: its trigger's hash, then `-` and the
/// [`exclusion_hash`] when exclusions apply, then `-r` and the [`choice_hash`] when it or its
/// Task names Calendars. A change of any part is an edit, counted from the time of the write
/// that made it ([`Edited`]).
pub fn plan_hash(
    trigger_hash: String,
    trigger: &Trigger,
    schedule: &Schedule,
    task: Option<&Task>,
) -> String {
    let mut hash = trigger_hash;
    if let Some(exclusions) = exclusion_hash(trigger) {
        hash = format!("{hash}-{exclusions}");
    }
    if let Some(choice) = choice_hash(schedule, task) {
        // Not a hex digit: the parts are told apart by it.
        hash = format!("{hash}-r{choice}");
    }
    hash
}

/// Which object's edit changed a Schedule's [`plan_hash`]: its firing carries on from the
/// time of that object's edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edited {
    /// The trigger (the Schedule's spec).
    Trigger,
    /// The Calendars named or `onExcluded` (the Schedule's spec, or its Task's calendarRefs).
    Choice,
    /// What a Calendar it uses holds.
    Calendars,
}

/// What changed between the `old` and the `new` [`plan_hash`]; `None` when nothing did.
pub fn edited(old: &str, new: &str) -> Option<Edited> {
    if old == new {
        return None;
    }
    // (trigger, exclusions, choice) of a hash.
    let parts = |hash: &str| {
        let mut parts = hash.split('-');
        let trigger = parts.next().unwrap_or_default().to_string();
        let (mut exclusions, mut choice) = (None, None);
        for part in parts {
            match part.strip_prefix('r') {
                Some(c) => choice = Some(c.to_string()),
                None => exclusions = Some(part.to_string()),
            }
        }
        (trigger, exclusions, choice)
    };
    let (old, new) = (parts(old), parts(new));
    Some(if old.0 != new.0 {
        Edited::Trigger
    } else if old.2 != new.2 {
        Edited::Choice
    } else {
        Edited::Calendars
    })
}

/// The Calendars a Schedule uses, directly, through its Task or through Calendars that
/// include them (the ones that exist), each once.
pub fn in_use(
    schedule: &Schedule,
    task: Option<&Task>,
    lookup: &dyn Fn(&str) -> Option<Arc<Calendar>>,
) -> Vec<Arc<Calendar>> {
    let mut todo = roots(schedule, task);
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(calendar) = lookup(&name) {
            todo.extend(calendar.spec.ref_names());
            found.push(calendar);
        }
    }
    found
}

/// When the Calendars a Schedule uses last changed: the latest `managedFields[].time` of a
/// write to any of them that was not to its status (a Calendar created since counts from its
/// creation).
pub fn calendars_changed_at(
    schedule: &Schedule,
    task: Option<&Task>,
    lookup: &dyn Fn(&str) -> Option<Arc<Calendar>>,
) -> Option<DateTime<Utc>> {
    in_use(schedule, task, lookup)
        .iter()
        .filter_map(|c| {
            super::trim::spec_changed_at(c.as_ref()).or_else(|| c.metadata.creation_timestamp.clone())
        })
        .filter_map(|time| crate::pod::chrono_time(&time))
        .max()
}

/// True when the Schedule uses Calendar `name` of its namespace, directly or through Calendars
/// it includes (or through its Task).
pub fn uses(ctx: &Context, schedule: &Schedule, name: &str) -> bool {
    let namespace = schedule.namespace().unwrap_or_default();
    let task = schedule.task_name().and_then(|t| ctx.task(&namespace, t));
    let mut todo = roots(schedule, task.as_deref());
    let mut seen = HashSet::new();
    while let Some(next) = todo.pop() {
        if next == name {
            return true;
        }
        if seen.insert(next.clone())
            && let Some(calendar) = ctx.calendar(&namespace, &next)
        {
            todo.extend(calendar.spec.ref_names());
        }
    }
    false
}

/// Reconciles one Calendar: checks it and the Calendars it includes, counts the Schedules and
/// Tasks that name it, finds its next excluded day; requeues at the next local midnight, when
/// that day may change.
#[instrument(skip(calendar, ctx), fields(calendar = %calendar.name_any(), namespace = %calendar.namespace().unwrap_or_default()))]
pub async fn reconcile(calendar: Arc<Calendar>, ctx: Arc<Context>) -> Result<Action, Error> {
    if calendar.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(calendar.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let namespace = calendar.namespace().unwrap_or_default();
    let name = calendar.name_any();
    let now = ctx.now();
    let names = |refs: &[crate::api::CalendarRef]| refs.iter().any(|r| r.name == name);
    let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace.as_str());
    let schedules = ctx
        .stores
        .schedules
        .state()
        .iter()
        .filter(|s| in_namespace(s.namespace()) && names(&s.spec.calendar_refs))
        .count()
        + ctx
            .stores
            .tasks
            .state()
            .iter()
            .filter(|t| in_namespace(t.namespace()) && names(&t.spec.calendar_refs))
            .count();
    let def = |n: &str| ctx.calendar(&namespace, n).map(|c| def_of(&c));
    let resolved = resolve(std::slice::from_ref(&name), &def);
    let tz: Tz = calendar
        .spec
        .exclude
        .timezone
        .as_deref()
        .and_then(|z| z.trim().parse().ok())
        .unwrap_or(Tz::UTC);
    let today = now.with_timezone(&tz).date_naive();
    let (ok, reason, message) = match &resolved {
        Ok(_) => (
            true,
            "Valid",
            format!("{schedules} Schedule(s) and Task(s) name this Calendar"),
        ),
        Err(problem) => (false, problem.reason(), problem.to_string()),
    };
    let old = calendar.status.clone().unwrap_or_default();
    let mut status = CalendarStatus {
        observed_generation: calendar.metadata.generation,
        schedules: schedules as i32,
        next_excluded_day: resolved
            .as_ref()
            .ok()
            .and_then(|ex| ex.next_excluded_day(tz, today))
            .map(|d| d.to_string()),
        ..old.clone()
    };
    let previous = find_condition(&old.conditions, READY);
    let newly_failing = !ok && previous.is_none_or(|c| c.reason != reason);
    let condition = Condition::transition(
        previous,
        READY,
        ok,
        reason,
        message.clone(),
        calendar.metadata.generation,
        now,
    );
    set_condition(&mut status.conditions, condition);
    let written = ctx
        .status
        .patch(&ctx.client, calendar.as_ref(), &old, &status)
        .await?;
    if written && newly_failing {
        ctx.publish(calendar.as_ref(), Note::warning(reason, message))
            .await;
    }
    Ok(Action::requeue(until_next_day(now, tz)))
}

/// The time from `now` to the next local midnight of `tz` (at least a second).
fn until_next_day(now: DateTime<Utc>, tz: Tz) -> std::time::Duration {
    let tomorrow = now
        .with_timezone(&tz)
        .date_naive()
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|l| l.and_local_timezone(tz).earliest())
        .map(|t| t.to_utc())
        .unwrap_or(now + TimeDelta::days(1));
    (tomorrow - now)
        .to_std()
        .unwrap_or_default()
        .max(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_change_names_the_object_whose_edit_made_it() {
        assert_eq!(edited("t1-e1-rc1", "t1-e1-rc1"), None);
        assert_eq!(edited("t1-e1-rc1", "t2-e1-rc1"), Some(Edited::Trigger));
        assert_eq!(edited("t1-e1-rc1", "t2-e2-rc2"), Some(Edited::Trigger));
        // Calendars named or onExcluded: the Schedule or its Task.
        assert_eq!(edited("t1-e1-rc1", "t1-e2-rc2"), Some(Edited::Choice));
        assert_eq!(edited("t1", "t1-e1-rc1"), Some(Edited::Choice));
        assert_eq!(edited("t1-e1-rc1", "t1"), Some(Edited::Choice));
        // An exclusion hash that starts with `c` is not taken for the choice.
        assert_eq!(edited("0a-c4089-rc1", "0a-c4090-rc1"), Some(Edited::Calendars));
        // Only what the Calendars hold: a Calendar (one that was empty gains entries too).
        assert_eq!(edited("t1-e1-rc1", "t1-e2-rc1"), Some(Edited::Calendars));
        assert_eq!(edited("t1-rc1", "t1-e2-rc1"), Some(Edited::Calendars));
    }
}
