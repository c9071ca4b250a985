//! Cron triggers (`cron` crontab strings and APScheduler `cronFields`): field bit sets and a
//! next-match search that jumps field by field (year → second) like APScheduler's CronTrigger,
//! in the local wall clock of the trigger's zone.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

use super::fields::{FieldKind, FieldSet, parse_field};
use super::zone::{self, Wall};
use crate::spec::CronFields;

/// A compiled cron specification.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    /// Bit `y - 1970` set for every matching year; None = every year.
    years: Option<Vec<u64>>,
    /// Bits 1..=12.
    months: u16,
    /// Bits 1..=31 of plain day numbers.
    days: u32,
    /// Whether the day field is `*` (then `days` holds every day).
    days_all: bool,
    last_day: bool,
    /// (n, Monday-based weekday); n = 0 is `last <weekday>`.
    positions: Vec<(u8, u8)>,
    /// Bits 1..=53 of ISO weeks; None = every week.
    weeks: Option<u64>,
    /// Per weekday of the 1st of the month (Monday = 0): the days 1..=31 whose weekday matches.
    /// None = every weekday.
    dow_days: Option<[u32; 7]>,
    hours: u32,
    minutes: u64,
    seconds: u64,
    /// Hour field is `*` or stepped: fires in both passes of a DST overlap and shifts gap times
    /// forward by the gap (keeping its real-time rhythm), instead of the fixed-time rules.
    rhythmic: bool,
    /// For the 400 residues `year % 400` (the Gregorian cycle, over which weekdays, leap years
    /// and ISO weeks repeat): whether such a year has any matching date. None = every year does.
    year_classes: Option<[u64; 7]>,
}

/// Which cron input a field came from, for error paths.
pub(crate) enum Source<'a> {
    /// `trigger.cron` (or a member's): the whole expression, field named in the message.
    Crontab { path: &'a str, expr: &'a str },
    /// `trigger.cronFields.<field>`.
    Fields { path: &'a str },
}

/// A cron compile error: (YAML path, offending value, message).
pub(crate) type CronError = (String, String, String);

const FIELD_NAMES: [(&str, FieldKind); 8] = [
    ("year", FieldKind::Year),
    ("month", FieldKind::Month),
    ("day", FieldKind::Day),
    ("week", FieldKind::Week),
    ("dayOfWeek", FieldKind::DayOfWeek),
    ("hour", FieldKind::Hour),
    ("minute", FieldKind::Minute),
    ("second", FieldKind::Second),
];

/// APScheduler's defaults for unset fields less significant than every set field.
const DEFAULTS: [&str; 8] = ["*", "1", "1", "*", "*", "0", "0", "0"];

