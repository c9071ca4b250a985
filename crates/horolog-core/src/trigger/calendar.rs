//! APScheduler's CalendarIntervalTrigger: fire dates every N years/months/weeks/days from the
//! start date, at a fixed local time of day.

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
