//! The planner: which fire times of a Schedule are due, and what they turn into.
//!
//! Pure: it takes the fire-time source, the cursor (`status.cursor`: the last fire time planned), the current time
//! and the Schedule's policy, and returns a [`Plan`]. No kube, no tokio, no clock.
//!
//! The rules are APScheduler 4's (see TRIGGERS.md, "Due fire times, coalescing and catch-up"):
//!
//! - the due fire times are every fire time after the cursor up to and including `now`, and
//!   one pass handles all of them, however many there are;
//! - `coalesce` keeps the earliest, the latest, or all of them: `Earliest` and `Latest` make
//!   exactly one run, `All` one per due fire time (up to the catch-up bound below);
//! - each kept run gets `startDeadline = fireTime + jitter + misfireGraceTime`.
//!
//! **Jitter** is capped afresh for each kept fire time: `cap = min(maxJitter, following −
//! fireTime − 1µs)`, where `following` is the trigger's next fire time after this one (the next
//! due one, or the first one after `now` for the last due one), so a jittered run never reaches
//! the following fire time. APScheduler carries the cap over from one fire time to the next
//! within a pass, so it can only shrink (with fire times 0 s, 10 s, 100 s and `maxJitter: 50s`
//! it gives the run at 10 s a cap just under 10 s instead of 50 s); horolog does not copy that.
//! [`seeded_jitter`] picks the delay deterministically, so a repeated reconcile repeats it.
//!
//! Two decisions of our own, both documented in the API:
//!
//! - **Missed runs are counted, not created.** A kept fire time whose start deadline has
//!   already passed when it is planned becomes an entry of [`Plan::missed`] (the controller
//!   adds it to `status.missedFireTimes` and says so in a `Missed` Event) instead of a JobRun
//!   that could only ever be Missed. After a week of downtime with `coalesce: All`, that is
//!   one Event instead of thousands of dead objects. Runs that miss their deadline *later*
//!   (while Waiting for a slot) are JobRuns in phase Missed.
//! - **Catch-up is bounded** by [`CatchUp`]. With `coalesce: All` at most `max_runs` runs are
//!   created; the newest are kept and the older ones are reported in [`Plan::dropped`] and
//!   [`Plan::dropped_range`] (the caller records them as missed). The work is bounded too:
//!   [`FireTimes::due_between`] summarises the due fire times without visiting each one where it
//!   can (a compiled `interval` or `calendarInterval` trigger counts them arithmetically, so a
//!   ten-year backlog of every-second fire times plans in microseconds); other sources visit at
//!   most `max_scanned` of them and find the newest by searching backwards from `now`. The
//!   fire times the plan keeps are always the right ones; past the bound the counts
//!   ([`Plan::coalesced`], [`Plan::dropped`]) are lower bounds and [`Plan::exact`] says so.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::spec::CoalescePolicy;

/// A source of fire times: the compiled trigger in production, synthetic sequences in tests.
pub trait FireTimes {
    /// The first fire time strictly after `after`, or the very first one for `None`;
    /// `None` once the source is exhausted.
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>>;

    /// The fire times in (after, until]: how many, the first, the last `keep` (oldest first),
    /// and the first one after `until`; at bounded cost.
    ///
    /// The default is [`scan_due`]: exact up to `scan_limit` due fire times, a lower bound on
    /// the count beyond (`first`, `last` and `next` stay exact). A source that can count
    /// arithmetically overrides it with an answer that is exact at any backlog.
    fn due_between(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        keep: usize,
        scan_limit: usize,
    ) -> Due {
        scan_due(self, after, until, keep, scan_limit)
    }
}

/// A source behind a reference or a smart pointer is a source too (`&Trigger`,
/// `Box<dyn FireTimes>`, `Arc<Trigger>`): each asks the source it points to.
macro_rules! fire_times_through_pointer {
    ($($pointer:ty),+) => {$(
        impl<T: FireTimes + ?Sized> FireTimes for $pointer {
            fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
                (**self).next_after(after)
            }

            fn due_between(
                &self,
                after: Option<DateTime<Utc>>,
                until: DateTime<Utc>,
                keep: usize,
                scan_limit: usize,
            ) -> Due {
                (**self).due_between(after, until, keep, scan_limit)
            }
        }
    )+};
}

fire_times_through_pointer!(&T, Box<T>, std::sync::Arc<T>);

/// A summary of the fire times in `(after, until]` (see [`FireTimes::due_between`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// How many fire times are due; a lower bound when `exact` is false.
    pub count: u64,
    /// False when the scan bound was reached before every due fire time was counted.
    pub exact: bool,
    /// The earliest due fire time; `None` when none is due.
    pub first: Option<DateTime<Utc>>,
    /// The last `keep` due fire times (all of them if fewer are due), oldest first.
    pub last: Vec<DateTime<Utc>>,
    /// The first fire time after both `after` and `until`; `None` when exhausted.
    pub next: Option<DateTime<Utc>>,
}

impl Due {
    /// Nothing due; `next` is the first fire time after the window.
    pub(crate) fn none(next: Option<DateTime<Utc>>) -> Due {
        Due {
            count: 0,
            exact: true,
            first: None,
            last: Vec::new(),
            next,
        }
    }
}

/// Runs created by one planning pass, at most.
pub const DEFAULT_MAX_RUNS_PER_PASS: usize = 100;
/// Due fire times one planning pass visits one by one, at most (about a day of an every-second
/// trigger); past it the counts of a scanning source are lower bounds.
pub const DEFAULT_MAX_SCANNED_PER_PASS: usize = 100_000;

