//! APScheduler's CalendarIntervalTrigger: fire dates every N years/months/weeks/days from the
//! start date, at a fixed local time of day.

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::cron::days_in_month;
use super::zone;

/// A compiled calendar interval.
#[derive(Debug, Clone)]
pub(crate) struct CalendarRule {
    /// years * 12 + months.
    months: u32,
    /// weeks * 7 + days.
    days: u32,
    time: NaiveTime,
    /// The first fire date: the start instant's local date.
    anchor: NaiveDate,
}

impl CalendarRule {
    /// A rule anchored at `start`'s local date in `tz`.
    pub fn new(months: u32, days: u32, time: NaiveTime, tz: Tz, start: DateTime<Utc>) -> CalendarRule {
        CalendarRule {
            months,
            days,
            time,
            anchor: zone::local(tz, start).date(),
        }
    }

    /// The fire date after `d`, APScheduler's way: add the months keeping the day, adding
    /// another whole period while that day does not exist in the month, then add the days.
    fn step(&self, d: NaiveDate) -> Option<NaiveDate> {
        let mut date = d;
        if self.months > 0 {
            let mut index = d.year() as i64 * 12 + d.month0() as i64;
            // A valid anchor day recurs within 8 years (Feb 29 across a skipped century leap year).
            loop {
                index += self.months as i64;
                let (y, m) = ((index.div_euclid(12)) as i32, index.rem_euclid(12) as u32 + 1);
                if y > 9999 {
                    return None;
                }
                if d.day() <= days_in_month(y, m) {
                    date = NaiveDate::from_ymd_opt(y, m, d.day())?;
                    break;
                }
            }
        }
        let next = date.checked_add_days(Days::new(self.days as u64))?;
        (next.year() <= 9999).then_some(next)
    }

    /// The fire instant of date `d`: a gap time fires at the first instant after the gap, an
    /// ambiguous time at its first occurrence.
    fn instant(&self, tz: Tz, d: NaiveDate) -> DateTime<Utc> {
        zone::first_instant(tz, d.and_time(self.time))
    }

    /// The first fire instant ≥ `from`.
    pub fn at_or_after(&self, tz: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let target = zone::local(tz, from).date();
        let mut d = if target <= self.anchor {
            self.anchor
        } else if self.months == 0 {
            // Pure day/week periods: jump straight to the period before `from`'s date.
            let periods = (target - self.anchor).num_days() / self.days as i64;
            self.anchor
                .checked_add_days(Days::new((periods.max(1) - 1) as u64 * self.days as u64))?
        } else if self.days == 0 {
            // Months only: every fire keeps the anchor day, so jump to one period before.
            let months_apart = (target.year() as i64 * 12 + target.month0() as i64)
                - (self.anchor.year() as i64 * 12 + self.anchor.month0() as i64);
            let periods = (months_apart / self.months as i64 - 1).max(0);
            let index =
                self.anchor.year() as i64 * 12 + self.anchor.month0() as i64 + periods * self.months as i64;
            let (y, m) = ((index.div_euclid(12)) as i32, index.rem_euclid(12) as u32 + 1);
            first_valid_from(y, m, self.anchor.day(), self.months)?
        } else {
            // Months and days together drift (Jan 30 → Mar 31 → Jun 1 …): walk from the anchor.
            // At most 12 fire dates a year, so this stays short.
            self.anchor
        };
        loop {
            let t = self.instant(tz, d);
            if t >= from {
                return Some(t);
            }
            d = self.step(d)?;
        }
    }
}

/// A fire date and its place in the rule's sequence of candidate dates: the `j`-th period
/// after the anchor (for months-only rules some candidates do not exist and are skipped; for
/// drifting rules `j` counts fire dates).
#[derive(Debug, Clone, Copy)]
struct Pos {
    j: i64,
    date: NaiveDate,
}

/// Offsets further apart than this between two fire times hint at a whole-day gap (Samoa
/// skipped 2011-12-30), where two fire dates can share an instant: counting dates would then
/// overcount, so such windows are left to the scan.
const WHOLE_DAY_GAP_HINT_SECS: i32 = 20 * 3600;

impl CalendarRule {
    /// The fire times from `first` (itself a fire time) up to and including `hi`: how many,
    /// and the last `keep` (oldest first). Days-only and months-only rules jump there by
    /// counting periods, then correct by a step or two with the exact instants; rules that
    /// drift (months and days) walk the dates, at most twelve a year. `None` when the answer
    /// is better left to a scan.
    pub fn due(
        &self,
        tz: Tz,
        first: DateTime<Utc>,
        hi: DateTime<Utc>,
        keep: usize,
    ) -> Option<(u64, Vec<DateTime<Utc>>)> {
        let start = self.last_at_or_before(tz, first)?;
        if self.instant(tz, start.date) != first {
            return None;
        }
        let (end, last) = if self.months > 0 && self.days > 0 {
            self.walk(tz, start, hi, keep)?
        } else {
            let end = self.last_at_or_before(tz, hi)?;
            let mut last = Vec::with_capacity(keep.min(1024));
            let mut p = end;
            while last.len() < keep {
                last.push(self.instant(tz, p.date));
                if p.j <= start.j {
                    break;
                }
                p = self.prev(p)?;
            }
            last.reverse();
            (end, last)
        };
        if end.j < start.j {
            return None;
        }
        let end_t = self.instant(tz, end.date);
        let shift =
            zone::offset_at(tz, end_t).local_minus_utc() - zone::offset_at(tz, first).local_minus_utc();
        if shift.abs() >= WHOLE_DAY_GAP_HINT_SECS {
            return None;
        }
        Some((self.count(start, end), last))
    }

