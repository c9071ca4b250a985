//! The trigger engine: compiles a Schedule's `spec.trigger` and answers "when does it fire
//! next?". Pure: no clock, no I/O; every answer is a function of the spec and the instant asked
//! about, so `next_after(status.cursor)` works as a stateless cursor.
//!
//! Semantics follow APScheduler 4's triggers; the deliberate differences are listed in
//! TRIGGERS.md.

mod calendar;
mod combining;
pub(crate) mod cron;
mod fields;
pub(crate) mod zone;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::exclusion::{Excluded, ExclusionCounts, Exclusions, Fate, OwnFireTimes};
use crate::plan::{Due, FireTimes, scan_due};
use crate::spec::{
    CALENDAR_INTERVAL_MESSAGE, CalendarInterval, CronFields, END_AFTER_START_MESSAGE,
    EXACTLY_ONE_LEAF_MESSAGE, EXACTLY_ONE_TRIGGER_MESSAGE, LeafTrigger, OnExcluded, TriggerSpec,
};
use calendar::CalendarRule;
use combining::{AllOf, Step};
use cron::CronSchedule;

/// A compiled, immutable trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    kind: Kind,
    tz: Tz,
    /// Outer window, applied to the combined output of anyOf/allOf (leaves carry their own).
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    description: String,
    /// The exclusions (inline `exclude`, Calendars) and what an excluded fire time becomes.
    exclusion: Option<Arc<(Exclusions, OnExcluded)>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Leaf(Leaf),
    AnyOf(Vec<Leaf>),
    AllOf(AllOf),
}

/// One leaf trigger with its own zone and window.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    rule: Rule,
    tz: Tz,
    /// No fire before this instant (inclusive).
    start: Option<DateTime<Utc>>,
    /// No fire after this instant (inclusive).
    end: Option<DateTime<Utc>>,
    description: String,
}

#[derive(Debug, Clone)]
enum Rule {
    Cron(Box<CronSchedule>),
    /// start + k·period, in real elapsed time.
    Interval {
        anchor: DateTime<Utc>,
        period_ns: i128,
    },
    Date(DateTime<Utc>),
    Calendar(CalendarRule),
}

/// Why a trigger spec was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerErrorKind {
    /// The trigger expression or its fields are invalid or can never fire.
    InvalidTrigger,
    /// The timezone is not an IANA time zone name.
    InvalidTimezone,
    /// An exclusion (a Calendar's spec or the trigger's inline `exclude`) is invalid.
    InvalidCalendar,
    /// A Calendar the Schedule (or its Task) names does not exist.
    CalendarNotFound,
    /// Calendars include each other in a cycle.
    CalendarCycle,
}

impl TriggerErrorKind {
    /// The condition reason for this kind of error.
    pub fn reason(&self) -> &'static str {
        match self {
            TriggerErrorKind::InvalidTrigger => "InvalidTrigger",
            TriggerErrorKind::InvalidTimezone => "InvalidTimezone",
            TriggerErrorKind::InvalidCalendar => "InvalidCalendar",
            TriggerErrorKind::CalendarNotFound => "CalendarNotFound",
            TriggerErrorKind::CalendarCycle => "CalendarCycle",
        }
    }
}

/// A rejected trigger spec: which field (as written in YAML), the offending value, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct TriggerError {
    /// YAML path of the field, e.g. `trigger.cronFields.dayOfWeek` or `trigger.anyOf[1].interval`.
    pub field: String,
    /// The offending value as the user wrote it.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
    /// The condition reason class.
    pub kind: TriggerErrorKind,
}

impl fmt::Display for TriggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}: {}", self.field, self.value, self.message)
    }
}

impl TriggerError {
    fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> TriggerError {
        TriggerError {
            field: field.into(),
            value: value.into(),
            message: message.into(),
            kind: TriggerErrorKind::InvalidTrigger,
        }
    }
}

/// The default allOf threshold, as APScheduler's AndTrigger.
const DEFAULT_THRESHOLD: TimeDelta = TimeDelta::seconds(1);

