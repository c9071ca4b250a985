//! Calendars: the Calendar reconciler (status only: whether it and the Calendars it includes
//! are valid, how many Schedules and Tasks name it, its next excluded day), and how a Schedule
//! applies its Calendars to its trigger. The rules themselves are in
//! `horolog_core::exclusion`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Days, TimeDelta, Utc};
use chrono_tz::Tz;
use horolog_core::exclusion::{CalendarDef, resolve};
use horolog_core::progress;
use horolog_core::trigger::{Trigger, TriggerError};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::instrument;

use super::events::Note;
use super::{Context, Error};
use crate::api::{Calendar, CalendarStatus, Condition, Schedule, Task, find_condition, set_condition};

/// The condition type of a Calendar.
pub use crate::api::READY;

/// The Calendars a Schedule names directly: its own calendarRefs, then its Task's.
pub fn roots(schedule: &Schedule, task: Option<&Task>) -> Vec<String> {
    schedule.calendar_roots(task)
}

/// A Calendar as the resolver sees it.
pub fn def_of(calendar: &Calendar) -> CalendarDef {
    calendar.spec.def()
}

/// The Schedule's trigger with its Calendars (its own, its Task's and the ones they include)
/// and its `onExcluded` applied; or why it must not fire (`horolog_core::progress`).
pub fn with_calendars(
    trigger: Trigger,
    schedule: &Schedule,
    task: Option<&Task>,
    lookup: &dyn Fn(&str) -> Option<Arc<Calendar>>,
) -> Result<Trigger, TriggerError> {
    let def = |name: &str| lookup(name).map(|c| def_of(&c));
    progress::with_calendars(trigger, &roots(schedule, task), schedule.spec.on_excluded, &def)
}

/// The hash kept in `status.triggerHash` for `schedule`: the rule is
/// `horolog_core::progress::plan_hash`, with the Calendars the Schedule and its Task name.
pub fn plan_hash(
    trigger_hash: String,
    trigger: &Trigger,
    schedule: &Schedule,
    task: Option<&Task>,
) -> String {
    progress::plan_hash(
        &trigger_hash,
        trigger,
        &roots(schedule, task),
        schedule.spec.on_excluded,
    )
}

pub use horolog_core::progress::{Edited, edited};

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