    /// The last fire date whose instant is at or before `x`.
    fn last_at_or_before(&self, tz: Tz, x: DateTime<Utc>) -> Option<Pos> {
        // A fire date two days after `x`'s local date is later than `x` in every zone (offsets
        // differ by at most 26 hours), so the answer is on or before that date.
        let target = zone::local(tz, x)
            .date()
            .checked_add_days(Days::new(2))
            .unwrap_or(NaiveDate::MAX)
            .min(last_date());
        let mut p = self.on_or_before(target)?;
        while self.instant(tz, p.date) > x {
            p = self.prev(p)?;
        }
        Some(p)
    }

    /// The last fire date on or before `d`.
    fn on_or_before(&self, d: NaiveDate) -> Option<Pos> {
        if d < self.anchor {
            return None;
        }
        if self.months == 0 {
            let j = (d - self.anchor).num_days() / self.days as i64;
            return Some(Pos {
                j,
                date: self.candidate(j)?,
            });
        }
        if self.days > 0 {
            let mut p = Pos {
                j: 0,
                date: self.anchor,
            };
            while let Some(date) = self.step(p.date).filter(|next| *next <= d) {
                p = Pos { j: p.j + 1, date };
            }
            return Some(p);
        }
        let mut j = (month_index(d) - month_index(self.anchor)) / self.months as i64;
        while j >= 0 {
            if let Some(date) = self.candidate(j).filter(|date| *date <= d) {
                return Some(Pos { j, date });
            }
            j -= 1;
        }
        None
    }

    /// The fire date before `p`.
    fn prev(&self, p: Pos) -> Option<Pos> {
        if self.months > 0 && self.days > 0 {
            return self.on_or_before(p.date.pred_opt()?);
        }
        let mut j = p.j - 1;
        while j >= 0 {
            if let Some(date) = self.candidate(j) {
                return Some(Pos { j, date });
            }
            j -= 1;
        }
        None
    }

    /// The `j`-th candidate date of a days-only or months-only rule; `None` if that month lacks
    /// the anchor's day or it lies past year 9999, as in [`CalendarRule::step`].
    fn candidate(&self, j: i64) -> Option<NaiveDate> {
        if self.months == 0 {
            let days = u64::try_from(j).ok()?.checked_mul(self.days as u64)?;
            return self
                .anchor
                .checked_add_days(Days::new(days))
                .filter(|d| d.year() <= 9999);
        }
        let index = month_index(self.anchor) + j * self.months as i64;
        let (y, m) = (index.div_euclid(12) as i32, index.rem_euclid(12) as u32 + 1);
        if y > 9999 || self.anchor.day() > days_in_month(y, m) {
            return None;
        }
        NaiveDate::from_ymd_opt(y, m, self.anchor.day())
    }

    /// A drifting rule's fire dates from `start` up to the last one at or before `hi`, walked:
    /// the last of them and the instants of the last `keep`.
    fn walk(&self, tz: Tz, start: Pos, hi: DateTime<Utc>, keep: usize) -> Option<(Pos, Vec<DateTime<Utc>>)> {
        let target = zone::local(tz, hi)
            .date()
            .checked_add_days(Days::new(2))
            .unwrap_or(NaiveDate::MAX)
            .min(last_date());
        let mut recent: VecDeque<Pos> = VecDeque::with_capacity(keep.min(1024) + 4);
        let mut p = start;
        loop {
            if recent.len() == keep.saturating_add(4) {
                recent.pop_front();
            }
            recent.push_back(p);
            match self.step(p.date).filter(|next| *next <= target) {
                Some(date) => p = Pos { j: p.j + 1, date },
                None => break,
            }
        }
        while recent.back().is_some_and(|p| self.instant(tz, p.date) > hi) {
            recent.pop_back();
        }
        let end = *recent.back()?;
        let skip = recent.len().saturating_sub(keep);
        let last = recent
            .iter()
            .skip(skip)
            .map(|p| self.instant(tz, p.date))
            .collect();
        Some((end, last))
    }

    /// The fire dates from `start` to `end`, both included.
    fn count(&self, start: Pos, end: Pos) -> u64 {
        let n = (end.j - start.j + 1) as u64;
        let day = self.anchor.day();
        if self.months == 0 || self.days > 0 || day <= 28 {
            return n;
        }
        // Whether a month has the anchor's day repeats with the month of the year, and for
        // the 29th with the 400-year leap cycle: count whole cycles, visit the rest.
        let cycle = if day == 29 { 4800 } else { 12 };
        let period = (cycle / gcd(self.months as i64, cycle)) as u64;
        let exists = |j: i64| self.candidate(j).is_some();
        let visit = |from: i64, to: i64| (from..=to).filter(|j| exists(*j)).count() as u64;
        if n <= 2 * period {
            return visit(start.j, end.j);
        }
        let per_period = visit(start.j, start.j + period as i64 - 1);
        let whole = n / period;
        whole * per_period + visit(start.j + (whole * period) as i64, end.j)
    }
}

fn month_index(d: NaiveDate) -> i64 {
    d.year() as i64 * 12 + d.month0() as i64
}

fn last_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// The first (y, m) + k·period month (k ≥ 0) in which `day` exists, as a date.
fn first_valid_from(mut y: i32, mut m: u32, day: u32, period: u32) -> Option<NaiveDate> {
    for _ in 0..100 {
        if y > 9999 {
            return None;
        }
        if day <= days_in_month(y, m) {
            return NaiveDate::from_ymd_opt(y, m, day);
        }
        let index = y as i64 * 12 + m as i64 - 1 + period as i64;
        (y, m) = ((index.div_euclid(12)) as i32, index.rem_euclid(12) as u32 + 1);
    }
    None
}
