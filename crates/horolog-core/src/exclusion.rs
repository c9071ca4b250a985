//! Exclusions: Calendars (holidays, business days, blackout windows) and a trigger's inline
//! `exclude`, compiled into [`Exclusions`], and what they do to a trigger's fire times.
//!
//! A time is excluded when any source excludes it: a whole local day of `days` (a sorted list,
//! found by binary search), a half-open range of `ranges` (merged into sorted disjoint ranges,
//! binary search), or a `recurring` entry of APScheduler cron fields (every field it gives
//! matches; the fields it leaves out match everything). Each source reads local times in its
//! own time zone.
//!
//! What an excluded fire time becomes is `onExcluded` ([`OnExcluded`]):
//!
//! - `Skip`: nothing; it is counted as excluded.
//! - `Following` / `Preceding`: the same local time (in the trigger's zone) of the next /
//!   previous day on which that local time is not excluded, at most [`MAX_SHIFT_DAYS`] away
//!   (else skipped and counted), as the business-day conventions of finance calendars do.
//!   Several fire times that land on one instant make one fire time; the others are counted as
//!   merged ([`Fate::Merged`]). A shift never leaves the trigger's window
//!   ([`Trigger::window`](crate::trigger::Trigger::window)): a fire time whose first free day
//!   is after the trigger's end (or, for Preceding, before its start) is skipped and counted.
//!
//! The fire-time stream after exclusion is stateless like the trigger's own: `next_after(t)`
//! is a function of `t`. For Following it replays the fire times of the days since the last
//! day no exclusion touches (at most 31 days back, usually none), for Preceding those of the
//! days up to the next such day; fire times on days no exclusion touches are never visited
//! one by one. Every search is bounded ([`MAX_STEPS`]): a trigger whose next 10,000 fire days
//! are all excluded counts as exhausted.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use crate::spec::{ExclusionSpec, OnExcluded};
use crate::trigger::cron::CronSchedule;
use crate::trigger::zone;
use crate::trigger::{TriggerError, TriggerErrorKind};

/// How far Following / Preceding move a fire time at most, in days.
pub const MAX_SHIFT_DAYS: u64 = 31;
/// The bound on every search over days or fire times.
pub const MAX_STEPS: usize = 10_000;

/// One compiled source of exclusions: a Calendar, or a trigger's inline `exclude`.
#[derive(Debug, Clone)]
struct Source {
    /// The Calendar's name, or `trigger.exclude`.
    name: String,
    tz: Tz,
    /// Sorted, without duplicates.
    days: Vec<NaiveDate>,
    /// Sorted and disjoint (overlapping and touching ranges are merged).
    ranges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The pattern and the index of its least significant field (0 = year .. 7 = second).
    recurring: Vec<(CronSchedule, usize)>,
    /// What it excludes, canonically: changes exactly when its fire times may change.
    fingerprint: String,
}

/// A compiled set of exclusions: the union of its sources.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    sources: Vec<Source>,
}