impl Trigger {
    /// Validates and compiles. `default_start` = the Schedule's creation time, used when
    /// spec.start_time is None.
    pub fn compile(spec: &TriggerSpec, default_start: DateTime<Utc>) -> Result<Trigger, TriggerError> {
        let tz = parse_tz("trigger.timezone", spec.timezone.as_deref())?;
        let start = spec.start_time.map(|t| t.to_utc());
        let end = spec.end_time.map(|t| t.to_utc());
        check_window("trigger", start, end)?;
        let kinds = spec.kinds_set();
        if kinds.len() != 1 {
            return Err(TriggerError::invalid(
                "trigger",
                kind_names(&kinds),
                EXACTLY_ONE_TRIGGER_MESSAGE,
            ));
        }
        if spec.all_of_threshold.is_some() && spec.all_of.is_none() {
            return Err(TriggerError::invalid(
                "trigger.allOfThreshold",
                spec.all_of_threshold.map(|d| d.to_string()).unwrap_or_default(),
                "allOfThreshold only applies to allOf",
            ));
        }
        let inherited = Window {
            tz,
            start,
            end,
            default_start,
        };
        let (kind, description) = if let Some(members) = &spec.any_of {
            let leaves = compile_members("trigger.anyOf", members, &inherited)?;
            let description = format!("anyOf({})", join_descriptions(&leaves));
            (Kind::AnyOf(leaves), description)
        } else if let Some(members) = &spec.all_of {
            let leaves = compile_members("trigger.allOf", members, &inherited)?;
            let threshold = spec.all_of_threshold.map_or(DEFAULT_THRESHOLD, |d| d.as_chrono());
            let description = format!("allOf({})", join_descriptions(&leaves));
            let all = AllOf::new(leaves, threshold);
            if all.first() == Step::LimitReached {
                return Err(TriggerError::invalid(
                    "trigger.allOf",
                    description,
                    format!(
                        "the members' fire times do not come within {} of each other in {} steps",
                        spec.all_of_threshold
                            .unwrap_or(crate::spec::Duration::from_secs(1)),
                        combining::MAX_ITERATIONS
                    ),
                ));
            }
            (Kind::AllOf(all), description)
        } else {
            let leaf = compile_leaf(
                "trigger",
                &spec.as_leaf(),
                &Window {
                    tz,
                    start,
                    end,
                    default_start,
                },
                tz,
            )?;
            let description = leaf.description.clone();
            (Kind::Leaf(leaf), description)
        };
        let exclusion = match &spec.exclude {
            Some(exclude) if !exclude.is_empty() => {
                let inline = Exclusions::compile("trigger.exclude", "trigger.exclude", exclude, tz)?;
                Some(Arc::new((inline, OnExcluded::Skip)))
            }
            _ => None,
        };
        Ok(Trigger {
            kind,
            tz,
            start,
            end,
            description,
            exclusion,
        })
    }

    /// This trigger with `calendars` excluded too (besides its inline `exclude`), and `on`
    /// deciding what an excluded fire time becomes.
    pub fn excluding(mut self, calendars: Exclusions, on: OnExcluded) -> Trigger {
        let all = match self.exclusion.take() {
            Some(inline) => inline.0.clone().union(calendars),
            None => calendars,
        };
        self.exclusion = (!all.is_empty()).then(|| Arc::new((all, on)));
        self
    }

    /// This trigger without any exclusion: its own fire times (a Backfill with
    /// `ignoreExclusions`).
    pub fn ignoring_exclusions(mut self) -> Trigger {
        self.exclusion = None;
        self
    }

    /// The exclusions in force and what an excluded fire time becomes; `None` without any.
    pub fn exclusions(&self) -> Option<(&Exclusions, OnExcluded)> {
        self.exclusion.as_deref().map(|(e, on)| (e, *on))
    }

    fn excluded(&self) -> Option<Excluded<'_, impl OwnFireTimes + '_>> {
        let (exclusions, on) = self.exclusion.as_deref()?;
        Some(Excluded {
            raw: move |after| self.own_next_after(after),
            tz: self.tz,
            window: self.window(),
            exclusions,
            on: *on,
        })
    }

