//! The planner: which fire times of a Schedule are due, and what they turn into.
//!
//! Pure: it takes the fire-time source, the cursor (`status.lastFireTime`), the current time
//! and the Schedule's policy, and returns a [`Plan`]. No kube, no tokio, no clock.
//!
//! The rules are APScheduler 4's (`APSCHEDULER.md` §4.2–4.4):
//!
//! - the due fire times are every fire time after the cursor up to and including `now`;
//! - `coalesce` keeps the earliest, the latest, or all of them;
//! - each kept run gets `startDeadline = fireTime + jitter + misfireGraceTime`;
//! - jitter is capped so a run never moves past the following kept fire time.
//!
//! Two decisions of our own, both documented in the API:
//!
//! - **Missed runs are counted, not created.** A kept fire time whose start deadline has
//!   already passed when it is planned becomes an entry of [`Plan::missed`] (the controller
//!   adds it to `status.missedFireTimes` and says so in a `Missed` Event) instead of a JobRun
//!   that could only ever be Missed. After a week of downtime with `coalesce: All`, that is
//!   one Event instead of thousands of dead objects. Runs that miss their deadline *later*
//!   (while Waiting for a slot) are JobRuns in phase Missed.
//! - **Catch-up is bounded** by [`CatchUp`]: at most `max_runs` runs per pass (the newest are
//!   kept, the older ones are reported in [`Plan::dropped`]), and at most `max_scanned` fire
//!   times examined per pass (then [`Plan::more_due`] asks the caller to plan again at once,
//!   continuing from the returned cursor).

use chrono::{DateTime, TimeDelta, Utc};

use crate::spec::CoalescePolicy;

/// A source of fire times: the compiled trigger in production, synthetic sequences in tests.
pub trait FireTimes {
    /// The first fire time strictly after `after`, or the very first one for `None`;
    /// `None` once the source is exhausted.
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>>;
}

impl<T: FireTimes + ?Sized> FireTimes for &T {
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        (**self).next_after(after)
    }
}

impl<T: FireTimes + ?Sized> FireTimes for Box<T> {
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        (**self).next_after(after)
    }
}

impl<T: FireTimes + ?Sized> FireTimes for std::sync::Arc<T> {
    fn next_after(&self, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        (**self).next_after(after)
    }
}

/// Runs created by one planning pass, at most.
pub const DEFAULT_MAX_RUNS_PER_PASS: usize = 100;
/// Fire times examined by one planning pass, at most (about a day of a every-second trigger).
pub const DEFAULT_MAX_SCANNED_PER_PASS: usize = 100_000;

/// The bound on a catch-up after downtime or a long pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// Runs one pass creates at most; with `coalesce: All` the newest are kept.
    pub max_runs: usize,
    /// Fire times one pass examines at most, so a tiny interval after long downtime cannot
    /// stall the reconciler.
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
    /// While paused nothing is planned and the cursor stays where it is.
    pub paused: bool,
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

/// What one planning pass decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Runs to create, oldest first. Never two for one fire time.
    pub runs: Vec<PlannedRun>,
    /// Fire times kept by coalescing whose start deadline had already passed: recorded as
    /// missed, no JobRun.
    pub missed: Vec<DateTime<Utc>>,
    /// Due fire times merged away by `coalesce` (Earliest / Latest).
    pub coalesced: u64,
    /// Due fire times that `coalesce: All` would have run but the catch-up cap dropped.
    pub dropped: u64,
    /// The new `status.lastFireTime`: the last fire time examined, or the old cursor.
    pub cursor: Option<DateTime<Utc>>,
    /// The first fire time not yet handled; `None` when exhausted or paused.
    pub next_fire_time: Option<DateTime<Utc>>,
    /// True when the scan cap stopped this pass while fire times were still due: plan again
    /// from `cursor` right away.
    pub more_due: bool,
}

/// Plans one pass: the due fire times after `cursor` up to and including `now`, coalesced,
/// jittered (`jitter(fire_time, cap)` picks a delay in `0..=cap`) and checked against the
/// misfire grace time.
pub fn plan(
    source: &impl FireTimes,
    cursor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: &Policy,
    mut jitter: impl FnMut(DateTime<Utc>, TimeDelta) -> TimeDelta,
) -> Plan {
    if policy.paused {
        return Plan {
            cursor,
            ..Plan::default()
        };
    }
    let (due, next) = due_fire_times(source, cursor, now, policy.catch_up.max_scanned.max(1));
    let more_due = next.is_some_and(|next| next <= now);
    let Some(&last_due) = due.last() else {
        return Plan {
            cursor,
            next_fire_time: next,
            more_due,
            ..Plan::default()
        };
    };

    let max_runs = policy.catch_up.max_runs.max(1);
    let (kept, coalesced, dropped): (&[DateTime<Utc>], u64, u64) = match policy.coalesce {
        CoalescePolicy::Earliest => (&due[..1], due.len() as u64 - 1, 0),
        CoalescePolicy::Latest => (&due[due.len() - 1..], due.len() as u64 - 1, 0),
        CoalescePolicy::All => {
            let skip = due.len().saturating_sub(max_runs);
            (&due[skip..], 0, skip as u64)
        }
    };

    let mut runs = Vec::with_capacity(kept.len());
    let mut missed = Vec::new();
    // APScheduler does not reset the cap between the fire times of one pass: caps only shrink.
    let mut cap = policy.max_jitter.unwrap_or(TimeDelta::zero());
    for (i, &fire_time) in kept.iter().enumerate() {
        let mut delay = TimeDelta::zero();
        if policy.max_jitter.is_some_and(|max| max > TimeDelta::zero()) {
            if let Some(following) = kept.get(i + 1).copied().or(next) {
                cap = cap.min(following - fire_time - TimeDelta::microseconds(1));
            }
            let cap = cap.max(TimeDelta::zero());
            delay = jitter(fire_time, cap).clamp(TimeDelta::zero(), cap);
        }
        let start_deadline = policy.misfire_grace_time.map(|grace| fire_time + delay + grace);
        // Strict, as APScheduler: a run may still start at the very instant of its deadline.
        if start_deadline.is_some_and(|deadline| deadline < now) {
            missed.push(fire_time);
        } else {
            runs.push(PlannedRun {
                fire_time,
                jitter: delay,
                start_deadline,
            });
        }
    }

    Plan {
        runs,
        missed,
        coalesced,
        dropped,
        cursor: Some(last_due),
        next_fire_time: next,
        more_due,
    }
}

