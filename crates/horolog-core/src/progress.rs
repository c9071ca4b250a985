//! Where a Schedule stands on its trigger: the rules the operator fires by and the kubectl
//! plugin reports by, so that `kubectl horolog next` and `status` show what the operator will
//! do rather than a copy of it.
//!
//! - [`with_calendars`]: the trigger with the Schedule's Calendars applied, or why it must not
//!   fire (a Calendar missing, invalid or in a cycle: fail closed);
//! - [`plan_hash`]: the hash kept in `status.triggerHash`; when it changes, the trigger, the
//!   Calendars chosen or what they hold was edited ([`edited`] says which), and firing carries
//!   on from that edit ([`edited_cursor`]);
//! - [`Progress`]: the cursor, `firedCount` and `maxRuns`: how many runs maxRuns leaves, the
//!   next fire times, and whether the Schedule has [`Finished`].
//!
//! Everything here is a function of its arguments: the caller passes the instant of an edit.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::exclusion::{CalendarDef, CalendarProblem, Exclusions, resolve};
use crate::plan;
use crate::spec::OnExcluded;
use crate::trigger::{Trigger, TriggerError, TriggerErrorKind};

/// `trigger` with the Calendars named by `roots` (a Schedule's own calendarRefs, then its
/// Task's; each once) and every Calendar they include excluded, `on` deciding what an excluded
/// fire time becomes. `lookup` finds a Calendar of the namespace by name. A Calendar that does
/// not exist, is invalid or is part of a cycle is an error on `calendarRefs`: the Schedule
/// must not fire until it is fixed.
pub fn with_calendars(
    trigger: Trigger,
    roots: &[String],
    on: OnExcluded,
    lookup: &dyn Fn(&str) -> Option<CalendarDef>,
) -> Result<Trigger, TriggerError> {
    if roots.is_empty() {
        return Ok(trigger.excluding(Exclusions::default(), on));
    }
    match resolve(roots, lookup) {
        Ok(calendars) => Ok(trigger.excluding(calendars, on)),
        Err(problem) => Err(calendar_error(&problem)),
    }
}