/// The bound on a catch-up after downtime or a long pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// Runs one pass creates at most; with `coalesce: All` the newest are kept.
    pub max_runs: usize,
    /// Due fire times one pass visits one by one at most, so a tiny cron period after long
    /// downtime cannot stall the reconciler; beyond it the counts are lower bounds.
    pub max_scanned: usize,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp {
            max_runs: DEFAULT_MAX_RUNS_PER_PASS,
            max_scanned: DEFAULT_MAX_SCANNED_PER_PASS,
        }
    }
}

/// The parts of a Schedule's spec the planner needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// What several due fire times turn into.
    pub coalesce: CoalescePolicy,
    /// How late a run may start; `None` = no deadline.
    pub misfire_grace_time: Option<TimeDelta>,
    /// The largest random delay added to a fire time; `None` or zero = no jitter.
    pub max_jitter: Option<TimeDelta>,
    /// The catch-up bound.
    pub catch_up: CatchUp,
}

/// One run to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedRun {
    /// The scheduled fire time (names the JobRun).
    pub fire_time: DateTime<Utc>,
    /// The random delay chosen for it; the pod starts no earlier than `fire_time + jitter`.
    pub jitter: TimeDelta,
    /// `fire_time + jitter + misfireGraceTime`; `None` without a grace time.
    pub start_deadline: Option<DateTime<Utc>>,
}

/// What one planning pass decided. Every due fire time is handled by the one pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Runs to create, oldest first. Never two for one fire time.
    pub runs: Vec<PlannedRun>,
    /// Fire times kept by coalescing whose start deadline had already passed: recorded as
    /// missed, no JobRun.
    pub missed: Vec<DateTime<Utc>>,
    /// Due fire times merged away by `coalesce` (Earliest / Latest).
    pub coalesced: u64,
    /// Due fire times that `coalesce: All` would have run but the catch-up cap dropped (the
    /// oldest ones); the caller records them as missed.
    pub dropped: u64,
    /// The first and the last dropped fire time, when any were dropped.
    pub dropped_range: Option<RangeInclusive<DateTime<Utc>>>,
    /// False when the due fire times were too many to count one by one: `coalesced` and
    /// `dropped` are then lower bounds. The runs, `missed` and `dropped_range` are exact.
    pub exact: bool,
    /// The new cursor (`status.cursor`): the last due fire time, or the old cursor.
    pub cursor: Option<DateTime<Utc>>,
    /// The first fire time after `now` (and after the cursor); `None` when exhausted.
    pub next_fire_time: Option<DateTime<Utc>>,
}

impl Default for Plan {
    /// Nothing planned, nothing due: the counts are exact.
    fn default() -> Self {
        Plan {
            runs: Vec::new(),
            missed: Vec::new(),
            coalesced: 0,
            dropped: 0,
            dropped_range: None,
            exact: true,
            cursor: None,
            next_fire_time: None,
        }
    }
}

/// Plans one pass: every due fire time after `cursor` up to and including `now`, coalesced,
/// jittered (`jitter(fire_time, cap)` picks a delay in `0..=cap`) and checked against the
/// misfire grace time.
pub fn plan(
    source: &impl FireTimes,
    cursor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: &Policy,
    mut jitter: impl FnMut(DateTime<Utc>, TimeDelta) -> TimeDelta,
) -> Plan {
    let max_runs = policy.catch_up.max_runs.max(1);
    // All keeps the newest max_runs and needs the one before them to name the dropped range.
    let keep = match policy.coalesce {
        CoalescePolicy::All => max_runs.saturating_add(1),
        CoalescePolicy::Earliest | CoalescePolicy::Latest => 1,
    };
    let due = source.due_between(cursor, now, keep, policy.catch_up.max_scanned.max(1));
    let (Some(_), Some(&last_due)) = (due.first, due.last.last()) else {
        return Plan {
            cursor,
            next_fire_time: due.next,
            exact: due.exact,
            ..Plan::default()
        };
    };
    let mut plan = Plan {
        exact: due.exact,
        cursor: Some(last_due),
        next_fire_time: due.next,
        ..Plan::default()
    };
    let kept = coalesce(policy.coalesce, &due, max_runs, &mut plan);

    let max_jitter = policy.max_jitter.filter(|max| *max > TimeDelta::zero());
    for (i, &fire_time) in kept.iter().enumerate() {
        let delay = match max_jitter {
            None => TimeDelta::zero(),
            Some(max) => {
                // Afresh for each fire time: the gap to the trigger's own next fire time.
                let following = match kept.get(i + 1) {
                    Some(&following) => Some(following),
                    None if fire_time == last_due => due.next,
                    None => next_strictly_after(source, Some(fire_time)),
                };
                let cap = jitter_cap(max, fire_time, following);
                jitter(fire_time, cap).clamp(TimeDelta::zero(), cap)
            }
        };
        let start_deadline = policy.misfire_grace_time.map(|grace| fire_time + delay + grace);
        // Strict, as APScheduler: a run may still start at the very instant of its deadline.
        if start_deadline.is_some_and(|deadline| deadline < now) {
            plan.missed.push(fire_time);
        } else {
            plan.runs.push(PlannedRun {
                fire_time,
                jitter: delay,
                start_deadline,
            });
        }
    }
    plan
}

/// The due fire times `coalesce` keeps, recording in `plan` how many it merged away or, for
/// `All`, how many older ones the catch-up bound `max_runs` dropped.
fn coalesce<'d>(
    coalesce: CoalescePolicy,
    due: &'d Due,
    max_runs: usize,
    plan: &mut Plan,
) -> &'d [DateTime<Utc>] {
    let (Some(first), Some(last)) = (due.first.as_ref(), due.last.last()) else {
        return &[];
    };
    let count = due.count.max(due.last.len() as u64);
    match coalesce {
        CoalescePolicy::Earliest => {
            plan.coalesced = count - 1;
            std::slice::from_ref(first)
        }
        CoalescePolicy::Latest => {
            plan.coalesced = count - 1;
            std::slice::from_ref(last)
        }
        CoalescePolicy::All => {
            let skip = due.last.len().saturating_sub(max_runs);
            let newest = &due.last[skip..];
            plan.dropped = count - newest.len() as u64;
            if plan.dropped > 0 && skip > 0 {
                plan.dropped_range = Some(*first..=due.last[skip - 1]);
            }
            newest
        }
    }
}