    /// The span the trigger's own fire times lie in (`None`: unbounded on that side): a leaf's
    /// start (its startTime, or the creation time it counts from) to its endTime; for anyOf
    /// from the earliest member start to the latest member end, for allOf where all members
    /// overlap; within the outer startTime / endTime. Following and Preceding never move a
    /// fire time out of it.
    pub fn window(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let (start, end) = match &self.kind {
            Kind::Leaf(leaf) => (leaf.start, leaf.end),
            Kind::AnyOf(leaves) => (
                // One unbounded member leaves the combination unbounded on that side.
                leaves
                    .iter()
                    .map(|l| l.start)
                    .collect::<Option<Vec<_>>>()
                    .and_then(|s| s.into_iter().min()),
                leaves
                    .iter()
                    .map(|l| l.end)
                    .collect::<Option<Vec<_>>>()
                    .and_then(|e| e.into_iter().max()),
            ),
            Kind::AllOf(all) => all.window(),
        };
        let start = match (start, self.start) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let end = match (end, self.end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (start, end)
    }

    /// What exclusion does to the trigger's own fire time `t` ([`Fate::Kept`] without
    /// exclusions).
    pub fn fate(&self, t: DateTime<Utc>) -> Fate {
        self.excluded().map_or(Fate::Kept, |ex| ex.fate(t))
    }

    /// How the trigger's own fire times in `(after, until]` fared: how many exclusion skipped
    /// and how many it merged into another fire time (at most `limit` visited).
    pub fn exclusion_counts(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> ExclusionCounts {
        match self.excluded() {
            Some(ex) => ex.counts(after, until, limit),
            None => ExclusionCounts {
                exact: true,
                ..ExclusionCounts::default()
            },
        }
    }

    /// The first of the trigger's own fire times after `after` and before `before` that
    /// exclusion skips or merges: when `excludedFireTimes` or `coalescedFireTimes` next
    /// changes, though nothing fires. At most `limit` own fire times are visited; past that,
    /// the last one visited. `None` without exclusions or without such a fire time.
    pub fn next_counted(
        &self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Option<DateTime<Utc>> {
        self.excluded()?.next_counted(after, before, limit)
    }

    /// True when `t` is a fire time only because Following / Preceding moved another one to it.
    pub fn is_shifted(&self, t: DateTime<Utc>) -> bool {
        self.exclusion.is_some()
            && self
                .own_next_after(t.checked_sub_signed(TimeDelta::nanoseconds(1)))
                .is_none_or(|own| own != t)
    }

    /// The trigger's own fire times strictly after `after`, before exclusion.
    pub fn own_fire_times(&self, after: Option<DateTime<Utc>>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let next = self
                .own_next_after(cursor)
                .filter(|n| cursor.is_none_or(|c| *n > c))?;
            cursor = Some(next);
            Some(next)
        })
    }

    /// The first fire time strictly after `after`, exclusions applied; with None, the very
    /// first fire time (startTime inclusive). None = exhausted.
    pub fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self.excluded() {
            Some(ex) => ex.next_after(after),
            None => self.own_next_after(after),
        }
    }

    /// The trigger's own next fire time, before exclusion.
    fn own_next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let t = match &self.kind {
            Kind::Leaf(leaf) => return leaf.next_after(after),
            Kind::AnyOf(leaves) => {
                let after = clamp_to_start(after, self.start);
                leaves.iter().filter_map(|l| l.next_after(after)).min()?
            }
            Kind::AllOf(all) => {
                let mut t = all.next_after(after)?;
                // Members may set an earlier startTime of their own; the outer one still bounds.
                while self.start.is_some_and(|s| t < s) {
                    t = all.next_after(Some(t))?;
                }
                t
            }
        };
        self.end.is_none_or(|e| t <= e).then_some(t)
    }

    /// Iterator of successive fire times strictly after `after` (None: from the first).
    pub fn fire_times(&self, after: Option<DateTime<Utc>>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let next = self.next_after(cursor);
            // Guard against a zero-progress answer ever looping forever.
            let next = next.filter(|n| cursor.is_none_or(|c| *n > c))?;
            cursor = Some(next);
            Some(next)
        })
    }

    /// The zone the trigger's wall-clock fields are read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Short human-readable summary for a kubectl printer column.
    pub fn describe(&self) -> String {
        self.description.clone()
    }
}