/// The fire times after `cursor` that are `<= now` (at most `limit` of them, oldest first),
/// and the fire time after the last of them.
pub fn due_fire_times(
    source: &impl FireTimes,
    cursor: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    limit: usize,
) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut due = Vec::new();
    let mut after = cursor;
    loop {
        let Some(fire_time) = next_strictly_after(source, after) else {
            return (due, None);
        };
        if fire_time > now || due.len() >= limit {
            return (due, Some(fire_time));
        }
        due.push(fire_time);
        after = Some(fire_time);
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
fn next_strictly_after(source: &impl FireTimes, after: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let next = source.next_after(after)?;
    match after {
        Some(after) if next <= after => None,
        _ => Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn fire_times(plan: &Plan) -> Vec<DateTime<Utc>> {
        plan.runs.iter().map(|r| r.fire_time).collect()
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
    }

    // APSCHEDULER.md §4.2: interval 1 s started 5.5 s in the past.
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
    fn paused_plans_nothing_and_keeps_the_cursor() {
        let policy = Policy {
            paused: true,
            ..Policy::default()
        };
        let plan = plan(&Every(60), Some(t(0)), t(600), &policy, no_jitter);
        assert_eq!(
            plan,
            Plan {
                cursor: Some(t(0)),
                ..Plan::default()
            }
        );
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
        assert_eq!(plan.cursor, Some(t(600)));
    }

    #[test]
    fn the_scan_cap_stops_a_pass_and_asks_for_another() {
        let policy = Policy {
            catch_up: CatchUp {
                max_runs: 100,
                max_scanned: 4,
            },
            ..Policy::default()
        };
        let first = plan(&Every(60), Some(t(0)), t(600), &policy, no_jitter);
        assert_eq!(fire_times(&first), vec![t(240)]);
        assert!(first.more_due);
        assert_eq!(first.next_fire_time, Some(t(300)));
        let second = plan(&Every(60), first.cursor, t(600), &policy, no_jitter);
        assert_eq!(fire_times(&second), vec![t(480)]);
        let third = plan(&Every(60), second.cursor, t(600), &policy, no_jitter);
        assert_eq!(fire_times(&third), vec![t(600)]);
        assert!(!third.more_due);
    }

    #[test]
    fn jitter_never_moves_a_run_past_the_following_fire_time() {
        let policy = Policy {
            coalesce: CoalescePolicy::All,
            max_jitter: Some(TimeDelta::seconds(600)),
            misfire_grace_time: Some(TimeDelta::seconds(5)),
            ..Policy::default()
        };
        let mut caps = Vec::new();
        let plan = plan(&Every(60), Some(t(0)), t(120), &policy, |_, cap| {
            caps.push(cap);
            cap
        });
        let almost_a_minute = TimeDelta::seconds(60) - TimeDelta::microseconds(1);
        assert_eq!(caps, vec![almost_a_minute, almost_a_minute]);
        assert_eq!(plan.runs[0].jitter, almost_a_minute);
        assert_eq!(
            plan.runs[0].start_deadline,
            Some(t(60) + almost_a_minute + TimeDelta::seconds(5))
        );
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
                paused: false,
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
            let (due, _) = due_fire_times(&source, cursor, now, policy.catch_up.max_scanned);
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
            prop_assert_eq!(
                planned.len() as u64 + p.missed.len() as u64 + p.coalesced + p.dropped,
                due.len() as u64,
                "every due fire time is accounted for exactly once"
            );
        }

        #[test]
        fn paused_plans_nothing(source in any_times(), cursor in proptest::option::of(0i64..5_000), now in 0i64..6_000) {
            let policy = Policy { paused: true, ..Policy::default() };
            let p = plan(&source, cursor.map(t), t(now), &policy, no_jitter);
            prop_assert!(p.runs.is_empty() && p.missed.is_empty());
            prop_assert_eq!(p.cursor, cursor.map(t));
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
            if !first.more_due {
                let after = plan(&source, first.cursor, now, &policy, jitter_from(seed));
                prop_assert!(after.runs.is_empty() && after.missed.is_empty());
                prop_assert_eq!(after.cursor, first.cursor);
            }
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
                loop {
                    let p = plan(&source, cursor, now, &policy, no_jitter);
                    for run in &p.runs {
                        prop_assert!(seen.insert(run.fire_time), "fire time {} planned twice", run.fire_time);
                    }
                    prop_assert!(p.cursor >= cursor);
                    cursor = p.cursor;
                    if !p.more_due { break; }
                }
            }
        }
    }
}
