//! Admission: which runs of a pool of slots (a Schedule's `maxRunningJobs`, or a Task's shared
//! one) may start now, and what happens to the others under the pool's concurrency policy.
//!
//! Pure and order-independent: [`admit`] looks at every member of the pool at once and gives
//! each one its verdict, so the outcome never depends on which run's reconcile happens to
//! run first (a queued older run can never cancel a newer one). Each reconciler applies only
//! its own part: the JobRun reconciler acts on its run's verdict, and the Schedule reconciler
//! starts the runs it has just created when their verdict is [`Verdict::Start`].
//!
//! The rules, by policy, when more runs are due than the pool has free slots (members are
//! taken oldest fire time first, as APScheduler's job queue does):
//!
//! | policy | the due runs that get no slot | running runs |
//! |---|---|---|
//! | `Allow` (or no limit) | none: every due run starts | kept |
//! | `Wait` | wait (until a slot frees or their start deadline passes); beyond `max_waiting` waiting runs, the newer ones are dropped (`QueueFull`) | kept |
//! | `Skip` | are skipped | kept |
//! | `BufferOne` | the newest waits, the older ones are skipped | kept |
//! | `Replace`, `Terminate` | the newest `limit` runs of all (running or due) hold the slots: older due runs are superseded, older running runs are cancelled | see left |

use chrono::{DateTime, Utc};

use crate::spec::ConcurrencyPolicy;

/// How many runs of a pool may wait for a slot when `maxWaitingRuns` is not set.
pub const DEFAULT_MAX_WAITING: usize = 100;

/// A pool of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// How many members may hold a slot at once; `None` = no limit.
    pub limit: Option<usize>,
    /// What happens to due members that get no slot.
    pub policy: ConcurrencyPolicy,
    /// How many due members may wait for a slot (policy `Wait`), oldest first; the newer ones
    /// beyond it get [`Verdict::QueueFull`]. `None` = no bound.
    pub max_waiting: Option<usize>,
}

/// Where a member of a pool is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// It has started (its Pod exists or was just created) and has not finished: it holds a
    /// slot.
    Holding,
    /// It has not started yet.
    Queued,
}

/// One run of a pool, as admission sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<K> {
    /// Identifies the run (its name).
    pub key: K,
    /// Its scheduled fire time: older runs get slots first.
    pub fire_time: DateTime<Utc>,
    /// It may not start before this (fire time + jitter).
    pub not_before: DateTime<Utc>,
    /// It must start by this, else it is missed; `None` = no deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// Started or not.
    pub state: State,
}

/// What admission decided for one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<K> {
    /// Queued and due: start it now.
    Start,
    /// Queued and due, no slot: wait for one.
    Wait,
    /// Queued and due, no slot: drop it (Skip, or an older run under BufferOne).
    Skip,
    /// Queued and due, no slot, and `max_waiting` older runs already wait: drop it.
    QueueFull {
        /// The pool's `max_waiting`.
        max_waiting: usize,
    },
    /// Queued, due, but a newer run takes the slot (Replace, Terminate): it never starts.
    Supersede {
        /// The newest due run, which takes the slot.
        by: K,
    },
    /// Holding a slot that a newer due run takes (Replace, Terminate): cancel it.
    Cancel {
        /// The newest due run, which takes the slot.
        by: K,
    },
    /// Queued, but its start time (fire time + jitter) has not come.
    NotYet,
    /// Queued, and its start deadline has passed.
    Missed,
    /// Holding a slot, and keeps it.
    Keep,
}