/// Timezone and window a leaf inherits from its enclosing spec.
struct Window {
    tz: Tz,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    default_start: DateTime<Utc>,
}

fn compile_members(path: &str, members: &[LeafTrigger], outer: &Window) -> Result<Vec<Leaf>, TriggerError> {
    if members.is_empty() {
        return Err(TriggerError::invalid(path, "[]", "needs at least one member"));
    }
    members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let path = format!("{path}[{i}]");
            let tz = match &member.timezone {
                Some(name) => parse_tz(&format!("{path}.timezone"), Some(name))?,
                None => outer.tz,
            };
            let start = member.start_time.map(|t| t.to_utc()).or(outer.start);
            let end = member.end_time.map(|t| t.to_utc()).or(outer.end);
            check_window(&path, start, end)?;
            compile_leaf(
                &path,
                member,
                &Window {
                    tz,
                    start,
                    end,
                    default_start: outer.default_start,
                },
                outer.tz,
            )
        })
        .collect()
}

fn compile_leaf(path: &str, spec: &LeafTrigger, w: &Window, outer_tz: Tz) -> Result<Leaf, TriggerError> {
    let kinds = spec.kinds_set();
    if kinds.len() != 1 {
        return Err(TriggerError::invalid(
            path,
            kind_names(&kinds),
            EXACTLY_ONE_LEAF_MESSAGE,
        ));
    }
    // An explicit startTime bounds every kind; the creation-time default anchors intervals and
    // starts cron/calendar searches, but does not suppress a one-off date in the past, which
    // APScheduler fires once, late, as well.
    let start = w.start.unwrap_or(w.default_start);
    let (rule, description, start) = if let Some(expr) = &spec.cron {
        let cron = CronSchedule::from_crontab(&format!("{path}.cron"), expr).map_err(cron_error)?;
        (
            Rule::Cron(Box::new(cron)),
            format!("cron {}", expr.trim()),
            Some(start),
        )
    } else if let Some(fields) = &spec.cron_fields {
        let cron = CronSchedule::from_fields(&format!("{path}.cronFields"), fields).map_err(cron_error)?;
        (
            Rule::Cron(Box::new(cron)),
            format!("cronFields {}", describe_fields(fields)),
            Some(start),
        )
    } else if let Some(period) = spec.interval {
        let period_ns = period.as_std().as_nanos() as i128;
        if period_ns == 0 {
            return Err(TriggerError::invalid(
                format!("{path}.interval"),
                period.to_string(),
                "the interval must be positive",
            ));
        }
        // JobRun names carry fire times to the millisecond; shorter periods would be a pod
        // storm anyway. One second is the precision horolog promises.
        if period_ns < 1_000_000_000 {
            return Err(TriggerError::invalid(
                format!("{path}.interval"),
                period.to_string(),
                "the interval must be at least 1s",
            ));
        }
        (
            Rule::Interval {
                anchor: start,
                period_ns,
            },
            format!("every {period}"),
            Some(start),
        )
    } else if let Some(date) = spec.date {
        (
            Rule::Date(date.to_utc()),
            format!("once {}", rfc3339(date.to_utc())),
            w.start,
        )
    } else if let Some(ci) = &spec.calendar_interval {
        let rule = compile_calendar(&format!("{path}.calendarInterval"), ci, w.tz, start)?;
        (Rule::Calendar(rule), describe_calendar(ci), Some(start))
    } else {
        return Err(TriggerError::invalid(path, "", "no trigger kind set"));
    };
    // The zone has its own printer column; only a member in another zone names it.
    let description = if w.tz == outer_tz || matches!(rule, Rule::Interval { .. } | Rule::Date(_)) {
        description
    } else {
        format!("{description} ({})", w.tz.name())
    };
    Ok(Leaf {
        rule,
        tz: w.tz,
        start,
        end: w.end,
        description,
    })
}

