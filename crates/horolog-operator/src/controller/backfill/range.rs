//! A Backfill's range of fire times, and how the Schedule's trigger is read for it.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use horolog_core::plan::FireTimes;
use horolog_core::trigger::Trigger;

use crate::api::{Backfill, TriggerSpec};

/// The default start a Backfill compiles the Schedule's trigger with. The Schedule uses its
/// creation time; a backfill may reach further back, as if the Schedule had existed then:
/// an `interval` trigger's grid is extended backwards (so the names match the Schedule's
/// own runs), any other trigger is read from `from`. A `trigger.startTime` always wins.
pub fn trigger_origin(spec: &TriggerSpec, created: DateTime<Utc>, from: DateTime<Utc>) -> DateTime<Utc> {
    if from >= created || spec.start_time.is_some() {
        return created;
    }
    let Some(period) = spec.interval else {
        return from;
    };
    let period_ns = period.as_std().as_nanos() as i128;
    let behind_ns = (created - from).num_nanoseconds().map(i128::from);
    match behind_ns {
        Some(behind) if period_ns > 0 => {
            let periods = (behind + period_ns - 1) / period_ns;
            i64::try_from(periods * period_ns)
                .ok()
                .and_then(|ns| created.checked_sub_signed(TimeDelta::nanoseconds(ns)))
                .unwrap_or(from)
        }
        _ => from,
    }
}

/// True when `count`, counted with `scan_limit`, is exact: below the limit every trigger
/// counts exactly, past it only an `interval` or `calendarInterval` trigger (which counts
/// arithmetically, see `Trigger::due_between`).
pub(super) fn count_is_exact(spec: &TriggerSpec, count: i64, scan_limit: usize) -> bool {
    count < scan_limit as i64 || spec.interval.is_some() || spec.calendar_interval.is_some()
}

/// A Backfill's range `[from, to)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Range {
    pub(super) fn of(backfill: &Backfill) -> Range {
        Range {
            from: backfill.spec.from,
            to: backfill.spec.to,
        }
    }

    /// The instant just before `from`: the fire times after it are the range's.
    pub(super) fn after(self) -> DateTime<Utc> {
        self.from - TimeDelta::nanoseconds(1)
    }

    pub(super) fn contains(self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }

    /// How many fire times the range holds, and whether that is exact.
    pub(super) fn count(self, trigger: &Trigger, scan_limit: usize) -> (i64, bool) {
        if self.to <= self.from {
            return (0, true);
        }
        // `due_between` counts (after, until]; the range is [from, to).
        let due = trigger.due_between(
            Some(self.after()),
            self.to - TimeDelta::nanoseconds(1),
            0,
            scan_limit,
        );
        (i64::try_from(due.count).unwrap_or(i64::MAX), due.exact)
    }

    /// The first fire time of the range after `cursor` (from its start for `None`).
    pub(super) fn next_after(
        self,
        trigger: &Trigger,
        cursor: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let after = cursor.unwrap_or(self.after()).max(self.after());
        FireTimes::next_after(trigger, Some(after)).filter(|t| *t > after && *t < self.to)
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", rfc3339(self.from), rfc3339(self.to))
    }
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