/// The verdict of every member of `pool` at `now`, in the order of `members`.
pub fn admit<K: Clone + Ord>(pool: Pool, members: &[Member<K>], now: DateTime<Utc>) -> Vec<(K, Verdict<K>)> {
    let mut order: Vec<&Member<K>> = members.iter().collect();
    order.sort_by(|a, b| (a.fire_time, &a.key).cmp(&(b.fire_time, &b.key)));

    let mut verdicts: Vec<(K, Verdict<K>)> = Vec::with_capacity(members.len());
    let mut holding: Vec<&Member<K>> = Vec::new();
    let mut due: Vec<&Member<K>> = Vec::new();
    for member in order {
        match member.state {
            State::Holding => holding.push(member),
            State::Queued if member.deadline.is_some_and(|d| d < now) => {
                verdicts.push((member.key.clone(), Verdict::Missed));
            }
            State::Queued if member.not_before > now => {
                verdicts.push((member.key.clone(), Verdict::NotYet));
            }
            State::Queued => due.push(member),
        }
    }

    let limit = match (pool.limit, pool.policy) {
        (None, _) | (_, ConcurrencyPolicy::Allow) => None,
        (Some(limit), _) => Some(limit.max(1)),
    };
    let Some(limit) = limit else {
        verdicts.extend(holding.iter().map(|m| (m.key.clone(), Verdict::Keep)));
        verdicts.extend(due.iter().map(|m| (m.key.clone(), Verdict::Start)));
        return in_member_order(members, verdicts);
    };

    match pool.policy {
        ConcurrencyPolicy::Replace | ConcurrencyPolicy::Terminate => {
            replace(limit, &holding, &due, &mut verdicts);
        }
        policy => {
            verdicts.extend(holding.iter().map(|m| (m.key.clone(), Verdict::Keep)));
            let free = limit.saturating_sub(holding.len());
            let (start, rest) = due.split_at(free.min(due.len()));
            verdicts.extend(start.iter().map(|m| (m.key.clone(), Verdict::Start)));
            let newest = rest.len().checked_sub(1);
            let mut waiting = 0;
            for (i, member) in rest.iter().enumerate() {
                let verdict = match (policy, pool.max_waiting) {
                    (ConcurrencyPolicy::Skip, _) => Verdict::Skip,
                    (ConcurrencyPolicy::BufferOne, _) if Some(i) != newest => Verdict::Skip,
                    (_, Some(max_waiting)) if waiting >= max_waiting => Verdict::QueueFull { max_waiting },
                    _ => {
                        waiting += 1;
                        Verdict::Wait
                    }
                };
                verdicts.push((member.key.clone(), verdict));
            }
        }
    }
    in_member_order(members, verdicts)
}

/// Replace and Terminate: the newest `limit` members of all (holding or due) hold the slots.
fn replace<K: Clone + Ord>(
    limit: usize,
    holding: &[&Member<K>],
    due: &[&Member<K>],
    verdicts: &mut Vec<(K, Verdict<K>)>,
) {
    let mut all: Vec<&Member<K>> = holding.iter().chain(due).copied().collect();
    all.sort_by(|a, b| (b.fire_time, &b.key).cmp(&(a.fire_time, &a.key)));
    let winners: Vec<&K> = all.iter().take(limit).map(|m| &m.key).collect();
    // Every run outside the newest `limit` gives way to the newest run: a running one is
    // cancelled (whether the newest has started yet or not), a due one never starts.
    let Some(newest) = all.first().map(|m| m.key.clone()) else {
        return;
    };
    for member in holding {
        let verdict = if winners.contains(&&member.key) {
            Verdict::Keep
        } else {
            Verdict::Cancel { by: newest.clone() }
        };
        verdicts.push((member.key.clone(), verdict));
    }
    for member in due {
        let verdict = if winners.contains(&&member.key) {
            Verdict::Start
        } else {
            Verdict::Supersede { by: newest.clone() }
        };
        verdicts.push((member.key.clone(), verdict));
    }
}

fn in_member_order<K: Clone + Ord>(
    members: &[Member<K>],
    mut verdicts: Vec<(K, Verdict<K>)>,
) -> Vec<(K, Verdict<K>)> {
    let position = |key: &K| members.iter().position(|m| &m.key == key).unwrap_or(usize::MAX);
    verdicts.sort_by_key(|(key, _)| position(key));
    verdicts
}

