//! A trigger edit: the old trigger, with the moment of the edit, is kept for the next pass
//! that fires, which plans its fire times up to the edit by its rule (see
//! `fire::fire`); the new trigger fires from the edit on. A Calendar edit (or one
//! of the Calendars named): the cursor moves to the moment of the edit, and the fire times
//! that passed before it are recorded as missed.

use chrono::{DateTime, Utc};
use horolog_core::trigger::Trigger;

use super::pass::{Pass, PlanOutcome, TaskLookup};
use crate::api::{ReplacedTrigger, TriggerSpec};
use crate::controller::calendar::{self, Edited};
use crate::controller::events::Note;
use crate::names::trigger_hash;

/// The cursor to plan from: status.cursor (lastFireTime for Schedules written before it
/// existed). When the trigger was edited, the old trigger (the copy in
/// `status.plannedTrigger`) is recorded in `status.replacedTriggers` with the time of the
/// edit: the latest `managedFields[].time` of a write to the Schedule itself (no later than
/// now, no earlier than the cursor), so an edit noticed late (the operator down) counts from
/// when it was made, and one seen while the Schedule does not fire (paused) keeps the moment
/// it was seen, whatever writes (the resume) follow. The next pass that fires plans the old
/// trigger's fire times up to the edit by its rule (`fire::fire`), then the new
/// trigger's from the edit on. A status written before the copy existed, and a Calendar edit
/// (the time of the Calendar's edit) or an edit of the Calendars named or of onExcluded (the
/// Schedule's or its Task's edit), move the cursor to the edit: the fire times known to have
/// passed before it (`upcomingFireTimes`) are recorded as missed, with an Event.
pub fn cursor(pass: &mut Pass<'_>, trigger: &Trigger, outcome: &mut PlanOutcome) -> Option<DateTime<Utc>> {
    let task = match pass.input.task {
        TaskLookup::Found(task) => Some(task),
        _ => None,
    };
    let schedule = pass.input.schedule;
    let hash = calendar::plan_hash(trigger_hash(&schedule.spec.trigger), trigger, schedule, task);
    let spec_value = serde_json::to_value(&schedule.spec.trigger).ok();
    let mut cursor = pass.old.cursor.or(pass.old.last_fire_time);
    if let Some(what) = pass
        .old
        .trigger_hash
        .as_ref()
        .and_then(|old| calendar::edited(old, &hash))
    {
        let now = pass.input.now;
        let edited_at = match what {
            Edited::Trigger => changed_at(schedule),
            Edited::Choice => changed_at(schedule).max(task.and_then(changed_at)),
            Edited::Calendars => pass.input.calendars_changed_at,
        };
        let edited = edited_at
            .filter(|time| *time <= now)
            .unwrap_or(now)
            .max(cursor.unwrap_or(DateTime::<Utc>::MIN_UTC));
        match (what, pass.old.planned_trigger.clone()) {
            (Edited::Trigger, Some(old)) if Some(&old) != spec_value.as_ref() => {
                if cursor.is_none_or(|cursor| cursor < edited) {
                    pass.status.replaced_triggers.push(ReplacedTrigger {
                        trigger: old,
                        until: edited,
                    });
                }
            }
            _ => {
                missed_before_edit(pass, cursor, edited, outcome);
                cursor = Some(edited);
            }
        }
        pass.events.push(Note::normal(
            "TriggerChanged",
            format!("the trigger changed; it fires from {} on", edited.to_rfc3339()),
        ));
    }
    pass.status.trigger_hash = Some(hash);
    pass.status.planned_trigger = spec_value;
    cursor
}

/// Without a copy of the old trigger (or for a Calendar edit): its known fire times (the next
/// few, in `upcomingFireTimes`) between the cursor and the edit, recorded as missed with an
/// Event.
fn missed_before_edit(
    pass: &mut Pass<'_>,
    cursor: Option<DateTime<Utc>>,
    edited: DateTime<Utc>,
    outcome: &mut PlanOutcome,
) {
    let passed: Vec<DateTime<Utc>> = pass
        .old
        .upcoming_fire_times
        .iter()
        .copied()
        .filter(|t| cursor.is_none_or(|c| *t > c) && *t <= edited)
        .collect();
    if passed.is_empty() {
        return;
    }
    let at_least = if passed.len() == pass.old.upcoming_fire_times.len() {
        "at least "
    } else {
        ""
    };
    let count = passed.len() as i64;
    pass.status.missed_fire_times += count;
    pass.status.last_fire_time = pass.status.last_fire_time.max(passed.last().copied());
    outcome.missed += count;
    pass.events.push(Note::warning(
        "Missed",
        format!(
            "{at_least}{count} fire time(s) of the previous trigger, from {} to {}, passed before the edit while no operator planned them: recorded as missed",
            passed[0].to_rfc3339(),
            passed[passed.len() - 1].to_rfc3339()
        ),
    ));
}

/// The trigger `replaced` holds, compiled, with the Calendars in force now (those of
/// `current`). One that no longer compiles (written by an older operator) plans nothing: a
/// Warning Event says so.
pub fn replaced_trigger(
    pass: &mut Pass<'_>,
    current: &Trigger,
    replaced: &ReplacedTrigger,
) -> Option<Trigger> {
    let created = pass.input.schedule.created_at().unwrap_or(pass.input.now);
    let compiled = serde_json::from_value::<TriggerSpec>(replaced.trigger.clone())
        .map_err(|err| err.to_string())
        .and_then(|spec| Trigger::compile(&spec, created).map_err(|err| err.to_string()));
    match compiled {
        Ok(old) => Some(match current.exclusions() {
            Some((exclusions, on)) => old.excluding(exclusions.clone(), on),
            None => old,
        }),
        Err(err) => {
            pass.events.push(Note::warning(
                "Missed",
                format!(
                    "the trigger replaced at {} cannot be read ({err}): its fire times before the edit were not planned",
                    replaced.until.to_rfc3339()
                ),
            ));
            None
        }
    }
}

/// The latest time the object's spec may have changed (see `trim::spec_changed_at`).
fn changed_at(object: &impl kube::Resource) -> Option<DateTime<Utc>> {
    crate::controller::trim::spec_changed_at(object).and_then(|time| crate::pod::chrono_time(&time))
}