impl CronSchedule {
    /// Compiles a crontab expression: 5 fields `m h dom mon dow`, 6 fields with leading seconds,
    /// or an `@` macro. Day of month and day of week combine with AND, as APScheduler's
    /// `from_crontab` does.
    pub fn from_crontab(path: &str, expr: &str) -> Result<CronSchedule, CronError> {
        let err = |msg: String| (path.to_string(), expr.to_string(), msg);
        let trimmed = expr.trim();
        let expanded = if let Some(name) = trimmed.strip_prefix('@') {
            match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => {
                    return Err(err(format!(
                        "unknown macro \"@{name}\" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
                    )));
                }
            }
        } else {
            trimmed
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (second, rest) = match parts.len() {
            5 => ("0", &parts[..]),
            6 => (parts[0], &parts[1..]),
            n => {
                return Err(err(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, found {n}"
                )));
            }
        };
        let texts = ["*", rest[3], rest[2], "*", rest[4], rest[1], rest[0], second];
        Self::build(&texts, &Source::Crontab { path, expr })
    }

    /// Compiles APScheduler CronTrigger fields, with its defaulting of unset fields.
    pub fn from_fields(path: &str, f: &CronFields) -> Result<CronSchedule, CronError> {
        let given = f.in_order();
        let least_significant_set = given.iter().rposition(|v| v.is_some());
        let mut texts = [""; 8];
        for (i, value) in given.iter().enumerate() {
            texts[i] = match value {
                Some(v) => v.as_str(),
                None if least_significant_set.is_some_and(|last| i < last) => "*",
                None => DEFAULTS[i],
            };
        }
        Self::build(&texts, &Source::Fields { path })
    }

    /// Compiles cron fields as a pattern to match times against (a Calendar's `recurring`
    /// entry): unlike [`CronSchedule::from_fields`], every field left out matches everything.
    /// Also returns the least significant field given (0 = year .. 7 = second), which says how
    /// long a match lasts: to the end of that field's unit.
    pub fn matcher(path: &str, f: &CronFields) -> Result<(CronSchedule, usize), CronError> {
        let given = f.in_order();
        let mut texts = ["*"; 8];
        for (i, value) in given.iter().enumerate() {
            if let Some(v) = value {
                texts[i] = v.as_str();
            }
        }
        let least = given.iter().rposition(|v| v.is_some()).unwrap_or(0);
        Ok((Self::build(&texts, &Source::Fields { path })?, least))
    }

    /// Whether the local wall time `l` (whole seconds) matches every field.
    pub fn matches(&self, l: NaiveDateTime) -> bool {
        self.next_local(l) == Some(l)
    }

    fn build(texts: &[&str; 8], source: &Source) -> Result<CronSchedule, CronError> {
        let mut sets: Vec<FieldSet> = Vec::with_capacity(8);
        for (i, (name, kind)) in FIELD_NAMES.iter().enumerate() {
            let set = parse_field(*kind, texts[i]).map_err(|msg| match source {
                Source::Crontab { path, expr } => (
                    path.to_string(),
                    expr.to_string(),
                    format!("{} field: {msg}", crontab_name(name)),
                ),
                Source::Fields { path } => (format!("{path}.{name}"), texts[i].to_string(), msg),
            })?;
            sets.push(set);
        }
        let [year, month, day, week, dow, hour, minute, second]: [FieldSet; 8] =
            sets.try_into().map_err(|_| unreachable_err())?;
        let dow_days = (!dow.all).then(|| {
            let mask = dow.word() as u32 & 0x7f;
            let mut table = [0u32; 7];
            for (first_wd, days) in table.iter_mut().enumerate() {
                for d in 1..=31u32 {
                    if mask & (1 << ((first_wd as u32 + d - 1) % 7)) != 0 {
                        *days |= 1 << d;
                    }
                }
            }
            table
        });
        let mut cron = CronSchedule {
            years: (!year.all).then_some(year.bits),
            months: month.word() as u16,
            days: day.word() as u32,
            days_all: day.all,
            last_day: day.last_day,
            positions: day.positions,
            weeks: (!week.all).then(|| week.word()),
            dow_days,
            hours: hour.word() as u32,
            minutes: minute.word(),
            seconds: second.word(),
            rhythmic: hour.stepped,
            year_classes: None,
        };
        cron.check_satisfiable().map_err(|msg| match source {
            Source::Crontab { path, expr } => (path.to_string(), expr.to_string(), msg),
            Source::Fields { path } => (path.to_string(), describe_texts(texts), msg),
        })?;
        Ok(cron)
    }

    /// Rejects specs that can never fire (Feb 30, `day: 31` with `month: feb,apr`, Feb 29 of
    /// a non-leap year) instead of letting a search run to year 9999. Dates repeat with the
    /// 400-year Gregorian cycle, so checking one cycle decides it for all years.
    fn check_satisfiable(&mut self) -> Result<(), String> {
        let simple_days = self.positions.is_empty()
            && !self.last_day
            && (self.days_all || (self.days >> 29 == 0 && self.dow_days.is_none()));
        if simple_days && self.weeks.is_none() {
            return Ok(()); // every allowed month of every allowed year has a matching day
        }
        let mut classes = [0u64; 7];
        for r in 0..400u32 {
            let y = 2000 + r as i32;
            if (1..=12).any(|m| self.months & (1 << m) != 0 && self.day_mask(y, m) != 0) {
                classes[(r / 64) as usize] |= 1 << (r % 64);
            }
        }
        let any_year = (1970..=9999).any(|y: i32| {
            let r = y.rem_euclid(400) as u32;
            classes[(r / 64) as usize] & (1 << (r % 64)) != 0 && self.year_allowed(y)
        });
        if !any_year {
            return Err(
                "this combination of year, month, day, week and day of week never occurs".to_string(),
            );
        }
        self.year_classes = Some(classes);
        Ok(())
    }

    fn year_allowed(&self, y: i32) -> bool {
        match &self.years {
            None => (1970..=9999).contains(&y),
            Some(bits) => {
                let i = y - 1970;
                (0..=(9999 - 1970)).contains(&i) && bits[(i / 64) as usize] & (1 << (i % 64)) != 0
            }
        }
    }

    /// The smallest year ≥ y that is allowed and has some matching date.
    fn next_year(&self, mut y: i32) -> Option<i32> {
        while y <= 9999 {
            let class_ok = self.year_classes.as_ref().is_none_or(|c| {
                let r = y.rem_euclid(400) as u32;
                c[(r / 64) as usize] & (1 << (r % 64)) != 0
            });
            if class_ok && self.year_allowed(y) {
                return Some(y);
            }
            y += 1;
        }
        None
    }

    /// The days 1..=31 of month (y, m) that match day, week and day of week.
    fn day_mask(&self, y: i32, m: u32) -> u32 {
        let Some(first) = NaiveDate::from_ymd_opt(y, m, 1) else {
            return 0;
        };
        let dim = days_in_month(y, m);
        let valid = ((1u64 << (dim + 1)) - 2) as u32;
        let first_wd = first.weekday().num_days_from_monday();
        let mut mask = self.days & valid;
        if self.last_day {
            mask |= 1 << dim;
        }
        for &(n, wd) in &self.positions {
            let first_match = 1 + (wd as u32 + 7 - first_wd) % 7;
            let day = if n == 0 {
                first_match + 7 * ((dim - first_match) / 7)
            } else {
                first_match + 7 * (n as u32 - 1)
            };
            if day <= dim {
                mask |= 1 << day;
            }
        }
        if let Some(table) = &self.dow_days {
            mask &= table[first_wd as usize];
        }
        if let Some(weeks) = self.weeks {
            let mut filtered = 0;
            let mut rest = mask;
            while rest != 0 {
                let d = rest.trailing_zeros();
                rest &= rest - 1;
                let week = first.with_day(d).map_or(0, |date| date.iso_week().week());
                if weeks & (1 << week) != 0 {
                    filtered |= 1 << d;
                }
            }
            mask = filtered;
        }
        mask
    }

    /// The first local wall-clock time ≥ `l` (whole seconds) that matches every field.
    pub fn next_local(&self, l: NaiveDateTime) -> Option<NaiveDateTime> {
        let (mut y, mut mo, mut d) = (l.year(), l.month(), l.day());
        let (mut h, mut mi, mut s) = (l.hour(), l.minute(), l.second());
        // Each pass either returns or moves the candidate to the start of a later unit; the
        // year bound makes the loop finite, and compile-time satisfiability keeps it short.
        loop {
            let ny = self.next_year(y)?;
            if ny != y {
                (y, mo, d, h, mi, s) = (ny, 1, 1, 0, 0, 0);
            }
            match next_bit(self.months as u64, mo) {
                Some(m) if m == mo => {}
                Some(m) => (mo, d, h, mi, s) = (m, 1, 0, 0, 0),
                None => {
                    (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0);
                    continue;
                }
            }
            match next_bit(self.day_mask(y, mo) as u64, d) {
                Some(nd) if nd == d => {}
                Some(nd) => (d, h, mi, s) = (nd, 0, 0, 0),
                None => {
                    (y, mo) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                    (d, h, mi, s) = (1, 0, 0, 0);
                    continue;
                }
            }
            match next_bit(self.hours as u64, h) {
                Some(nh) if nh == h => {}
                Some(nh) => (h, mi, s) = (nh, 0, 0),
                None => {
                    (y, mo, d) = next_day(y, mo, d);
                    (h, mi, s) = (0, 0, 0);
                    continue;
                }
            }
            match next_bit(self.minutes, mi) {
                Some(nm) if nm == mi => {}
                Some(nm) => (mi, s) = (nm, 0),
                None => {
                    (mi, s) = (0, 0);
                    if h == 23 {
                        (y, mo, d) = next_day(y, mo, d);
                        h = 0;
                    } else {
                        h += 1;
                    }
                    continue;
                }
            }
            match next_bit(self.seconds, s) {
                Some(ns) => s = ns,
                None => {
                    s = 0;
                    if mi == 59 {
                        mi = 0;
                        if h == 23 {
                            (y, mo, d) = next_day(y, mo, d);
                            h = 0;
                        } else {
                            h += 1;
                        }
                    } else {
                        mi += 1;
                    }
                    continue;
                }
            }
            return NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s);
        }
    }

    /// The first fire instant ≥ `t` (a whole second), applying the DST rules: a fixed local time
    /// fires once (first occurrence of an overlap, first instant after a gap); a rhythmic cron
    /// fires in both overlap passes and shifts gap times forward by the gap length.
    pub fn at_or_after(&self, tz: Tz, mut t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if zone::is_fixed(tz) {
            return Some(self.next_local(t.naive_utc())?.and_utc());
        }
        // A restart moves t to the end of an overlap, after which t is no longer inside one.
        for _ in 0..3 {
            let l0 = zone::local(tz, t);
            if let Wall::Twice(a, b) = zone::wall(tz, l0) {
                let ov = zone::overlap(tz, a, b);
                let after_overlap = (ov.end - ov.after).and_utc();
                let m = self.next_local(l0)?;
                if t == b || t > a {
                    // Second pass: a fixed time already fired in the first pass.
                    if self.rhythmic && m < ov.end {
                        return Some((m - ov.after).and_utc());
                    }
                } else {
                    if m < ov.end {
                        return Some((m - ov.before).and_utc());
                    }
                    if self.rhythmic
                        && let Some(m2) = self.next_local(ov.start).filter(|m2| *m2 < ov.end)
                    {
                        return Some((m2 - ov.after).and_utc());
                    }
                }
                t = after_overlap;
                continue;
            }
            let mut best = self.instant_of(tz, self.next_local(l0)?);
            // Just after a spring-forward, wall times inside the gap (earlier than l0) still map
            // to instants ≥ t: the gap end itself, or a rhythmic cron's shifted times.
            if let Some(before) = zone::recent_gap_offset(tz, t) {
                let l_pre = t.naive_utc() + before;
                if let Some(in_gap) = self.next_local(l_pre).filter(|m| *m < l0) {
                    let candidate = self.instant_of(tz, in_gap);
                    if candidate >= t && candidate < best {
                        best = candidate;
                    }
                }
            }
            return Some(best);
        }
        None
    }

    /// The instant a matching wall time fires at (overlap: first occurrence; gap: per the rules).
    fn instant_of(&self, tz: Tz, m: NaiveDateTime) -> DateTime<Utc> {
        match zone::wall(tz, m) {
            Wall::Single(i) | Wall::Twice(i, _) => i,
            Wall::Gap(g) if self.rhythmic => g.shifted,
            Wall::Gap(g) => g.end,
        }
    }
}

fn crontab_name(field: &str) -> &str {
    match field {
        "day" => "day-of-month",
        "dayOfWeek" => "day-of-week",
        other => other,
    }
}

fn describe_texts(texts: &[&str; 8]) -> String {
    FIELD_NAMES
        .iter()
        .zip(texts)
        .map(|((n, _), t)| format!("{n}={t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unreachable_err() -> CronError {
    (
        "trigger".into(),
        String::new(),
        "internal error: wrong number of cron fields".into(),
    )
}

/// The smallest set bit ≥ `from` in `bits`.
#[inline]
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits & (!0u64 << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn next_day(y: i32, mo: u32, d: u32) -> (i32, u32, u32) {
    if d < days_in_month(y, mo) {
        (y, mo, d + 1)
    } else if mo == 12 {
        (y + 1, 1, 1)
    } else {
        (y, mo + 1, 1)
    }
}

/// Days in month (y, m).
pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Rounds `t` up to a whole second: cron fire times are whole wall-clock seconds.
pub(crate) fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.timestamp_subsec_nanos() == 0 {
        t
    } else {
        DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap_or(t)
    }
}