/// The largest jitter for `fire_time`: `max`, but short of the `following` fire time, so a
/// jittered run never reaches it.
fn jitter_cap(max: TimeDelta, fire_time: DateTime<Utc>, following: Option<DateTime<Utc>>) -> TimeDelta {
    following
        .map_or(max, |following| {
            max.min(following - fire_time - TimeDelta::microseconds(1))
        })
        .max(TimeDelta::zero())
}

/// A jitter in `0..=cap`, whole milliseconds, the same for the same Schedule and fire time
/// every time it is computed (so a repeated reconcile repeats the same decision).
pub fn seeded_jitter(seed: &str, fire_time: DateTime<Utc>, cap: TimeDelta) -> TimeDelta {
    let cap_ms = cap.num_milliseconds().max(0) as u64;
    if cap_ms == 0 {
        return TimeDelta::zero();
    }
    let digest = Sha256::digest(format!("{seed}/{}", fire_time.timestamp_micros()).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    TimeDelta::milliseconds((u64::from_le_bytes(bytes) % (cap_ms + 1)) as i64)
}

/// The due fire times of any source, by visiting them: [`FireTimes::due_between`]'s default.
///
/// Walks forward from `after` over at most `scan_limit` due fire times; if that reaches past
/// `until` the answer is exact. Otherwise the newest `keep` are found by searching backwards
/// from `until` in growing windows (the fire times after `until − w`, `w` doubling, each probe
/// visiting at most `4·keep + 16`), and `count` is the fire times actually seen: exact if the
/// backwards search met the forward scan, otherwise a lower bound with `exact: false`. The cost
/// is at most `scan_limit` calls of `next_after` plus a bounded number of probes (a doubling
/// and a bisection over the nanoseconds between the two parts), whatever the backlog.
pub fn scan_due<S: FireTimes + ?Sized>(
    source: &S,
    after: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    keep: usize,
    scan_limit: usize,
) -> Due {
    let Some(first) = next_strictly_after(source, after) else {
        return Due::none(None);
    };
    if first > until {
        return Due::none(Some(first));
    }
    let limit = scan_limit.max(1) as u64;
    let mut newest = Newest::new(keep);
    let mut count = 0u64;
    let mut fire_time = first;
    let (frontier, beyond) = loop {
        count += 1;
        newest.push(fire_time);
        match next_strictly_after(source, Some(fire_time)) {
            Some(next) if next <= until => {
                if count >= limit {
                    break (fire_time, next);
                }
                fire_time = next;
            }
            next => {
                return Due {
                    count,
                    exact: true,
                    first: Some(first),
                    last: newest.into_vec(),
                    next,
                };
            }
        }
    };

    // More are due than one pass visits: the newest lie just before `until`.
    let guess = (frontier - first)
        .num_nanoseconds()
        .map(|span| {
            let gap = span / (count as i64 - 1).max(1);
            gap.saturating_mul(keep.max(1) as i64)
        })
        .filter(|w| *w > 0)
        .map_or(TimeDelta::seconds(1), TimeDelta::nanoseconds);
    let (tail, reached_frontier) = newest_before(source, frontier, until, keep, guess);
    // Nothing was skipped if the search reached back to the forward scan.
    let exact = reached_frontier || tail.first() == Some(&beyond);
    let count = count + tail.len() as u64;
    for t in tail {
        newest.push(t);
    }
    Due {
        count,
        exact,
        first: Some(first),
        last: newest.into_vec(),
        next: next_strictly_after(source, Some(until)),
    }
}

/// The fire times in `(start, until]` for a `start` at or after `frontier` late enough that a
/// probe visits a bounded number of them, yet early enough that there are at least `keep`
/// (or every one after `frontier`, in which case the flag is true).
fn newest_before<S: FireTimes + ?Sized>(
    source: &S,
    frontier: DateTime<Utc>,
    until: DateTime<Utc>,
    keep: usize,
    guess: TimeDelta,
) -> (Vec<DateTime<Utc>>, bool) {
    let cap = keep.saturating_mul(4).saturating_add(16);
    // A window start with fewer than `keep` fire times between it and `until`.
    let mut too_few = until;
    let mut width = guess.max(TimeDelta::nanoseconds(1));
    loop {
        let start = until
            .checked_sub_signed(width)
            .filter(|start| *start > frontier)
            .unwrap_or(frontier);
        match probe(source, start, until, cap) {
            Some(times) if times.len() >= keep || start == frontier => {
                return (times, start == frontier);
            }
            Some(_) => {
                too_few = start;
                width = width.checked_mul(2).unwrap_or(TimeDelta::MAX);
            }
            None => return (bisect(source, start, too_few, until, keep, cap), false),
        }
    }
}

/// Narrows a window start between `many` (more than `cap` fire times up to `until`) and `few`
/// (fewer than `keep`): the count drops by one fire time at a time as the start moves later,
/// so some start in between has `keep..=cap` of them.
fn bisect<S: FireTimes + ?Sized>(
    source: &S,
    mut many: DateTime<Utc>,
    mut few: DateTime<Utc>,
    until: DateTime<Utc>,
    keep: usize,
    cap: usize,
) -> Vec<DateTime<Utc>> {
    loop {
        let half = (few - many) / 2;
        if half <= TimeDelta::zero() {
            // Only a source whose fire times depend on where one starts asking gets here.
            return probe(source, few, until, cap).unwrap_or_default();
        }
        let mid = many + half;
        match probe(source, mid, until, cap) {
            Some(times) if times.len() >= keep => return times,
            Some(_) => few = mid,
            None => many = mid,
        }
    }
}

/// The fire times in `(start, until]`, or `None` if there are more than `cap`.
fn probe<S: FireTimes + ?Sized>(
    source: &S,
    start: DateTime<Utc>,
    until: DateTime<Utc>,
    cap: usize,
) -> Option<Vec<DateTime<Utc>>> {
    let mut times = Vec::new();
    let mut after = start;
    while let Some(next) = next_strictly_after(source, Some(after)).filter(|next| *next <= until) {
        if times.len() == cap {
            return None;
        }
        times.push(next);
        after = next;
    }
    Some(times)
}

/// The newest `keep` fire times pushed, oldest first.
struct Newest {
    keep: usize,
    times: VecDeque<DateTime<Utc>>,
}

impl Newest {
    fn new(keep: usize) -> Newest {
        Newest {
            keep,
            times: VecDeque::with_capacity(keep.min(1024)),
        }
    }

    fn push(&mut self, t: DateTime<Utc>) {
        if self.keep == 0 {
            return;
        }
        if self.times.len() == self.keep {
            self.times.pop_front();
        }
        self.times.push_back(t);
    }

    fn into_vec(self) -> Vec<DateTime<Utc>> {
        self.times.into()
    }
}

/// The next `count` fire times after `after` (e.g. `status.upcomingFireTimes`).
pub fn upcoming(source: &impl FireTimes, after: Option<DateTime<Utc>>, count: usize) -> Vec<DateTime<Utc>> {
    let mut times = Vec::with_capacity(count);
    let mut cursor = after;
    while times.len() < count {
        let Some(fire_time) = next_strictly_after(source, cursor) else {
            break;
        };
        times.push(fire_time);
        cursor = Some(fire_time);
    }
    times
}

/// `source.next_after(after)`, treating a source that does not move forward as exhausted so a
/// faulty trigger can never loop the planner forever.
fn next_strictly_after<S: FireTimes + ?Sized>(
    source: &S,
    after: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let next = source.next_after(after)?;
    match after {
        Some(after) if next <= after => None,
        _ => Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TriggerSpec;
    use crate::trigger::Trigger;
    use proptest::prelude::*;

    /// A fixed list of fire times, as a trigger would produce them.
    #[derive(Debug)]
    struct Times(Vec<DateTime<Utc>>);

    impl FireTimes for Times {
        fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
            self.0
                .iter()
                .copied()
                .find(|t| after.is_none_or(|after| *t > after))
        }
    }

    /// Every `period` seconds from `t(0)`, forever.
    struct Every(i64);

    impl FireTimes for Every {
        fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
            let Some(after) = after else { return Some(t(0)) };
            let elapsed = (after - t(0)).num_seconds();
            let steps = if elapsed < 0 { 0 } else { elapsed / self.0 + 1 };
            Some(t(steps * self.0))
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap_or_default()
    }

    fn no_jitter(_: DateTime<Utc>, _: TimeDelta) -> TimeDelta {
        TimeDelta::zero()
    }

    fn policy(coalesce: CoalescePolicy) -> Policy {
        Policy {
            coalesce,
            ..Policy::default()
        }
    }

    /// A plan that takes the largest jitter each run may have, and the caps it was offered.
    fn plan_at_the_caps(
        source: &impl FireTimes,
        cursor: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> (Plan, Vec<TimeDelta>) {
        let mut caps = Vec::new();
        let plan = plan(source, cursor, now, policy, |_, cap| {
            caps.push(cap);
            cap
        });
        (plan, caps)
    }

    fn fire_times(plan: &Plan) -> Vec<DateTime<Utc>> {
        plan.runs.iter().map(|r| r.fire_time).collect()
    }

    /// The reference: every due fire time, one by one, and the first one after `now`.
    fn all_due(
        source: &impl FireTimes,
        cursor: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let mut due = Vec::new();
        let mut after = cursor;
        loop {
            let Some(fire_time) = next_strictly_after(source, after) else {
                return (due, None);
            };
            if fire_time > now {
                return (due, Some(fire_time));
            }
            due.push(fire_time);
            after = Some(fire_time);
        }
    }

    /// A Schedule's trigger as the operator compiles it.
    fn trigger(json: serde_json::Value) -> Trigger {
        let spec: TriggerSpec = serde_json::from_value(json).unwrap();
        Trigger::compile(&spec, t(0)).unwrap()
    }

    /// The issue 11 backlog: an every-second trigger whose startTime is three days back, so
    /// 259,200 fire times are due at `now` (`t(0)` is the startTime).
    fn three_days_of_seconds(kind: &str) -> (Trigger, DateTime<Utc>) {
        let start = t(0).to_rfc3339();
        let trigger = match kind {
            "interval" => trigger(serde_json::json!({"interval": "1s", "startTime": start})),
            _ => trigger(serde_json::json!({"cron": "* * * * * *", "startTime": start})),
        };
        (trigger, t(259_199) + TimeDelta::milliseconds(500))
    }

    #[test]
    fn an_on_time_fire_creates_one_run_whatever_the_coalesce_policy() {
        for coalesce in [
            CoalescePolicy::Earliest,
            CoalescePolicy::Latest,
            CoalescePolicy::All,
        ] {
            let plan = plan(&Every(60), Some(t(0)), t(60), &policy(coalesce), no_jitter);
            assert_eq!(fire_times(&plan), vec![t(60)], "{coalesce:?}");
            assert_eq!(plan.cursor, Some(t(60)));
            assert_eq!(plan.next_fire_time, Some(t(120)));
            assert_eq!(plan.coalesced, 0);
            assert!(plan.exact);
        }
    }

    #[test]
    fn a_fire_time_equal_to_now_is_due() {
        let plan = plan(&Every(60), None, t(0), &Policy::default(), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(0)]);
    }

    #[test]
    fn nothing_is_due_before_the_next_fire_time() {
        let plan = plan(&Every(60), Some(t(60)), t(119), &Policy::default(), no_jitter);
        assert!(plan.runs.is_empty());
        assert_eq!(plan.cursor, Some(t(60)));
        assert_eq!(plan.next_fire_time, Some(t(120)));
        assert!(plan.exact);
    }

    // APScheduler 4 (coalesce, as TRIGGERS.md says): interval 1 s started 5.5 s in the past.
    #[test]
    fn coalesce_earliest_creates_one_run_for_the_oldest_due_fire_time() {
        let plan = plan(
            &Every(1),
            None,
            t(5) + TimeDelta::milliseconds(500),
            &policy(CoalescePolicy::Earliest),
            no_jitter,
        );
        assert_eq!(fire_times(&plan), vec![t(0)]);
        assert_eq!(plan.coalesced, 5);
        assert_eq!(
            plan.cursor,
            Some(t(5)),
            "the trigger advances past every due fire time"
        );
        assert_eq!(plan.next_fire_time, Some(t(6)));
    }

    #[test]
    fn coalesce_latest_creates_one_run_for_the_newest_due_fire_time() {
        let plan = plan(
            &Every(1),
            None,
            t(5) + TimeDelta::milliseconds(500),
            &policy(CoalescePolicy::Latest),
            no_jitter,
        );
        assert_eq!(fire_times(&plan), vec![t(5)]);
        assert_eq!(plan.coalesced, 5);
    }

    #[test]
    fn coalesce_all_creates_one_run_per_due_fire_time() {
        let plan = plan(
            &Every(1),
            None,
            t(5) + TimeDelta::milliseconds(500),
            &policy(CoalescePolicy::All),
            no_jitter,
        );
        assert_eq!(fire_times(&plan), (0..=5).map(t).collect::<Vec<_>>());
        assert_eq!(plan.coalesced, 0);
        assert_eq!(plan.dropped, 0);
        assert_eq!(plan.dropped_range, None);
    }

    #[test]
    fn coalesce_latest_turns_three_days_of_one_second_fire_times_into_exactly_one_run() {
        let (trigger, now) = three_days_of_seconds("interval");
        let plan = plan(&trigger, None, now, &policy(CoalescePolicy::Latest), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(259_199)]);
        assert_eq!(plan.coalesced, 259_199);
        assert!(plan.exact, "an interval counts its fire times arithmetically");
        assert_eq!(plan.cursor, Some(t(259_199)));
        assert_eq!(plan.next_fire_time, Some(t(259_200)));
        let again = super::plan(
            &trigger,
            plan.cursor,
            now,
            &policy(CoalescePolicy::Latest),
            no_jitter,
        );
        assert!(
            again.runs.is_empty(),
            "the next pass has nothing left to coalesce"
        );
    }

    #[test]
    fn coalesce_earliest_turns_three_days_of_one_second_fire_times_into_exactly_one_run() {
        let (trigger, now) = three_days_of_seconds("interval");
        let plan = plan(&trigger, None, now, &policy(CoalescePolicy::Earliest), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(0)]);
        assert_eq!(plan.coalesced, 259_199);
        assert!(plan.exact);
        assert_eq!(plan.cursor, Some(t(259_199)));
        let again = super::plan(
            &trigger,
            plan.cursor,
            now,
            &policy(CoalescePolicy::Earliest),
            no_jitter,
        );
        assert!(again.runs.is_empty());
    }

    #[test]
    fn coalesce_all_keeps_the_newest_hundred_of_three_days_and_names_the_dropped_range() {
        let (trigger, now) = three_days_of_seconds("interval");
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            catch_up: CatchUp {
                max_runs: 100,
                ..CatchUp::default()
            },
            ..Policy::default()
        };
        let plan = plan(&trigger, None, now, &policy, no_jitter);
        assert_eq!(fire_times(&plan), (259_100..259_200).map(t).collect::<Vec<_>>());
        assert_eq!(plan.dropped, 259_100);
        assert_eq!(plan.dropped_range, Some(t(0)..=t(259_099)));
        assert!(plan.exact);
        assert_eq!(plan.coalesced, 0);
        assert_eq!(plan.cursor, Some(t(259_199)));
    }

    #[test]
    fn a_three_day_every_second_cron_backlog_gives_one_run_for_the_latest_and_says_the_count_is_a_lower_bound()
     {
        let (trigger, now) = three_days_of_seconds("cron");
        let plan = plan(&trigger, None, now, &policy(CoalescePolicy::Latest), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(259_199)]);
        assert_eq!(plan.cursor, Some(t(259_199)));
        assert_eq!(plan.next_fire_time, Some(t(259_200)));
        assert!(
            !plan.exact,
            "259,200 due fire times are more than one pass counts"
        );
        assert!(
            (DEFAULT_MAX_SCANNED_PER_PASS as u64..259_199).contains(&plan.coalesced),
            "a lower bound: {}",
            plan.coalesced
        );

        let earliest = super::plan(&trigger, None, now, &policy(CoalescePolicy::Earliest), no_jitter);
        assert_eq!(fire_times(&earliest), vec![t(0)]);
        assert_eq!(earliest.cursor, Some(t(259_199)));
        assert!(!earliest.exact);

        let all = Policy {
            coalesce: CoalescePolicy::All,
            ..Policy::default()
        };
        let all = super::plan(&trigger, None, now, &all, no_jitter);
        assert_eq!(fire_times(&all), (259_100..259_200).map(t).collect::<Vec<_>>());
        assert_eq!(all.dropped_range, Some(t(0)..=t(259_099)));
        assert!(!all.exact && all.dropped < 259_100);
    }

    #[test]
    fn a_cron_backlog_within_the_scan_bound_is_counted_exactly() {
        let (trigger, _) = three_days_of_seconds("cron");
        let now = t(49_999);
        let plan = plan(&trigger, None, now, &policy(CoalescePolicy::Latest), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(49_999)]);
        assert_eq!(plan.coalesced, 49_999);
        assert!(plan.exact);
    }

    #[test]
    fn a_run_past_its_misfire_grace_time_is_recorded_as_missed_not_created() {
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            misfire_grace_time: Some(TimeDelta::seconds(30)),
            ..Policy::default()
        };
        let plan = plan(&Every(60), Some(t(0)), t(150), &policy, no_jitter);
        assert_eq!(plan.missed, vec![t(60)], "60 + 30 < 150");
        assert_eq!(fire_times(&plan), vec![t(120)], "120 + 30 >= 150");
        assert_eq!(plan.runs[0].start_deadline, Some(t(150)));
        assert_eq!(plan.cursor, Some(t(120)));
    }

    #[test]
    fn the_start_deadline_is_inclusive() {
        let policy = Policy {
            misfire_grace_time: Some(TimeDelta::seconds(30)),
            ..Policy::default()
        };
        let plan = plan(&Every(60), Some(t(0)), t(90), &policy, no_jitter);
        assert_eq!(fire_times(&plan), vec![t(60)]);
    }

    #[test]
    fn unpausing_coalesces_the_fire_times_that_passed_meanwhile() {
        let plan = plan(&Every(60), Some(t(0)), t(600), &Policy::default(), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(600)]);
        assert_eq!(plan.coalesced, 9);
    }

    #[test]
    fn an_exhausted_source_has_no_next_fire_time() {
        let source = Times(vec![t(10)]);
        let first = plan(&source, None, t(20), &Policy::default(), no_jitter);
        assert_eq!(fire_times(&first), vec![t(10)]);
        assert_eq!(first.next_fire_time, None);
        let again = plan(&source, first.cursor, t(30), &Policy::default(), no_jitter);
        assert!(again.runs.is_empty());
        assert_eq!(again.next_fire_time, None);
    }

    #[test]
    fn coalesce_all_keeps_the_newest_runs_up_to_the_cap_and_reports_the_rest_dropped() {
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            catch_up: CatchUp {
                max_runs: 3,
                max_scanned: 1000,
            },
            ..Policy::default()
        };
        let plan = plan(&Every(60), Some(t(0)), t(600), &policy, no_jitter);
        assert_eq!(fire_times(&plan), vec![t(480), t(540), t(600)]);
        assert_eq!(plan.dropped, 7);
        assert_eq!(plan.dropped_range, Some(t(60)..=t(420)));
        assert_eq!(plan.cursor, Some(t(600)));
    }

    #[test]
    fn past_the_scan_bound_one_pass_still_keeps_the_right_fire_times_and_counts_a_lower_bound() {
        let catch_up = CatchUp {
            max_runs: 2,
            max_scanned: 4,
        };
        let cases = [
            (CoalescePolicy::Earliest, vec![t(60)]),
            (CoalescePolicy::Latest, vec![t(600)]),
            (CoalescePolicy::All, vec![t(540), t(600)]),
        ];
        for (coalesce, want) in cases {
            let policy = Policy {
                coalesce,
                catch_up,
                ..Policy::default()
            };
            let plan = plan(&Every(60), Some(t(0)), t(600), &policy, no_jitter);
            assert_eq!(fire_times(&plan), want, "{coalesce:?}");
            assert_eq!(
                plan.cursor,
                Some(t(600)),
                "{coalesce:?}: every due fire time is handled"
            );
            assert_eq!(plan.next_fire_time, Some(t(660)));
            assert!(!plan.exact, "{coalesce:?}: 10 due, 4 counted one by one");
            assert!(plan.coalesced + plan.dropped < 9);
            if coalesce == CoalescePolicy::All {
                assert_eq!(plan.dropped_range, Some(t(60)..=t(480)));
            }
            let again = super::plan(&Every(60), plan.cursor, t(600), &policy, no_jitter);
            assert!(
                again.runs.is_empty(),
                "{coalesce:?}: nothing left for another pass"
            );
        }
    }

    #[test]
    fn jitter_never_moves_a_run_past_the_following_fire_time() {
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            max_jitter: Some(TimeDelta::seconds(600)),
            misfire_grace_time: Some(TimeDelta::seconds(5)),
            ..Policy::default()
        };
        let (plan, caps) = plan_at_the_caps(&Every(60), Some(t(0)), t(120), &policy);
        let almost_a_minute = TimeDelta::seconds(60) - TimeDelta::microseconds(1);
        assert_eq!(caps, vec![almost_a_minute, almost_a_minute]);
        assert_eq!(plan.runs[0].jitter, almost_a_minute);
        assert_eq!(
            plan.runs[0].start_deadline,
            Some(t(60) + almost_a_minute + TimeDelta::seconds(5))
        );
    }

    #[test]
    fn the_jitter_cap_is_computed_afresh_for_each_fire_time() {
        // Gaps of 10 s then 90 s: carried over, the 10 s cap would also bind the run at 10 s.
        let source = Times(vec![t(0), t(10), t(100), t(1000)]);
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            max_jitter: Some(TimeDelta::seconds(50)),
            ..Policy::default()
        };
        let (plan, caps) = plan_at_the_caps(&source, None, t(100), &policy);
        let fifty = TimeDelta::seconds(50);
        assert_eq!(
            caps,
            vec![TimeDelta::seconds(10) - TimeDelta::microseconds(1), fifty, fifty]
        );
        assert_eq!(plan.runs[1].jitter, fifty);
    }

    #[test]
    fn with_coalesce_earliest_the_jitter_cap_is_the_gap_to_the_second_due_fire_time() {
        let source = Times(vec![t(0), t(10), t(100), t(1000)]);
        let policy = Policy {
            coalesce: CoalescePolicy::Earliest,
            max_jitter: Some(TimeDelta::seconds(50)),
            ..Policy::default()
        };
        let (plan, caps) = plan_at_the_caps(&source, None, t(100), &policy);
        assert_eq!(fire_times(&plan), vec![t(0)]);
        assert_eq!(caps, vec![TimeDelta::seconds(10) - TimeDelta::microseconds(1)]);
    }

    #[test]
    fn seeded_jitter_is_whole_milliseconds_within_the_cap_and_repeatable() {
        // Values pinned from the operator's original function (sha256 of "seed/micros").
        assert_eq!(
            seeded_jitter("uid-1", t(0), TimeDelta::seconds(50)),
            TimeDelta::milliseconds(7704)
        );
        let fire = t(0) + TimeDelta::microseconds(123_456);
        let cap = TimeDelta::milliseconds(59_999) + TimeDelta::microseconds(999);
        assert_eq!(
            seeded_jitter("schedule-a", fire, cap),
            TimeDelta::milliseconds(44_434)
        );
        assert_eq!(
            seeded_jitter("schedule-a", fire, cap),
            seeded_jitter("schedule-a", fire, cap)
        );
        assert_eq!(
            seeded_jitter("x", t(0), TimeDelta::microseconds(999)),
            TimeDelta::zero()
        );
        assert_eq!(
            seeded_jitter("x", t(0), TimeDelta::seconds(-1)),
            TimeDelta::zero()
        );
        for s in 0..200 {
            let j = seeded_jitter("uid-2", t(s), TimeDelta::milliseconds(1500));
            assert!(j >= TimeDelta::zero() && j <= TimeDelta::milliseconds(1500));
            assert_eq!(j.subsec_nanos() % 1_000_000, 0);
        }
    }

    #[test]
    fn a_source_that_does_not_move_forward_counts_as_exhausted() {
        struct Stuck;
        impl FireTimes for Stuck {
            fn next_after(&self, _: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
                Some(t(0))
            }
        }
        let plan = plan(&Stuck, None, t(100), &Policy::default(), no_jitter);
        assert_eq!(fire_times(&plan), vec![t(0)]);
        assert_eq!(plan.next_fire_time, None);
    }

    #[test]
    fn upcoming_lists_the_next_fire_times() {
        assert_eq!(upcoming(&Every(60), Some(t(0)), 3), vec![t(60), t(120), t(180)]);
        assert_eq!(upcoming(&Times(vec![t(1)]), None, 5), vec![t(1)]);
    }

    #[test]
    fn scanning_finds_the_newest_fire_times_of_an_uneven_backlog() {
        // Dense bursts far from `until`, sparse near it: the backwards search must widen past
        // the sparse part and narrow inside a burst.
        let mut times: Vec<DateTime<Utc>> = (0..5_000).map(t).collect();
        times.extend((0..20).map(|i| t(100_000 + i * 3_600)));
        times.extend((0..3_000).map(|i| t(200_000 + i)));
        times.push(t(400_000));
        let source = Times(times.clone());
        for keep in [0, 1, 3, 101] {
            let due = scan_due(&source, None, t(300_000), keep, 50);
            let (want, next) = all_due(&source, None, t(300_000));
            assert_eq!(due.first, Some(t(0)));
            assert_eq!(due.last, want[want.len() - keep..].to_vec(), "keep {keep}");
            assert_eq!(due.next, next);
            assert!(!due.exact && due.count >= 50 && due.count < want.len() as u64);
        }
    }

    fn any_coalesce() -> impl Strategy<Value = CoalescePolicy> {
        prop_oneof![
            Just(CoalescePolicy::Earliest),
            Just(CoalescePolicy::Latest),
            Just(CoalescePolicy::All)
        ]
    }

    fn any_policy() -> impl Strategy<Value = Policy> {
        (
            any_coalesce(),
            proptest::option::of(0i64..600),
            proptest::option::of(0i64..600),
            1usize..8,
            1usize..50,
        )
            .prop_map(|(coalesce, grace, jitter, max_runs, max_scanned)| Policy {
                coalesce,
                misfire_grace_time: grace.map(TimeDelta::seconds),
                max_jitter: jitter.map(TimeDelta::seconds),
                catch_up: CatchUp {
                    max_runs,
                    max_scanned,
                },
            })
    }

    fn any_times() -> impl Strategy<Value = Times> {
        proptest::collection::btree_set(0i64..5_000, 0..60)
            .prop_map(|set| Times(set.into_iter().map(t).collect()))
    }

    fn jitter_from(seed: u64) -> impl FnMut(DateTime<Utc>, TimeDelta) -> TimeDelta {
        move |fire, cap| {
            let micros = cap.num_microseconds().unwrap_or(0).max(0) as u64;
            let mix = seed ^ fire.timestamp() as u64;
            TimeDelta::microseconds((mix % (micros + 1)) as i64)
        }
    }

    proptest! {
        #[test]
        fn every_planned_run_is_a_distinct_due_fire_time_within_its_deadline(
            source in any_times(), policy in any_policy(),
            cursor in proptest::option::of(0i64..5_000), now in 0i64..6_000, seed in any::<u64>(),
        ) {
            let cursor = cursor.map(t);
            let now = t(now);
            let p = plan(&source, cursor, now, &policy, jitter_from(seed));
            let (due, _) = all_due(&source, cursor, now);
            let planned = fire_times(&p);
            let mut distinct = planned.clone();
            distinct.dedup();
            prop_assert_eq!(&distinct, &planned, "never two runs for one fire time (sorted, no repeats)");
            prop_assert!(planned.len() + p.missed.len() <= due.len());
            for run in &p.runs {
                prop_assert!(due.contains(&run.fire_time));
                prop_assert!(run.fire_time <= now);
                prop_assert!(cursor.is_none_or(|c| run.fire_time > c));
                prop_assert!(run.jitter >= TimeDelta::zero());
                if let Some(grace) = policy.misfire_grace_time {
                    prop_assert_eq!(run.start_deadline, Some(run.fire_time + run.jitter + grace));
                    prop_assert!(run.start_deadline >= Some(now), "a run is created only while it can still start");
                } else {
                    prop_assert_eq!(run.start_deadline, None);
                }
            }
            let accounted = planned.len() as u64 + p.missed.len() as u64 + p.coalesced + p.dropped;
            prop_assert!(p.exact || due.len() > policy.catch_up.max_scanned);
            if p.exact {
                prop_assert_eq!(accounted, due.len() as u64, "every due fire time is accounted for exactly once");
            } else {
                prop_assert!(accounted < due.len() as u64, "past the scan bound the counts are a lower bound");
            }
        }

        #[test]
        fn one_pass_keeps_exactly_the_fire_times_its_coalesce_policy_names(
            source in any_times(), policy in any_policy(),
            cursor in proptest::option::of(0i64..5_000), now in 0i64..6_000,
        ) {
            let cursor = cursor.map(t);
            let now = t(now);
            let p = plan(&source, cursor, now, &policy, no_jitter);
            let (due, next) = all_due(&source, cursor, now);
            let mut kept: Vec<DateTime<Utc>> = fire_times(&p).into_iter().chain(p.missed.iter().copied()).collect();
            kept.sort();
            let max_runs = policy.catch_up.max_runs;
            let want: Vec<DateTime<Utc>> = match (policy.coalesce, due.first(), due.last()) {
                (_, None, _) | (_, _, None) => vec![],
                (CoalescePolicy::Earliest, Some(&first), _) => vec![first],
                (CoalescePolicy::Latest, _, Some(&last)) => vec![last],
                (CoalescePolicy::All, _, _) => due[due.len().saturating_sub(max_runs)..].to_vec(),
            };
            prop_assert_eq!(kept, want);
            prop_assert_eq!(p.cursor, due.last().copied().or(cursor));
            prop_assert_eq!(p.next_fire_time, next);
            let dropped = due.len().saturating_sub(max_runs);
            if policy.coalesce == CoalescePolicy::All && dropped > 0 {
                prop_assert_eq!(p.dropped_range, Some(due[0]..=due[dropped - 1]));
            } else {
                prop_assert_eq!(p.dropped_range, None);
            }
        }

        #[test]
        fn planning_again_from_the_same_cursor_plans_the_same_runs_and_from_the_new_cursor_nothing(
            source in any_times(), policy in any_policy(),
            cursor in proptest::option::of(0i64..5_000), now in 0i64..6_000, seed in any::<u64>(),
        ) {
            let cursor = cursor.map(t);
            let now = t(now);
            let first = plan(&source, cursor, now, &policy, jitter_from(seed));
            let restarted = plan(&source, cursor, now, &policy, jitter_from(seed));
            prop_assert_eq!(&first, &restarted);
            let after = plan(&source, first.cursor, now, &policy, jitter_from(seed));
            prop_assert!(after.runs.is_empty() && after.missed.is_empty());
            prop_assert_eq!(after.cursor, first.cursor);
        }

        #[test]
        fn passes_at_later_times_never_repeat_a_fire_time(
            source in any_times(), policy in any_policy(), steps in proptest::collection::vec(1i64..800, 1..12),
        ) {
            let mut cursor = None;
            let mut now = t(0);
            let mut seen = std::collections::BTreeSet::new();
            for step in steps {
                now += TimeDelta::seconds(step);
                let p = plan(&source, cursor, now, &policy, no_jitter);
                for run in &p.runs {
                    prop_assert!(seen.insert(run.fire_time), "fire time {} planned twice", run.fire_time);
                }
                prop_assert!(p.cursor >= cursor);
                cursor = p.cursor;
            }
        }

        #[test]
        fn scanning_agrees_with_visiting_every_fire_time(
            source in any_times(), after in proptest::option::of(0i64..5_000), until in 0i64..6_000,
            keep in 0usize..12, scan_limit in 1usize..80,
        ) {
            let after = after.map(t);
            let until = t(until);
            let (want, next) = all_due(&source, after, until);
            let due = scan_due(&source, after, until, keep, scan_limit);
            prop_assert_eq!(due.first, want.first().copied());
            prop_assert_eq!(&due.last, &want[want.len().saturating_sub(keep)..].to_vec());
            prop_assert_eq!(due.next, next);
            prop_assert_eq!(due.exact, due.count == want.len() as u64, "exact tells the truth");
            if due.exact {
                prop_assert_eq!(due.count, want.len() as u64);
            } else {
                prop_assert!(due.count >= scan_limit as u64 && due.count < want.len() as u64);
            }
        }
    }
}
