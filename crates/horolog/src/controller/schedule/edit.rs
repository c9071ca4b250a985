//! A trigger edit (or a Calendar edit): the cursor a pass plans from moves to the moment of
//! the edit, and the old trigger's fire times that passed before it are recorded as missed.

use chrono::{DateTime, Utc};
use horolog_core::trigger::Trigger;

use super::pass::{Pass, PlanOutcome, TaskLookup};
use crate::controller::calendar::{self, Edited};
use crate::controller::events::Note;
use crate::names::trigger_hash;

/// The cursor to plan from: status.cursor (lastFireTime for Schedules written before it
/// existed), or, when the trigger was edited, the time of the edit: the latest
/// `managedFields[].time` of a write to the Schedule itself (no later than now, no earlier
/// than the cursor), so an edit noticed late (the operator down, the Schedule paused) counts
/// from when it was made. The new trigger's fire times up to the edit are neither run nor
/// counted. The old trigger's fire times between the cursor and the edit are not stored
/// (only its next few, in `upcomingFireTimes`): those known are recorded as missed, with an
/// Event that says so (at least that many when all of them had passed). A Calendar edit
/// changes the hash too and applies from the time of the Calendar's edit; an edit of the
/// Calendars named or of onExcluded from the Schedule's (or its Task's) edit.
pub fn cursor(pass: &mut Pass<'_>, trigger: &Trigger, outcome: &mut PlanOutcome) -> Option<DateTime<Utc>> {
    let task = match pass.input.task {
        TaskLookup::Found(task) => Some(task),
        _ => None,
    };
    let schedule = pass.input.schedule;
    let hash = calendar::plan_hash(trigger_hash(&schedule.spec.trigger), trigger, schedule, task);
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
        let passed: Vec<DateTime<Utc>> = pass
            .old
            .upcoming_fire_times
            .iter()
            .copied()
            .filter(|t| cursor.is_none_or(|c| *t > c) && *t <= edited)
            .collect();
        if !passed.is_empty() {
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
        pass.events.push(Note::normal(
            "TriggerChanged",
            format!("the trigger changed; it fires from {} on", edited.to_rfc3339()),
        ));
        cursor = Some(edited);
    }
    pass.status.trigger_hash = Some(hash);
    cursor
}

/// The latest time the object's spec may have changed (see `trim::spec_changed_at`).
fn changed_at(object: &impl kube::Resource) -> Option<DateTime<Utc>> {
    crate::controller::trim::spec_changed_at(object).and_then(|time| crate::pod::chrono_time(&time))
}