/// The verdict of the member `key`, if it is in `verdicts`.
pub fn verdict_of<'a, K: PartialEq>(verdicts: &'a [(K, Verdict<K>)], key: &K) -> Option<&'a Verdict<K>> {
    verdicts.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap_or_default()
    }

    fn member(key: &'static str, fire: i64, state: State) -> Member<&'static str> {
        Member {
            key,
            fire_time: t(fire),
            not_before: t(fire),
            deadline: None,
            state,
        }
    }

    fn pool(limit: usize, policy: ConcurrencyPolicy) -> Pool {
        Pool {
            limit: Some(limit),
            policy,
            max_waiting: None,
        }
    }

    use State::{Holding, Queued};

    #[test]
    fn beyond_max_waiting_the_newer_due_runs_are_dropped_as_queue_full() {
        let members = [
            member("a", 0, Holding),
            member("b", 1, Queued),
            member("c", 2, Queued),
            member("d", 3, Queued),
        ];
        let bounded = Pool {
            max_waiting: Some(1),
            ..pool(1, ConcurrencyPolicy::Wait)
        };
        assert_eq!(
            admit(bounded, &members, t(10)),
            [
                ("a", Verdict::Keep),
                ("b", Verdict::Wait),
                ("c", Verdict::QueueFull { max_waiting: 1 }),
                ("d", Verdict::QueueFull { max_waiting: 1 }),
            ]
        );
        let buffer = Pool {
            max_waiting: Some(1),
            ..pool(1, ConcurrencyPolicy::BufferOne)
        };
        assert_eq!(
            admit(buffer, &members, t(10))[3],
            ("d", Verdict::Wait),
            "BufferOne keeps its one newest run"
        );
        let none = Pool {
            max_waiting: Some(0),
            ..pool(1, ConcurrencyPolicy::Wait)
        };
        assert!(
            admit(none, &members, t(10))[1..]
                .iter()
                .all(|(_, v)| *v == Verdict::QueueFull { max_waiting: 0 })
        );
    }

    #[test]
    fn without_a_limit_every_due_run_starts() {
        let members = [
            member("a", 0, Holding),
            member("b", 1, Queued),
            member("c", 2, Queued),
        ];
        let none = Pool {
            limit: None,
            policy: ConcurrencyPolicy::Skip,
            max_waiting: None,
        };
        let verdicts = admit(none, &members, t(10));
        assert_eq!(
            verdicts,
            [("a", Verdict::Keep), ("b", Verdict::Start), ("c", Verdict::Start)]
        );
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::Allow), &members, t(10)),
            verdicts,
            "Allow ignores a limit"
        );
    }

    #[test]
    fn wait_gives_free_slots_to_the_oldest_due_runs_first() {
        let members = [
            member("c", 2, Queued),
            member("a", 0, Holding),
            member("b", 1, Queued),
        ];
        assert_eq!(
            admit(pool(2, ConcurrencyPolicy::Wait), &members, t(10)),
            [("c", Verdict::Wait), ("a", Verdict::Keep), ("b", Verdict::Start)]
        );
    }

    #[test]
    fn skip_drops_what_does_not_fit() {
        let members = [member("a", 0, Holding), member("b", 1, Queued)];
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::Skip), &members, t(10)),
            [("a", Verdict::Keep), ("b", Verdict::Skip)]
        );
    }

    #[test]
    fn buffer_one_keeps_only_the_newest_waiting_run() {
        let members = [
            member("a", 0, Holding),
            member("b", 1, Queued),
            member("c", 2, Queued),
            member("d", 3, Queued),
        ];
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::BufferOne), &members, t(10)),
            [
                ("a", Verdict::Keep),
                ("b", Verdict::Skip),
                ("c", Verdict::Skip),
                ("d", Verdict::Wait)
            ]
        );
    }

    #[test]
    fn replace_cancels_the_oldest_running_run_for_the_newest_due_one() {
        let members = [
            member("a", 0, Holding),
            member("b", 1, Holding),
            member("c", 2, Queued),
        ];
        assert_eq!(
            admit(pool(2, ConcurrencyPolicy::Replace), &members, t(10)),
            [
                ("a", Verdict::Cancel { by: "c" }),
                ("b", Verdict::Keep),
                ("c", Verdict::Start)
            ]
        );
    }

    #[test]
    fn a_queued_older_run_never_cancels_a_newer_running_one() {
        // The catch-up case: run "new" started first; the older "old" comes due after it.
        let members = [member("old", 0, Queued), member("new", 60, Holding)];
        for policy in [ConcurrencyPolicy::Replace, ConcurrencyPolicy::Terminate] {
            assert_eq!(
                admit(pool(1, policy), &members, t(100)),
                [("old", Verdict::Supersede { by: "new" }), ("new", Verdict::Keep)],
                "{policy:?}"
            );
        }
    }

    #[test]
    fn in_a_catch_up_replace_starts_only_the_newest_of_several_due_runs() {
        let members = [
            member("a", 0, Queued),
            member("b", 60, Queued),
            member("c", 120, Queued),
        ];
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::Replace), &members, t(200)),
            [
                ("a", Verdict::Supersede { by: "c" }),
                ("b", Verdict::Supersede { by: "c" }),
                ("c", Verdict::Start)
            ]
        );
    }

    #[test]
    fn runs_before_their_start_or_past_their_deadline_do_not_compete() {
        let mut jittered = member("j", 0, Queued);
        jittered.not_before = t(30);
        let mut late = member("l", 1, Queued);
        late.deadline = Some(t(5));
        let members = [jittered, late, member("b", 2, Queued)];
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::Wait), &members, t(10)),
            [
                ("j", Verdict::NotYet),
                ("l", Verdict::Missed),
                ("b", Verdict::Start)
            ]
        );
        let mut on_time = member("d", 0, Queued);
        on_time.deadline = Some(t(10));
        assert_eq!(
            admit(pool(1, ConcurrencyPolicy::Wait), &[on_time], t(10)),
            [("d", Verdict::Start)],
            "a run may still start at the very instant of its deadline"
        );
    }

    fn any_policy() -> impl Strategy<Value = ConcurrencyPolicy> {
        prop_oneof![
            Just(ConcurrencyPolicy::Allow),
            Just(ConcurrencyPolicy::Wait),
            Just(ConcurrencyPolicy::Skip),
            Just(ConcurrencyPolicy::BufferOne),
            Just(ConcurrencyPolicy::Replace),
            Just(ConcurrencyPolicy::Terminate),
        ]
    }

    fn any_members() -> impl Strategy<Value = Vec<Member<u32>>> {
        proptest::collection::vec(
            (0i64..100, 0i64..5, proptest::option::of(0i64..200), any::<bool>()),
            0..12,
        )
        .prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (fire, jitter, grace, holding))| Member {
                    key: i as u32,
                    fire_time: t(fire),
                    not_before: t(fire) + TimeDelta::seconds(jitter),
                    deadline: grace.map(|g| t(fire + g)),
                    state: if holding { Holding } else { Queued },
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_verdicts_never_depend_on_the_order_of_the_members(
            members in any_members(), policy in any_policy(), limit in proptest::option::of(1usize..4), now in 0i64..300,
            max_waiting in proptest::option::of(0usize..3),
        ) {
            let pool = Pool { limit, policy, max_waiting };
            let mut reversed = members.clone();
            reversed.reverse();
            let mut forward = admit(pool, &members, t(now));
            let mut backward = admit(pool, &reversed, t(now));
            forward.sort_by_key(|(k, _)| *k);
            backward.sort_by_key(|(k, _)| *k);
            prop_assert_eq!(forward, backward);
        }

        #[test]
        fn no_more_runs_hold_slots_than_the_limit_allows(
            members in any_members(), policy in any_policy(), limit in 1usize..4, now in 0i64..300,
        ) {
            let verdicts = admit(Pool { limit: Some(limit), policy, max_waiting: None }, &members, t(now));
            prop_assert_eq!(verdicts.len(), members.len());
            let after = verdicts.iter().filter(|(_, v)| matches!(v, Verdict::Start | Verdict::Keep)).count();
            let holding = members.iter().filter(|m| m.state == Holding).count();
            if policy != ConcurrencyPolicy::Allow {
                prop_assert!(after <= limit.max(holding), "{after} > {limit}");
            }
            for (key, verdict) in &verdicts {
                let member = members.iter().find(|m| &m.key == key).map(|m| m.state);
                match verdict {
                    Verdict::Keep | Verdict::Cancel { .. } => prop_assert_eq!(member, Some(Holding)),
                    _ => prop_assert_eq!(member, Some(Queued)),
                }
                if let Verdict::Cancel { by } | Verdict::Supersede { by } = verdict {
                    let victim = members.iter().find(|m| &m.key == key).map(|m| (m.fire_time, m.key));
                    let winner = members.iter().find(|m| &m.key == by).map(|m| (m.fire_time, m.key));
                    prop_assert!(victim < winner, "an older run never displaces a newer one");
                }
            }
        }
    }
}
