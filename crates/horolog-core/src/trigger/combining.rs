//! allOf: APScheduler's AndTrigger over real instants. (anyOf, the OrTrigger, is a plain
//! minimum over the members and lives in `Trigger::next_after`.)

use chrono::{DateTime, TimeDelta, Utc};

use super::Leaf;

/// APScheduler's AndTrigger `max_iterations` (its user guide says 1000; the code uses 10000).
pub(crate) const MAX_ITERATIONS: usize = 10_000;

/// allOf members and their threshold.
#[derive(Debug, Clone)]
pub(crate) struct AllOf {
    members: Vec<Leaf>,
    threshold: TimeDelta,
}

/// The outcome of one AndTrigger search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// All members agreed on this fire time.
    Fire(DateTime<Utc>),
    /// A member is exhausted, so the combination is.
    Exhausted,
    /// The members did not agree within [`MAX_ITERATIONS`] rounds.
    LimitReached,
}

impl AllOf {
    /// Members plus threshold (inclusive).
    pub fn new(members: Vec<Leaf>, threshold: TimeDelta) -> AllOf {
        AllOf { members, threshold }
    }

    /// The span the combination's fire times lie in: a fire time is the earliest of members'
    /// times within the threshold of each other, so no later than the earliest member end and
    /// no earlier than the latest member start less the threshold. `None`: unbounded.
    pub fn window(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let start = self
            .members
            .iter()
            .filter_map(|m| m.start)
            .max()
            .and_then(|s| s.checked_sub_signed(self.threshold));
        let end = self.members.iter().filter_map(|m| m.end).min();
        (start, end)
    }

    /// The first fire time (APScheduler's first `next()`).
    pub fn first(&self) -> Step {
        let cursors: Vec<Option<DateTime<Utc>>> = self.members.iter().map(|m| m.next_after(None)).collect();
        self.search(cursors)
    }

    /// The fire time after `after`, rebuilding the member cursors APScheduler would hold. If
    /// `after` is itself a fire time (a member fires exactly then and every member within the
    /// threshold after it), the members of that cluster were consumed by it and stand at their
    /// following time; otherwise every member stands at its first time ≥ `after`. This is exact
    /// for members whose own fire times are more than the threshold apart; exhaustion and the
    /// iteration limit both end the trigger (None).
    pub fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let step = match after {
            None => self.first(),
            Some(f) => {
                let limit = f.checked_add_signed(self.threshold);
                let firsts: Vec<Option<DateTime<Utc>>> = self
                    .members
                    .iter()
                    .map(|m| m.next_after(f.checked_sub_signed(TimeDelta::nanoseconds(1))))
                    .collect();
                let within = |x: &Option<DateTime<Utc>>| x.is_some_and(|x| limit.is_none_or(|l| x <= l));
                let is_fire = firsts.iter().all(within) && firsts.contains(&Some(f));
                let cursors = firsts
                    .iter()
                    .zip(&self.members)
                    .map(|(x, m)| {
                        if is_fire && within(x) {
                            m.next_after(*x)
                        } else {
                            *x
                        }
                    })
                    .collect();
                self.search(cursors)
            }
        };
        match step {
            Step::Fire(t) => Some(t),
            Step::Exhausted | Step::LimitReached => None,
        }
    }

    /// APScheduler's AndTrigger loop: advance every member within the threshold of the earliest;
    /// if the earliest and latest were within the threshold, that earliest is the fire time.
    fn search(&self, mut cursors: Vec<Option<DateTime<Utc>>>) -> Step {
        for _ in 0..MAX_ITERATIONS {
            let mut times = Vec::with_capacity(cursors.len());
            for c in &cursors {
                match c {
                    Some(t) => times.push(*t),
                    None => return Step::Exhausted,
                }
            }
            let (Some(earliest), Some(latest)) = (times.iter().min().copied(), times.iter().max().copied())
            else {
                return Step::Exhausted;
            };
            for (cursor, member) in cursors.iter_mut().zip(&self.members) {
                if let Some(t) = *cursor
                    && t - earliest <= self.threshold
                {
                    *cursor = member.next_after(Some(t));
                }
            }
            if latest - earliest <= self.threshold {
                return Step::Fire(earliest);
            }
        }
        Step::LimitReached
    }
}