impl Exclusions {
    /// Compiles one source. `name` names it in answers (a Calendar's name); `path` prefixes the
    /// field in errors (`spec` for a Calendar, `trigger.exclude` inline); `default_tz` applies
    /// when the spec sets no timezone.
    pub fn compile(
        name: &str,
        path: &str,
        spec: &ExclusionSpec,
        default_tz: Tz,
    ) -> Result<Exclusions, TriggerError> {
        let tz = match spec.timezone.as_deref() {
            None => default_tz,
            Some(text) => text.trim().parse::<Tz>().map_err(|_| TriggerError {
                field: format!("{path}.timezone"),
                value: text.to_string(),
                message: "unknown time zone; use an IANA name such as America/New_York or UTC".into(),
                kind: TriggerErrorKind::InvalidTimezone,
            })?,
        };
        let mut days = spec
            .days
            .iter()
            .enumerate()
            .map(|(i, text)| {
                NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                    .map_err(|_| invalid(format!("{path}.days[{i}]"), text, "not a date; write YYYY-MM-DD"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        days.sort_unstable();
        days.dedup();
        let mut ranges = Vec::with_capacity(spec.ranges.len());
        for (i, range) in spec.ranges.iter().enumerate() {
            let from = instant(tz, &range.from)
                .ok_or_else(|| invalid(format!("{path}.ranges[{i}].from"), &range.from, POINT_FORMS))?;
            let to = instant(tz, &range.to)
                .ok_or_else(|| invalid(format!("{path}.ranges[{i}].to"), &range.to, POINT_FORMS))?;
            if to <= from {
                return Err(invalid(
                    format!("{path}.ranges[{i}].to"),
                    &range.to,
                    format!("must be after from ({})", range.from),
                ));
            }
            ranges.push((from, to));
        }
        let recurring = spec
            .recurring
            .iter()
            .enumerate()
            .map(|(i, fields)| {
                let field = format!("{path}.recurring[{i}]");
                if *fields == Default::default() {
                    return Err(invalid(
                        field,
                        "{}",
                        "give at least one field; an empty entry would exclude every time",
                    ));
                }
                CronSchedule::matcher(&field, fields)
                    .map_err(|(field, value, message)| invalid(field, value, message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ranges = merge(ranges);
        let fingerprint = format!(
            "{name}|{}|{}|{}|{}",
            tz.name(),
            days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
            ranges
                .iter()
                .map(|(from, to)| format!("{}/{}", from.timestamp(), to.timestamp()))
                .collect::<Vec<_>>()
                .join(","),
            spec.recurring
                .iter()
                .map(|f| {
                    f.in_order()
                        .map(|v| v.as_ref().map_or("", |v| v.as_str().trim()))
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join(","),
        );
        Ok(Exclusions {
            sources: vec![Source {
                name: name.to_string(),
                tz,
                days,
                ranges,
                recurring,
                fingerprint,
            }],
        })
    }

    /// The union of two sets of exclusions.
    pub fn union(mut self, other: Exclusions) -> Exclusions {
        self.sources.extend(other.sources);
        self
    }

    /// True when nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.sources
            .iter()
            .all(|s| s.days.is_empty() && s.ranges.is_empty() && s.recurring.is_empty())
    }

    /// A canonical text of everything excluded: it changes exactly when an edit may change
    /// which fire times are excluded.
    pub fn fingerprint(&self) -> String {
        self.sources
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The names of the sources, in order.
    pub fn names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name.as_str()).collect()
    }

    /// The source that excludes `t`, if one does.
    pub fn excluded_by(&self, t: DateTime<Utc>) -> Option<&str> {
        self.sources
            .iter()
            .find(|s| s.excludes(t))
            .map(|s| s.name.as_str())
    }

    /// An instant after `t` up to which (exclusive) every instant is excluded, when `t` is.
    fn excluded_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.sources.iter().filter_map(|s| s.excluded_until(t)).max()
    }

    /// True when some instant of `[start, end)` is excluded.
    pub fn touches(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < end && self.sources.iter().any(|s| s.touches(start, end))
    }

    /// The first local day of `tz` from `from` on (at most a year ahead) that some exclusion
    /// touches.
    pub fn next_excluded_day(&self, tz: Tz, from: NaiveDate) -> Option<NaiveDate> {
        (0..=366u64)
            .filter_map(|i| from.checked_add_days(Days::new(i)))
            .find(|d| {
                let (start, end) = (day_start(tz, *d), day_start(tz, d.succ_opt().unwrap_or(*d)));
                self.touches(start, end)
            })
    }
}

const POINT_FORMS: &str =
    "not a time; write a local time YYYY-MM-DDTHH:MM:SS (or a date YYYY-MM-DD) or RFC 3339 with an offset";

fn invalid(field: String, value: impl Into<String>, message: impl Into<String>) -> TriggerError {
    TriggerError {
        field,
        value: value.into(),
        message: message.into(),
        kind: TriggerErrorKind::InvalidCalendar,
    }
}

/// An RFC 3339 instant, or a local time (or date: its midnight) of `tz`.
fn instant(tz: Tz, text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })?;
    Some(zone::first_instant(tz, local))
}

fn merge(mut ranges: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    ranges.sort_unstable();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// The first instant of local day `d` in `tz`.
fn day_start(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    zone::first_instant(tz, d.and_time(NaiveTime::MIN))
}

fn whole_second(l: NaiveDateTime) -> NaiveDateTime {
    l.with_nanosecond(0).unwrap_or(l)
}

impl Source {
    fn excludes(&self, t: DateTime<Utc>) -> bool {
        self.day_of(t) || self.range_of(t).is_some() || self.pattern_of(t).is_some()
    }

    fn day_of(&self, t: DateTime<Utc>) -> bool {
        !self.days.is_empty() && self.days.binary_search(&zone::local(self.tz, t).date()).is_ok()
    }

    fn range_of(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = self.ranges.partition_point(|r| r.0 <= t);
        (i > 0 && self.ranges[i - 1].1 > t).then(|| self.ranges[i - 1].1)
    }

    /// The least significant field of the first recurring entry matching `t`.
    fn pattern_of(&self, t: DateTime<Utc>) -> Option<usize> {
        if self.recurring.is_empty() {
            return None;
        }
        let l = whole_second(zone::local(self.tz, t));
        self.recurring
            .iter()
            .filter(|(cron, _)| cron.matches(l))
            .map(|(_, least)| *least)
            .max()
    }

    fn excluded_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let l = zone::local(self.tz, t);
        let end_of = |unit: NaiveDateTime| Some(zone::first_instant(self.tz, unit)).filter(|u| *u > t);
        let day_end = || end_of(l.date().succ_opt()?.and_time(NaiveTime::MIN));
        let mut until = None;
        if self.day_of(t) {
            until = until.max(day_end());
        }
        until = until.max(self.range_of(t));
        if let Some(least) = self.pattern_of(t) {
            let whole = whole_second(l);
            let end = match least {
                0..=4 => day_end(),
                5 => end_of(whole.with_minute(0)?.with_second(0)? + TimeDelta::hours(1)),
                6 => end_of(whole.with_second(0)? + TimeDelta::minutes(1)),
                _ => end_of(whole + TimeDelta::seconds(1)),
            };
            // A match always lasts at least to the next whole second.
            until = until.max(end.or(Some(t + TimeDelta::seconds(1))));
        }
        until
    }

    fn touches(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let last = end - TimeDelta::nanoseconds(1);
        if !self.days.is_empty() {
            let (d0, d1) = (
                zone::local(self.tz, start).date(),
                zone::local(self.tz, last).date(),
            );
            let i = self.days.partition_point(|d| *d < d0);
            if i < self.days.len() && self.days[i] <= d1 {
                return true;
            }
        }
        let i = self.ranges.partition_point(|r| r.1 <= start);
        if i < self.ranges.len() && self.ranges[i].0 < end {
            return true;
        }
        let from = zone::local(self.tz, start);
        let from = if from.nanosecond() == 0 {
            from
        } else {
            whole_second(from) + TimeDelta::seconds(1)
        };
        self.recurring.iter().any(|(cron, _)| {
            cron.next_local(from)
                .is_some_and(|m| zone::first_instant(self.tz, m) < end)
        })
    }
}

/// A Calendar as the resolver sees it: its spec and the Calendars it includes.
#[derive(Clone, Debug, Default)]
pub struct CalendarDef {
    /// Its exclusions.
    pub spec: ExclusionSpec,
    /// The names of the Calendars it includes (`calendarRefs`).
    pub refs: Vec<String>,
}

/// Why a set of Calendars cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalendarProblem {
    /// A named Calendar does not exist.
    #[error("Calendar {name:?} does not exist in this namespace{}", referrer.as_ref().map(|r| format!(" (included by Calendar {r:?})")).unwrap_or_default())]
    NotFound {
        /// The missing Calendar.
        name: String,
        /// The Calendar whose calendarRefs names it, if not a root.
        referrer: Option<String>,
    },
    /// Calendars include each other in a cycle.
    #[error("calendarRefs form a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The names along the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A Calendar's spec is invalid.
    #[error("Calendar {calendar:?}: {error}")]
    Invalid {
        /// The invalid Calendar.
        calendar: String,
        /// What is wrong, naming the field.
        error: TriggerError,
    },
}

impl CalendarProblem {
    /// The condition reason: `CalendarNotFound`, `CalendarCycle` or `InvalidCalendar`.
    pub fn reason(&self) -> &'static str {
        match self {
            CalendarProblem::NotFound { .. } => "CalendarNotFound",
            CalendarProblem::Cycle { .. } => "CalendarCycle",
            CalendarProblem::Invalid { .. } => "InvalidCalendar",
        }
    }
}

/// Compiles the Calendars named by `roots` and every Calendar they include (the union; each
/// once). `lookup` finds a Calendar of the namespace by name.
pub fn resolve(
    roots: &[String],
    lookup: &dyn Fn(&str) -> Option<CalendarDef>,
) -> Result<Exclusions, CalendarProblem> {
    let mut done = HashSet::new();
    let mut out = Exclusions::default();
    for root in roots {
        let mut path = Vec::new();
        visit(root, None, lookup, &mut path, &mut done, &mut out)?;
    }
    Ok(out)
}

fn visit(
    name: &str,
    referrer: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<CalendarDef>,
    path: &mut Vec<String>,
    done: &mut HashSet<String>,
    out: &mut Exclusions,
) -> Result<(), CalendarProblem> {
    if let Some(at) = path.iter().position(|p| p == name) {
        let mut cycle = path[at..].to_vec();
        cycle.push(name.to_string());
        return Err(CalendarProblem::Cycle { cycle });
    }
    if done.contains(name) {
        return Ok(());
    }
    let def = lookup(name).ok_or_else(|| CalendarProblem::NotFound {
        name: name.to_string(),
        referrer: referrer.map(str::to_string),
    })?;
    let compiled =
        Exclusions::compile(name, "spec", &def.spec, Tz::UTC).map_err(|error| CalendarProblem::Invalid {
            calendar: name.to_string(),
            error,
        })?;
    path.push(name.to_string());
    for child in &def.refs {
        visit(child, Some(name), lookup, path, done, out)?;
    }
    path.pop();
    done.insert(name.to_string());
    out.sources.extend(compiled.sources);
    Ok(())
}

/// What exclusion did to one fire time of the trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not excluded: it fires at its own time.
    Kept,
    /// Excluded by the named source, and not moved (Skip, or no free day within 31).
    Skipped {
        /// The source that excluded it.
        by: String,
    },
    /// Moved to `to` (Following / Preceding).
    Shifted {
        /// The new fire time.
        to: DateTime<Utc>,
        /// The source that excluded it.
        by: String,
    },
    /// Moved to `into`, where another fire time already fires: merged into that one.
    Merged {
        /// The fire time it merged into.
        into: DateTime<Utc>,
        /// The source that excluded it.
        by: String,
    },
}

/// How the fire times of a window fared, counted by their own (unshifted) time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExclusionCounts {
    /// Fire times that make no run because an exclusion covers them (`excludedFireTimes`).
    pub excluded: u64,
    /// Fire times moved onto an instant that fires anyway (counted as coalesced).
    pub merged: u64,
    /// False when the window held more fire times than were visited: the counts cover the
    /// window only up to `through`.
    pub exact: bool,
    /// The last of the trigger's own fire times visited: the counts cover `(after, through]`
    /// exactly. `None` when the window held none.
    pub through: Option<DateTime<Utc>>,
}

/// A trigger's own `next_after`, before exclusion.
pub(crate) trait OwnFireTimes: Fn(Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {}

impl<F: Fn(Option<DateTime<Utc>>) -> Option<DateTime<Utc>>> OwnFireTimes for F {}

/// A trigger's fire times seen through exclusions: `raw` is the trigger's own `next_after`.
pub(crate) struct Excluded<'a, R> {
    pub raw: R,
    /// The trigger's zone: "the same local time" is read in it.
    pub tz: Tz,
    /// The trigger's window (start, end; `None`: unbounded): a shift never leaves it.
    pub window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    pub exclusions: &'a Exclusions,
    pub on: OnExcluded,
}

const NS: TimeDelta = TimeDelta::nanoseconds(1);

impl<R: OwnFireTimes> Excluded<'_, R> {
    /// The first fire time after exclusion strictly after `after`.
    pub fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self.on {
            OnExcluded::Skip => self.first_kept(after, None),
            OnExcluded::Following => self.following_after(after),
            OnExcluded::Preceding => self.preceding_after(after),
        }
    }

    /// What happens to the trigger's own fire time `t`.
    pub fn fate(&self, t: DateTime<Utc>) -> Fate {
        let Some(by) = self.exclusions.excluded_by(t).map(str::to_string) else {
            return Fate::Kept;
        };
        let l = zone::local(self.tz, t);
        let on_day = |k: u64| -> Option<DateTime<Utc>> {
            let day = match self.on {
                OnExcluded::Following => l.date().checked_add_days(Days::new(k)),
                _ => l.date().checked_sub_days(Days::new(k)),
            }?;
            Some(self.at(day, l.time()))
        };
        if self.on == OnExcluded::Skip {
            return Fate::Skipped { by };
        }
        for k in 1..=MAX_SHIFT_DAYS {
            let Some(to) = on_day(k) else { break };
            if self.excluded(to) {
                continue;
            }
            // The first free day is outside the trigger's window (after its endTime, before
            // its start): the fire time has nowhere to go.
            if !self.within(to) {
                break;
            }
            // The fire time nearest to `to` owns it; the others merge into it. The second
            // pass of a fall-back overlap merges into the first.
            let first_pass = self.at(l.date(), l.time());
            let merged = self.raw_has(to)
                || (1..k).any(|j| on_day(j).is_some_and(|x| self.raw_has(x)))
                || (first_pass < t && self.raw_has(first_pass));
            return if merged {
                Fate::Merged { into: to, by }
            } else {
                Fate::Shifted { to, by }
            };
        }
        Fate::Skipped { by }
    }

    /// Counts the trigger's own fire times in `(after, until]` that exclusion skips or merges,
    /// visiting at most `limit` of them.
    pub fn counts(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> ExclusionCounts {
        let mut counts = ExclusionCounts {
            exact: true,
            ..ExclusionCounts::default()
        };
        let mut cursor = after;
        for _ in 0..limit.max(1) {
            let Some(t) = self.raw_after(cursor).filter(|t| *t <= until) else {
                return counts;
            };
            match self.fate(t) {
                Fate::Skipped { .. } => counts.excluded += 1,
                Fate::Merged { .. } => counts.merged += 1,
                Fate::Kept | Fate::Shifted { .. } => {}
            }
            cursor = Some(t);
            counts.through = cursor;
        }
        counts.exact = self.raw_after(cursor).is_none_or(|t| t > until);
        counts
    }

    /// The first of the trigger's own fire times after `after` and before `before` that
    /// exclusion skips or merges (so it is counted when it passes), visiting at most `limit`
    /// of them; past the limit, the last one visited (look again from there).
    pub fn next_counted(
        &self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Option<DateTime<Utc>> {
        let mut cursor = after;
        for _ in 0..limit.max(1) {
            let t = self.raw_after(cursor).filter(|t| before.is_none_or(|b| *t < b))?;
            if matches!(self.fate(t), Fate::Skipped { .. } | Fate::Merged { .. }) {
                return Some(t);
            }
            cursor = Some(t);
        }
        cursor
    }

    fn at(&self, d: NaiveDate, tod: NaiveTime) -> DateTime<Utc> {
        zone::first_instant(self.tz, d.and_time(tod))
    }

    fn day_start(&self, d: NaiveDate) -> DateTime<Utc> {
        day_start(self.tz, d)
    }

    fn excluded(&self, t: DateTime<Utc>) -> bool {
        self.exclusions.excluded_by(t).is_some()
    }

    /// True when `t` lies in the trigger's window, where a shifted fire time may land.
    fn within(&self, t: DateTime<Utc>) -> bool {
        let (start, end) = self.window;
        start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e)
    }

    /// True when no exclusion touches local day `d` of the trigger's zone.
    fn clear(&self, d: NaiveDate) -> bool {
        let Some(next) = d.succ_opt() else { return true };
        !self.exclusions.touches(self.day_start(d), self.day_start(next))
    }

    fn raw_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        (self.raw)(after).filter(|t| after.is_none_or(|a| *t > a))
    }

    fn raw_has(&self, x: DateTime<Utc>) -> bool {
        self.raw_after(Some(x - NS)) == Some(x)
    }

    /// The trigger's own fire times on local day `d`.
    fn raw_on_day(&self, d: NaiveDate) -> Vec<DateTime<Utc>> {
        let Some(next) = d.succ_opt() else {
            return Vec::new();
        };
        let end = self.day_start(next);
        let mut times = Vec::new();
        let mut cursor = Some(self.day_start(d) - NS);
        while let Some(t) = self.raw_after(cursor).filter(|t| *t < end) {
            times.push(t);
            cursor = Some(t);
        }
        times
    }

    /// The first fire time of the trigger's own in `(after, before)` that no exclusion covers,
    /// jumping over excluded stretches instead of visiting each fire time in them.
    fn first_kept(
        &self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let mut t = self.raw_after(after)?;
        for _ in 0..MAX_STEPS * 10 {
            if before.is_some_and(|b| t >= b) {
                return None;
            }
            match self.exclusions.excluded_until(t) {
                None => return Some(t),
                Some(until) => t = self.raw_after(Some((until - NS).max(t)))?,
            }
        }
        None
    }

    /// Carries the fire times waiting for a free day (local time → days waited) through day
    /// `d`: those `d` excludes wait one more day (at most 31), the others were placed on `d`;
    /// the excluded fire times of `d` start waiting.
    fn carry(&self, d: NaiveDate, waiting: &BTreeMap<NaiveTime, u64>) -> BTreeMap<NaiveTime, u64> {
        let mut next = BTreeMap::new();
        for (&tod, &k) in waiting {
            if k < MAX_SHIFT_DAYS && self.excluded(self.at(d, tod)) {
                next.insert(tod, k + 1);
            }
        }
        for t in self.raw_on_day(d) {
            if self.excluded(t) {
                next.insert(zone::local(self.tz, t).time(), 1);
            }
        }
        next
    }

    /// The earliest instant after `a` on day `d`: a kept fire time of the day, or a waiting
    /// local time the day does not exclude.
    fn best_on(
        &self,
        d: NaiveDate,
        a: DateTime<Utc>,
        waiting: &BTreeMap<NaiveTime, u64>,
    ) -> Option<DateTime<Utc>> {
        let next = self.day_start(d.succ_opt()?);
        let from = a.max(self.day_start(d) - NS);
        let mut best = self.first_kept(Some(from), Some(next));
        for &tod in waiting.keys() {
            let x = self.at(d, tod);
            if x > a && best.is_none_or(|b| x < b) && self.within(x) && !self.excluded(x) {
                best = Some(x);
            }
        }
        best
    }

    fn following_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let a = match after {
            Some(a) => a,
            None => self.raw_after(None)? - NS,
        };
        let a_day = zone::local(self.tz, a).date();
        // Replay the days since the last one no exclusion touches: fire times waiting from
        // them may land after `a`.
        let mut start = a_day.checked_sub_days(Days::new(MAX_SHIFT_DAYS))?;
        for j in 1..=MAX_SHIFT_DAYS {
            let d = a_day.checked_sub_days(Days::new(j))?;
            if self.clear(d) {
                start = d.succ_opt()?;
                break;
            }
        }
        let mut waiting = BTreeMap::new();
        let mut d = start;
        while d < a_day {
            waiting = self.carry(d, &waiting);
            d = d.succ_opt()?;
        }
        for _ in 0..MAX_STEPS {
            if let Some(best) = self.best_on(d, a, &waiting) {
                return Some(best);
            }
            waiting = self.carry(d, &waiting);
            let next = d.succ_opt()?;
            d = if waiting.is_empty() {
                // Nothing waits: go straight to the day of the next fire time.
                let r = self.raw_after(Some(self.day_start(next) - NS))?;
                zone::local(self.tz, r).date().max(next)
            } else {
                next
            };
        }
        None
    }

    /// The local times of fire times on the days after `d` (up to 31) that wait for a free
    /// day before them and find none up to `d + 1`: with Preceding they land on `d` unless `d`
    /// excludes them too.
    fn waiting_from_later(&self, d: NaiveDate) -> BTreeMap<NaiveTime, u64> {
        let mut last = d.checked_add_days(Days::new(MAX_SHIFT_DAYS));
        for j in 1..=MAX_SHIFT_DAYS {
            let Some(x) = d.checked_add_days(Days::new(j)) else {
                break;
            };
            if self.clear(x) {
                last = x.pred_opt();
                break;
            }
        }
        let mut waiting = BTreeMap::new();
        let Some(mut x) = last else { return waiting };
        while x > d {
            waiting = self.carry(x, &waiting);
            let Some(prev) = x.pred_opt() else { break };
            x = prev;
        }
        waiting
    }

    fn preceding_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let a = match after {
            Some(a) => a,
            None => self.raw_after(None)? - TimeDelta::days(MAX_SHIFT_DAYS as i64 + 1),
        };
        let mut d = zone::local(self.tz, a).date();
        for _ in 0..MAX_STEPS {
            let waiting = self.waiting_from_later(d);
            if let Some(best) = self.best_on(d, a, &waiting) {
                return Some(best);
            }
            let next = d.succ_opt()?;
            // A fire time lands at most 31 days before its own day.
            let r = self.raw_after(Some(self.day_start(next) - NS))?;
            let r_day = zone::local(self.tz, r).date();
            d = r_day
                .checked_sub_days(Days::new(MAX_SHIFT_DAYS))
                .map_or(next, |earliest| earliest.max(next));
        }
        None
    }
}

#[cfg(test)]
mod tests;