/// A Calendar problem as the Schedule that uses it reports it: on `calendarRefs`.
fn calendar_error(problem: &CalendarProblem) -> TriggerError {
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

/// Eight hex digits of the SHA-256 of `text`: enough to tell edits apart in a status field.
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short hash of the exclusions in force and `onExcluded`: a Calendar edit (or one of
/// trigger.exclude, onExcluded) applies from the moment of the edit, like a trigger edit.
/// `None` without exclusions, so Schedules without any keep the trigger's own hash.
pub fn exclusion_hash(trigger: &Trigger) -> Option<String> {
    let (exclusions, on) = trigger.exclusions()?;
    let text = format!("{on:?}|{}", exclusions.fingerprint());
    Some(short_hash(&text))
}

/// A short hash of what a Schedule and its Task choose about exclusions (the Calendars they
/// name, `roots`, and `onExcluded`), apart from what those Calendars hold: when it changes, the
/// Schedule or its Task was edited; when only [`exclusion_hash`] changes, a Calendar was.
/// `None` when they name no Calendar and leave onExcluded at its default.
pub fn choice_hash(roots: &[String], on: OnExcluded) -> Option<String> {
    if roots.is_empty() && on == OnExcluded::default() {
        return None;
    }
    let text = format!("{on:?}|{}", roots.join(","));
    Some(short_hash(&text))
}

/// The hash kept in `status.triggerHash`: the trigger spec's own hash (`spec_hash`), then
/// `-` and the [`exclusion_hash`] when exclusions are in force, then `-r` and the
/// [`choice_hash`] when the Schedule names Calendars or sets onExcluded.
pub fn plan_hash(spec_hash: &str, trigger: &Trigger, roots: &[String], on: OnExcluded) -> String {
    let mut hash = spec_hash.to_string();
    if let Some(exclusions) = exclusion_hash(trigger) {
        hash = format!("{hash}-{exclusions}");
    }
    if let Some(choice) = choice_hash(roots, on) {
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

/// The cursor after a trigger edit made at `edited_at`: the new trigger fires after the edit,
/// never before the old cursor (a cursor never moves back).
pub fn edited_cursor(cursor: Option<DateTime<Utc>>, edited_at: DateTime<Utc>) -> DateTime<Utc> {
    cursor.map_or(edited_at, |cursor| cursor.max(edited_at))
}

/// Why a Schedule fires no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// It fired `maxRuns` times.
    MaxRuns,
    /// Its trigger (with its exclusions) has no fire time after the cursor.
    Exhausted,
}

/// Where a Schedule stands: the instant it has planned up to, how many runs it fired, and the
/// cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `status.cursor` (the last fire time planned; `None` before the first plan).
    pub cursor: Option<DateTime<Utc>>,
    /// `status.firedCount`: the runs created for fire times (run-now and backfill runs apart).
    pub fired_count: i64,
    /// `spec.maxRuns`.
    pub max_runs: Option<i64>,
}

impl Progress {
    /// How many more runs maxRuns allows (`usize::MAX` without it; 0 once reached, also when
    /// more were fired than allowed).
    pub fn remaining(&self) -> usize {
        self.max_runs.map_or(usize::MAX, |max| {
            usize::try_from(max.saturating_sub(self.fired_count)).unwrap_or(0)
        })
    }

    /// True once the Schedule fired maxRuns times.
    pub fn max_runs_reached(&self) -> bool {
        self.remaining() == 0
    }

    /// Why the Schedule fires no more, if it does not: maxRuns first, then the trigger.
    pub fn finished(&self, trigger: &Trigger) -> Option<Finished> {
        if self.max_runs_reached() {
            Some(Finished::MaxRuns)
        } else if trigger.next_after(self.cursor).is_none() {
            Some(Finished::Exhausted)
        } else {
            None
        }
    }

    /// The next `count` fire times after the cursor, at most as many as maxRuns leaves.
    pub fn upcoming(&self, trigger: &Trigger, count: usize) -> Vec<DateTime<Utc>> {
        plan::upcoming(trigger, self.cursor, count.min(self.remaining()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ExclusionSpec, TriggerSpec};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hourly() -> Trigger {
        let spec = TriggerSpec {
            cron: Some("0 * * * *".into()),
            ..TriggerSpec::default()
        };
        Trigger::compile(&spec, at("2026-01-01T00:00:00Z")).unwrap()
    }

    fn holiday(day: &str) -> CalendarDef {
        CalendarDef {
            spec: ExclusionSpec {
                days: vec![day.into()],
                ..ExclusionSpec::default()
            },
            refs: Vec::new(),
        }
    }

    #[test]
    fn max_runs_caps_the_upcoming_fire_times_and_finishes_the_schedule() {
        let mut progress = Progress {
            cursor: Some(at("2026-01-01T10:00:00Z")),
            fired_count: 2,
            max_runs: Some(3),
        };
        assert_eq!(progress.remaining(), 1);
        assert_eq!(progress.upcoming(&hourly(), 5), [at("2026-01-01T11:00:00Z")]);
        assert_eq!(progress.finished(&hourly()), None);
        progress.fired_count = 3;
        assert!(progress.max_runs_reached());
        assert!(progress.upcoming(&hourly(), 5).is_empty());
        assert_eq!(progress.finished(&hourly()), Some(Finished::MaxRuns));
        progress.fired_count = 7;
        assert_eq!(
            progress.remaining(),
            0,
            "fired more than allowed: none left, no overflow"
        );
        progress.max_runs = None;
        assert_eq!(progress.remaining(), usize::MAX);
        assert_eq!(progress.upcoming(&hourly(), 2).len(), 2);
    }

    #[test]
    fn a_trigger_without_fire_times_after_the_cursor_is_exhausted() {
        let spec = TriggerSpec {
            date: Some(at("2026-01-01T05:00:00Z").fixed_offset()),
            ..TriggerSpec::default()
        };
        let once = Trigger::compile(&spec, at("2026-01-01T00:00:00Z")).unwrap();
        let mut progress = Progress::default();
        assert_eq!(progress.finished(&once), None);
        progress.cursor = Some(at("2026-01-01T05:00:00Z"));
        assert_eq!(progress.finished(&once), Some(Finished::Exhausted));
    }

    #[test]
    fn an_edit_moves_the_cursor_to_its_instant_but_never_back() {
        let edit = at("2026-03-01T10:30:00Z");
        assert_eq!(edited_cursor(Some(at("2026-01-01T10:00:00Z")), edit), edit);
        assert_eq!(edited_cursor(None, edit), edit);
        let later = at("2026-04-01T00:00:00Z");
        assert_eq!(edited_cursor(Some(later), edit), later);
        assert_eq!(edited("a", "b"), Some(Edited::Trigger));
        assert_eq!(edited("a", "a"), None);
        assert_eq!(edited("a-1234", "a-5678"), Some(Edited::Calendars));
        assert_eq!(edited("a-1234-rab", "a-1234-rcd"), Some(Edited::Choice));
    }

    #[test]
    fn the_plan_hash_tells_a_calendar_edit_from_a_choice_edit() {
        let none: [String; 0] = [];
        assert_eq!(
            plan_hash("abc", &hourly(), &none, OnExcluded::Skip),
            "abc",
            "nothing chosen: the spec's hash"
        );
        let lookup = |name: &str| (name == "h").then(|| holiday("2026-01-02"));
        let roots = ["h".to_string()];
        let excluded = with_calendars(hourly(), &roots, OnExcluded::Skip, &lookup).unwrap();
        let hash = plan_hash("abc", &excluded, &roots, OnExcluded::Skip);
        let following = with_calendars(hourly(), &roots, OnExcluded::Following, &lookup).unwrap();
        let by_choice = plan_hash("abc", &following, &roots, OnExcluded::Following);
        assert_eq!(
            edited(&hash, &by_choice),
            Some(Edited::Choice),
            "onExcluded is the Schedule's choice"
        );
        let other = |name: &str| (name == "h").then(|| holiday("2026-01-03"));
        let edited_calendar = with_calendars(hourly(), &roots, OnExcluded::Skip, &other).unwrap();
        let by_calendar = plan_hash("abc", &edited_calendar, &roots, OnExcluded::Skip);
        assert_eq!(edited(&hash, &by_calendar), Some(Edited::Calendars));
        let by_trigger = plan_hash("xyz", &excluded, &roots, OnExcluded::Skip);
        assert_eq!(edited(&hash, &by_trigger), Some(Edited::Trigger));
    }

    #[test]
    fn calendars_apply_and_a_missing_one_stops_the_schedule_on_calendar_refs() {
        let lookup = |name: &str| (name == "h").then(|| holiday("2026-01-02"));
        let trigger = with_calendars(hourly(), &["h".into()], OnExcluded::Skip, &lookup).unwrap();
        assert_eq!(
            trigger.next_after(Some(at("2026-01-01T23:30:00Z"))),
            Some(at("2026-01-03T00:00:00Z")),
            "the whole of Jan 2 is excluded"
        );
        let missing = with_calendars(hourly(), &["gone".into()], OnExcluded::Skip, &lookup).unwrap_err();
        assert_eq!(missing.field, "calendarRefs");
        assert_eq!(missing.value, "gone");
        assert_eq!(missing.kind, TriggerErrorKind::CalendarNotFound);
        let cycle = |name: &str| {
            Some(CalendarDef {
                refs: vec![if name == "a" { "b".into() } else { "a".into() }],
                ..CalendarDef::default()
            })
        };
        let err = with_calendars(hourly(), &["a".into()], OnExcluded::Skip, &cycle).unwrap_err();
        assert_eq!(
            (err.kind, err.value.as_str()),
            (TriggerErrorKind::CalendarCycle, "a -> b -> a")
        );
    }
}
