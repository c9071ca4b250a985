//! Admission's decision: pure, a function of a snapshot of the run's pools. It says whether the
//! run may start and which pools it then holds a slot in (the reservation the caller makes).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use horolog_core::admission::{Member, Pool, State, Verdict, admit, verdict_of};

use super::PoolKey;

/// One pool as it was read: its key, its rule, and its unfinished members, each Holding or
/// Queued.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    /// Which pool.
    pub key: PoolKey,
    /// Its limit and policy.
    pub pool: Pool,
    /// Its members that have not finished.
    pub members: Vec<Member<String>>,
}

/// A run's Task pool as it was read, with the own pool of each of its members that does not
/// hold a slot (`None`: it has none): only runs their own pool lets start compete for the
/// Task's slots, so a run held by its Schedule never blocks another Schedule's run.
#[derive(Clone, Debug)]
pub struct TaskSnapshot {
    /// The Task's pool.
    pub pool: PoolSnapshot,
    /// The own pool of each queued member, by name.
    pub own_pools: HashMap<String, Option<PoolSnapshot>>,
}

/// Everything admission reads about one run.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Its Schedule's (or Backfill's) pool; `None` for a run of neither.
    pub own: Option<PoolSnapshot>,
    /// Its Task's pool when it names a Task: `Some(None)` when the Task does not exist.
    pub task: Option<Option<TaskSnapshot>>,
}

/// What admission decided for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The verdict.
    pub verdict: Verdict<String>,
    /// The pools to reserve a slot in (when the verdict is Start).
    pub reserve: Vec<PoolKey>,
}

/// Decides admission for run `name`. Pure.
pub fn decide(snapshot: &Snapshot, name: &str, now: DateTime<Utc>) -> Admission {
    let mut verdict = match &snapshot.own {
        Some(pool) => verdict_in(pool, name, now),
        None => Verdict::Start,
    };
    if verdict == Verdict::Start
        && let Some(task) = &snapshot.task
    {
        verdict = match task {
            // The Task is gone: nothing can start until it is back (the JobRun reports it).
            None => Verdict::Wait,
            Some(task) => {
                let startable: Vec<Member<String>> = task
                    .pool
                    .members
                    .iter()
                    .filter(|other| {
                        other.key == name
                            || other.state == State::Holding
                            || task.own_pools.get(&other.key).is_none_or(|own| {
                                own.as_ref()
                                    .is_none_or(|own| verdict_in(own, &other.key, now) == Verdict::Start)
                            })
                    })
                    .cloned()
                    .collect();
                let narrowed = PoolSnapshot {
                    key: task.pool.key.clone(),
                    pool: task.pool.pool,
                    members: startable,
                };
                verdict_in(&narrowed, name, now)
            }
        };
    }
    let reserve = if verdict == Verdict::Start {
        snapshot
            .own
            .iter()
            .map(|pool| pool.key.clone())
            .chain(snapshot.task.iter().flatten().map(|task| task.pool.key.clone()))
            .collect()
    } else {
        Vec::new()
    };
    Admission { verdict, reserve }
}

/// The verdict of `name` among the members of `pool` (Start when it is not one).
pub fn verdict_in(pool: &PoolSnapshot, name: &str, now: DateTime<Utc>) -> Verdict<String> {
    let verdicts = admit(pool.pool, &pool.members, now);
    verdict_of(&verdicts, &name.to_string())
        .cloned()
        .unwrap_or(Verdict::Start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConcurrencyPolicy;
    use crate::controller::test_support::at;

    fn member(key: &str, hour: u32, state: State) -> Member<String> {
        let fire_time = at(&format!("2026-01-01T{hour:02}:00:00Z"));
        Member {
            key: key.into(),
            fire_time,
            not_before: fire_time,
            deadline: None,
            state,
        }
    }

    fn pool(key: PoolKey, limit: usize, members: Vec<Member<String>>) -> PoolSnapshot {
        PoolSnapshot {
            key,
            pool: Pool {
                limit: Some(limit),
                policy: ConcurrencyPolicy::Wait,
                max_waiting: None,
            },
            members,
        }
    }

    #[test]
    fn a_run_with_a_free_slot_starts_and_reserves_its_pools() {
        let own = PoolKey::Schedule("ns".into(), "s".into());
        let task = PoolKey::Task("ns".into(), "t".into());
        let snapshot = Snapshot {
            own: Some(pool(own.clone(), 1, vec![member("a", 1, State::Queued)])),
            task: Some(Some(TaskSnapshot {
                pool: pool(task.clone(), 1, vec![member("a", 1, State::Queued)]),
                own_pools: HashMap::new(),
            })),
        };
        let admission = decide(&snapshot, "a", at("2026-01-01T02:00:00Z"));
        assert_eq!(admission.verdict, Verdict::Start);
        assert_eq!(admission.reserve, [own, task]);
    }

    #[test]
    fn a_run_held_by_its_own_pool_does_not_block_the_task_for_another() {
        let task = PoolKey::Task("ns".into(), "t".into());
        // `x` is older but its Schedule's only slot is taken: it cannot start, so `a` gets the
        // Task's slot.
        let x_own = pool(
            PoolKey::Schedule("ns".into(), "other".into()),
            1,
            vec![member("busy", 0, State::Holding), member("x", 0, State::Queued)],
        );
        let snapshot = Snapshot {
            own: None,
            task: Some(Some(TaskSnapshot {
                pool: pool(
                    task,
                    1,
                    vec![member("x", 0, State::Queued), member("a", 1, State::Queued)],
                ),
                own_pools: HashMap::from([("x".to_string(), Some(x_own))]),
            })),
        };
        let now = at("2026-01-01T02:00:00Z");
        assert_eq!(decide(&snapshot, "a", now).verdict, Verdict::Start);
    }

    #[test]
    fn a_missing_task_makes_the_run_wait_and_reserves_nothing() {
        let snapshot = Snapshot {
            own: None,
            task: Some(None),
        };
        let admission = decide(&snapshot, "a", at("2026-01-01T02:00:00Z"));
        assert_eq!(admission.verdict, Verdict::Wait);
        assert!(admission.reserve.is_empty());
    }
}
