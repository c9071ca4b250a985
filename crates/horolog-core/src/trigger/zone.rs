//! Mapping local wall-clock times of an IANA zone to real instants, including the DST gap and
//! overlap cases the time semantics (TRIGGERS.md) give rules for.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// How a local wall-clock time exists in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wall {
    /// Exists exactly once.
    Single(DateTime<Utc>),
    /// Exists twice (fall-back overlap): earlier and later instant.
    Twice(DateTime<Utc>, DateTime<Utc>),
    /// Does not exist (spring-forward gap).
    Gap(Gap),
}

/// A spring-forward gap around a non-existent local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The local time, interpreted with the offset in force before the gap: the instant the
    /// wall clock would have shown it had it not jumped ("shifted forward by the gap").
    pub shifted: DateTime<Utc>,
    /// The first instant after the gap (the transition itself).
    pub end: DateTime<Utc>,
}

/// True for zones that never change their offset, where every local time exists once.
pub(crate) fn is_fixed(tz: Tz) -> bool {
    matches!(
        tz,
        Tz::UTC
            | Tz::Etc__UTC
            | Tz::Etc__GMT
            | Tz::GMT
            | Tz::Etc__Universal
            | Tz::Etc__Zulu
            | Tz::Universal
            | Tz::Zulu
    )
}

/// The UTC offset of `tz` at instant `t`.
pub(crate) fn offset_at(tz: Tz, t: DateTime<Utc>) -> FixedOffset {
    tz.offset_from_utc_datetime(&t.naive_utc()).fix()
}

/// The local wall-clock time of instant `t` in `tz`.
pub(crate) fn local(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    if is_fixed(tz) {
        return t.naive_utc();
    }
    t.naive_utc() + offset_at(tz, t)
}

/// Classifies a local time of `tz`.
pub(crate) fn wall(tz: Tz, l: NaiveDateTime) -> Wall {
    if is_fixed(tz) {
        return Wall::Single(l.and_utc());
    }
    match tz.from_local_datetime(&l) {
        chrono::LocalResult::Single(t) => Wall::Single(t.to_utc()),
        chrono::LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.to_utc(), b.to_utc());
            Wall::Twice(a.min(b), a.max(b))
        }
        chrono::LocalResult::None => Wall::Gap(gap_around(tz, l)),
    }
}

/// The instant a fixed local time fires at: once, at its first occurrence in an overlap, at the
/// first instant after a gap.
pub(crate) fn first_instant(tz: Tz, l: NaiveDateTime) -> DateTime<Utc> {
    match wall(tz, l) {
        Wall::Single(t) | Wall::Twice(t, _) => t,
        Wall::Gap(g) => g.end,
    }
}

/// The offsets in force well before and well after local time `l`. Transitions are far more
/// than two days apart in every zone, so the probes straddle exactly the one around `l`.
fn offsets_around(tz: Tz, l: NaiveDateTime) -> (FixedOffset, FixedOffset) {
    let probe = |d: TimeDelta| offset_at(tz, (l + d).and_utc());
    (probe(TimeDelta::days(-2)), probe(TimeDelta::days(2)))
}

fn gap_around(tz: Tz, l: NaiveDateTime) -> Gap {
    let (before, after) = offsets_around(tz, l);
    let shifted = (l - before).and_utc();
    let earliest = (l - after).and_utc();
    Gap {
        shifted,
        end: first_with_offset(tz, earliest, shifted, after),
    }
}

/// If `t` lies less than one gap length after a spring-forward transition, the offset in force
/// before it (so `t + offset` reads `t` on the pre-transition clock, inside the gap).
pub(crate) fn recent_gap_offset(tz: Tz, t: DateTime<Utc>) -> Option<FixedOffset> {
    let now = offset_at(tz, t);
    // The longest gaps (Pacific/Apia 2011) are a whole day; transitions are further apart.
    let before = offset_at(tz, t - TimeDelta::hours(25));
    let gap = now.local_minus_utc() - before.local_minus_utc();
    if gap <= 0 {
        return None;
    }
    (offset_at(tz, t - TimeDelta::seconds(gap as i64)) == before).then_some(before)
}

/// The local-time bounds `[start, end)` of the fall-back overlap that contains the instant `t`
/// (either pass), with the offsets before and after the transition.
pub(crate) struct Overlap {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub before: FixedOffset,
    pub after: FixedOffset,
}

/// The overlap around the ambiguous local time whose instants are `a < b`.
pub(crate) fn overlap(tz: Tz, a: DateTime<Utc>, b: DateTime<Utc>) -> Overlap {
    let before = offset_at(tz, a);
    let after = offset_at(tz, b);
    let transition = first_with_offset(tz, a, b, after);
    Overlap {
        start: transition.naive_utc() + after,
        end: transition.naive_utc() + before,
        before,
        after,
    }
}

/// The first whole second in `(lo, hi]` whose offset is `target`, given that `hi` has it.
/// Binary search: transitions are never closer than the few hours searched here.
fn first_with_offset(tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>, target: FixedOffset) -> DateTime<Utc> {
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let at = DateTime::from_timestamp(mid, 0).unwrap_or_default();
        if offset_at(tz, at) == target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn naive(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn gap_maps_to_transition_and_shifted_instant() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let Wall::Gap(g) = wall(berlin, naive(2024, 3, 31, 2, 30)) else {
            panic!()
        };
        assert_eq!(g.end, utc("2024-03-31T01:00:00Z"));
        assert_eq!(g.shifted, utc("2024-03-31T01:30:00Z"));
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        let Wall::Gap(g) = wall(apia, naive(2011, 12, 30, 12, 0)) else {
            panic!()
        };
        assert_eq!(g.end, utc("2011-12-30T10:00:00Z"));
    }

    #[test]
    fn overlap_bounds() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let Wall::Twice(a, b) = wall(berlin, naive(2024, 10, 27, 2, 30)) else {
            panic!()
        };
        assert_eq!((a, b), (utc("2024-10-27T00:30:00Z"), utc("2024-10-27T01:30:00Z")));
        let o = overlap(berlin, a, b);
        assert_eq!(
            (o.start, o.end),
            (naive(2024, 10, 27, 2, 0), naive(2024, 10, 27, 3, 0))
        );
    }
}