fn compile_calendar(
    path: &str,
    ci: &CalendarInterval,
    tz: Tz,
    start: DateTime<Utc>,
) -> Result<CalendarRule, TriggerError> {
    let fields = [
        ("years", ci.years, 1000),
        ("months", ci.months, 12000),
        ("weeks", ci.weeks, 52000),
        ("days", ci.days, 365000),
        ("hour", ci.hour, 23),
        ("minute", ci.minute, 59),
        ("second", ci.second, 59),
    ];
    for (name, value, max) in fields {
        if !(0..=max).contains(&value) {
            return Err(TriggerError::invalid(
                format!("{path}.{name}"),
                value.to_string(),
                format!("must be 0-{max}"),
            ));
        }
    }
    if ci.years + ci.months + ci.weeks + ci.days == 0 {
        return Err(TriggerError::invalid(
            path,
            "years=0 months=0 weeks=0 days=0",
            CALENDAR_INTERVAL_MESSAGE,
        ));
    }
    let time = NaiveTime::from_hms_opt(ci.hour as u32, ci.minute as u32, ci.second as u32)
        .ok_or_else(|| TriggerError::invalid(path, describe_calendar(ci), "invalid time of day"))?;
    Ok(CalendarRule::new(
        (ci.years * 12 + ci.months) as u32,
        (ci.weeks * 7 + ci.days) as u32,
        time,
        tz,
        start,
    ))
}

impl Leaf {
    /// The first fire time ≥ the window start and strictly after `after`, within the window.
    pub(crate) fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        // Instants have nanosecond resolution, so "strictly after" is "at or after +1ns".
        let from = match (after, self.start) {
            (Some(a), Some(s)) => a.checked_add_signed(TimeDelta::nanoseconds(1))?.max(s),
            (Some(a), None) => a.checked_add_signed(TimeDelta::nanoseconds(1))?,
            (None, Some(s)) => s,
            (None, None) => DateTime::<Utc>::MIN_UTC,
        };
        let t = self.at_or_after(from)?;
        self.end.is_none_or(|e| t <= e).then_some(t)
    }

    fn at_or_after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Cron(cron) => cron.at_or_after(self.tz, cron::ceil_second(from)),
            Rule::Interval { anchor, period_ns } => {
                let elapsed = nanos(from) - nanos(*anchor);
                let k = if elapsed <= 0 {
                    0
                } else {
                    (elapsed + period_ns - 1) / period_ns
                };
                let offset = i64::try_from(k.checked_mul(*period_ns)?).ok()?;
                anchor.checked_add_signed(TimeDelta::nanoseconds(offset))
            }
            Rule::Date(at) => (*at >= from).then_some(*at),
            Rule::Calendar(rule) => rule.at_or_after(self.tz, from),
        }
    }
}

impl Leaf {
    /// The fire times in `(after, until]` without visiting them, for the rules that allow it
    /// (interval, calendarInterval); `None` for the others, which are scanned.
    pub(crate) fn due_between(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        keep: usize,
    ) -> Option<Due> {
        if !matches!(self.rule, Rule::Interval { .. } | Rule::Calendar(_)) {
            return None;
        }
        let Some(first) = self.next_after(after) else {
            return Some(Due::none(None));
        };
        if first > until {
            return Some(Due::none(Some(first)));
        }
        let hi = self.end.map_or(until, |end| end.min(until));
        let (count, last) = match &self.rule {
            Rule::Interval { anchor, period_ns } => interval_due(*anchor, *period_ns, first, hi, keep)?,
            Rule::Calendar(rule) => rule.due(self.tz, first, hi, keep)?,
            Rule::Cron(_) | Rule::Date(_) => return None,
        };
        Some(Due {
            count,
            exact: true,
            first: Some(first),
            last,
            next: self.next_after(Some(until)),
        })
    }
}

