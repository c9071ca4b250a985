//! A trigger edit: the old trigger, with the moment of the edit, is kept for the next pass
//! that fires, which plans its fire times up to the edit by its rule (see
//! `fire::replaced_segment`); the new trigger fires from the edit on.

use chrono::{DateTime, Utc};
use horolog_core::trigger::Trigger;

use super::pass::{Pass, PlanOutcome};
use crate::api::{ReplacedTrigger, TriggerSpec};
use crate::controller::calendar::exclusion_hash;
use crate::controller::events::Note;
use crate::names::trigger_hash;

/// The cursor to plan from: status.cursor (lastFireTime for Schedules written before it
/// existed). When the trigger was edited, the old trigger (the copy in
/// `status.plannedTrigger`) is recorded in `status.replacedTriggers` with the time of the
/// edit: the latest `managedFields[].time` of a write to the Schedule itself (no later than
/// now, no earlier than the cursor), so an edit noticed late (the operator down) counts from
/// when it was made, and one seen while the Schedule does not fire (paused) keeps the moment
/// it was seen, whatever writes (the resume) follow. The next pass that fires plans the old
/// trigger's fire times up to the edit by its rule (`fire::replaced_segment`), then the new
/// trigger's from the edit on. A status written before the copy existed has only the old
/// trigger's next few fire times (`upcomingFireTimes`): those that passed before the edit are
/// recorded as missed, and firing carries on from the edit. A Calendar edit changes the hash
/// too; the trigger itself is the same, so it plans on from the cursor with the Calendars in
/// force.
pub fn cursor(pass: &mut Pass<'_>, trigger: &Trigger, outcome: &mut PlanOutcome) -> Option<DateTime<Utc>> {
    let spec = &pass.input.schedule.spec.trigger;
    let mut hash = trigger_hash(spec);
    // A Calendar edit applies from the moment of the edit too.
    if let Some(exclusions) = exclusion_hash(trigger) {
        hash = format!("{hash}-{exclusions}");
    }
    let spec_value = serde_json::to_value(spec).ok();
    let mut cursor = pass.old.cursor.or(pass.old.last_fire_time);
    if pass.old.trigger_hash.as_ref().is_some_and(|h| *h != hash) {
        let now = pass.input.now;
        let edited = crate::controller::trim::spec_changed_at(pass.input.schedule)
            .and_then(|time| crate::pod::chrono_time(&time))
            .filter(|time| *time <= now)
            .unwrap_or(now)
            .max(cursor.unwrap_or(DateTime::<Utc>::MIN_UTC));
        match pass.old.planned_trigger.clone() {
            // Only the Calendars changed: the trigger's fire times go on from the cursor.
            Some(old) if Some(&old) == spec_value.as_ref() => {}
            Some(old) => {
                if cursor.is_none_or(|cursor| cursor < edited) {
                    pass.status.replaced_triggers.push(ReplacedTrigger {
                        trigger: old,
                        until: edited,
                    });
                }
            }
            None => {
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

/// For a status without a copy of the old trigger: its known fire times (the next few, in
/// `upcomingFireTimes`) between the cursor and the edit, recorded as missed with an Event.
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