/// An interval's fire times from `first` (one of them) to `hi`: `anchor + k·period`, counted.
fn interval_due(
    anchor: DateTime<Utc>,
    period_ns: i128,
    first: DateTime<Utc>,
    hi: DateTime<Utc>,
    keep: usize,
) -> Option<(u64, Vec<DateTime<Utc>>)> {
    let fire =
        |k: i128| anchor.checked_add_signed(TimeDelta::nanoseconds(i64::try_from(k * period_ns).ok()?));
    let k_first = (nanos(first) - nanos(anchor)) / period_ns;
    // `at_or_after` ends the sequence where the offset no longer fits; so does the count.
    let k_last = (nanos(hi) - nanos(anchor))
        .div_euclid(period_ns)
        .min(i64::MAX as i128 / period_ns);
    if k_last < k_first {
        return None;
    }
    let count = u64::try_from(k_last - k_first + 1).ok()?;
    let from = (k_last + 1 - keep as i128).max(k_first);
    let last = (from..=k_last).map(fire).collect::<Option<Vec<_>>>()?;
    Some((count, last))
}

fn nanos(t: DateTime<Utc>) -> i128 {
    t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128
}

fn clamp_to_start(after: Option<DateTime<Utc>>, start: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (after, start) {
        (Some(a), Some(s)) => Some(a.max(s.checked_sub_signed(TimeDelta::nanoseconds(1)).unwrap_or(s))),
        (None, Some(s)) => s.checked_sub_signed(TimeDelta::nanoseconds(1)),
        (a, None) => a,
    }
}

fn parse_tz(path: &str, name: Option<&str>) -> Result<Tz, TriggerError> {
    let Some(name) = name else { return Ok(Tz::UTC) };
    Tz::from_str(name.trim()).map_err(|_| TriggerError {
        field: path.to_string(),
        value: name.to_string(),
        message: "unknown time zone; use an IANA name such as Europe/Berlin or UTC".to_string(),
        kind: TriggerErrorKind::InvalidTimezone,
    })
}

fn check_window(
    path: &str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<(), TriggerError> {
    // The same rule, with the same message, as the CRD's CEL rule END_AFTER_START_RULE.
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(TriggerError::invalid(
            format!("{path}.endTime"),
            rfc3339(e),
            END_AFTER_START_MESSAGE,
        ));
    }
    Ok(())
}

fn cron_error((field, value, message): cron::CronError) -> TriggerError {
    TriggerError::invalid(field, value, message)
}

fn kind_names(kinds: &[&str]) -> String {
    if kinds.is_empty() {
        "none set".to_string()
    } else {
        kinds.join(", ")
    }
}

fn join_descriptions(leaves: &[Leaf]) -> String {
    leaves
        .iter()
        .map(|l| l.description.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_fields(f: &CronFields) -> String {
    let fields = [
        ("year", &f.year),
        ("month", &f.month),
        ("day", &f.day),
        ("week", &f.week),
        ("dayOfWeek", &f.day_of_week),
        ("hour", &f.hour),
        ("minute", &f.minute),
        ("second", &f.second),
    ];
    let set: Vec<String> = fields
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={}", v.as_str().trim())))
        .collect();
    if set.is_empty() {
        "(Jan 1 yearly)".to_string()
    } else {
        set.join(" ")
    }
}

fn describe_calendar(ci: &CalendarInterval) -> String {
    let parts: Vec<String> = [
        ("year", ci.years),
        ("month", ci.months),
        ("week", ci.weeks),
        ("day", ci.days),
    ]
    .iter()
    .filter(|(_, n)| *n != 0)
    .map(|(unit, n)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
    .collect();
    format!(
        "calendar every {} at {:02}:{:02}:{:02}",
        parts.join(" "),
        ci.hour,
        ci.minute,
        ci.second
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl FireTimes for Trigger {
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        Trigger::next_after(self, after)
    }

    /// A leaf `interval` or `calendarInterval` counts its due fire times arithmetically (exact
    /// at any backlog); cron, cronFields, date, anyOf and allOf scan ([`scan_due`]).
    fn due_between(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        keep: usize,
        scan_limit: usize,
    ) -> Due {
        if self.exclusion.is_none()
            && let Kind::Leaf(leaf) = &self.kind
            && let Some(due) = leaf.due_between(after, until, keep)
        {
            return due;
        }
        scan_due(self, after, until, keep, scan_limit)
    }
}

#[cfg(test)]
mod tests;
