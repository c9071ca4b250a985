//! Slot admission, in one place: which pools a run belongs to, what each pool's limit and
//! policy are, and what the pure rule (`horolog_core::admission::admit`) says of the run.
//!
//! A run belongs to one or two pools:
//!
//! - its Schedule's (`maxRunningJobs`, `concurrencyPolicy`), or, for a backfilled run, its
//!   Backfill's (the Schedule's limit, the Backfill's policy), so a backfill never holds up
//!   the live fire times;
//! - its Task's (`maxRunningJobs` shared by every run of the Task), when it has one. A run
//!   competes there only once its own pool lets it start, so a run held by its Schedule never
//!   blocks another Schedule's run in the Task's FIFO.
//!
//! Reservations bridge the gap between creating a Pod and seeing it in the Pod index: a run
//! admitted to start is reserved in its pools under the same lock that computed the verdict,
//! so two reconciles (the Schedule's fast path and a JobRun's own, or the fast paths of two
//! Schedules that share a Task) can never both take the last slot. A reserved run counts as
//! holding its slots even before the JobRun cache shows it. A reservation ends when the cache
//! shows the run finished or the Pod index shows its Pod, when the watch saw the run deleted,
//! or when the start fails ([`Slots::release`]).

pub mod decide;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use horolog_core::admission::{DEFAULT_MAX_WAITING, Member, Pool, State, Verdict};
use kube::ResourceExt;

use super::Context;
use crate::api::{BACKFILL_LABEL, Backfill, ConcurrencyPolicy, JobRun, Schedule, Task};
use decide::{PoolSnapshot, Snapshot, TaskSnapshot};

/// Which pool of slots.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PoolKey {
    /// A Schedule's own runs.
    Schedule(String, String),
    /// The runs of one Backfill.
    Backfill(String, String),
    /// Every run of a Task.
    Task(String, String),
}

/// The runs this process admitted whose Pod the index does not show yet, by pool and name.
#[derive(Debug, Default)]
pub struct Slots {
    reserved: Mutex<Reserved>,
}

type Reserved = HashMap<PoolKey, HashMap<String, Arc<JobRun>>>;

impl Slots {
    /// Ends the reservations of `run` (its start failed, or it finished).
    pub fn release(&self, run: &JobRun) {
        let name = run.name_any();
        let mut reserved = self
            .reserved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for runs in reserved.values_mut() {
            runs.remove(&name);
        }
        reserved.retain(|_, runs| !runs.is_empty());
    }
}

/// A pool's members and its rule.
struct PoolState {
    key: PoolKey,
    pool: Pool,
    runs: Vec<Arc<JobRun>>,
}

/// What admission says of `run` at `now`: read the run's pools ([`Snapshot`]), decide
/// ([`decide::decide`], pure), and make the reservation it says. `extra` are runs the caller
/// knows exist but the JobRun cache may not show yet (a Schedule's fast path passes the runs
/// it just created). With `reserve`, a run told to start holds its slots until its Pod shows
/// in the index.
pub fn verdict(
    ctx: &Context,
    run: &Arc<JobRun>,
    extra: &[Arc<JobRun>],
    now: DateTime<Utc>,
    reserve: bool,
) -> Verdict<String> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    // The lock is taken before the pools' members are read and held until the reservation is
    // made: read outside it, a run that settles (or whose reservation ends) between the read
    // and the verdict would be missing from a stale member list while another reconcile gives
    // its slot away, and two runs would start under a limit of one.
    let mut reserved = ctx
        .slots
        .reserved
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut own = own_pool(ctx, run, extra);
    let mut task = run
        .task_name()
        .map(|task| task_pool(ctx, &namespace, task, extra));
    for pool in own.iter_mut().chain(task.iter_mut().flatten()) {
        // A run whose reservation ends now because its Pod just showed in the index stays a
        // member even if the JobRun cache does not list it: `is_holding` then sees its Pod.
        let started = forget_settled(ctx, &mut reserved, &pool.key);
        with_reserved(&reserved, pool);
        for run in started {
            if !pool.runs.iter().any(|r| r.metadata.name == run.metadata.name) {
                pool.runs.push(run);
            }
        }
    }
    let snapshot = Snapshot {
        own: own.as_ref().map(|pool| snapshot_of(ctx, &reserved, pool)),
        task: task.as_ref().map(|task| {
            task.as_ref().map(|task| {
                let pool = snapshot_of(ctx, &reserved, task);
                let own_pools = pool
                    .members
                    .iter()
                    .filter(|m| m.key != name && m.state == State::Queued)
                    .filter_map(|m| task.runs.iter().find(|r| r.name_any() == m.key))
                    .map(|other| {
                        let own = own_pool(ctx, other, extra).map(|p| snapshot_of(ctx, &reserved, &p));
                        (other.name_any(), own)
                    })
                    .collect();
                TaskSnapshot { pool, own_pools }
            })
        }),
    };
    let admission = decide::decide(&snapshot, &name, now);
    if reserve {
        for key in admission.reserve {
            reserved.entry(key).or_default().insert(name.clone(), run.clone());
        }
    }
    admission.verdict
}

/// The snapshot of `pool`: its unfinished members, each Holding or Queued.
fn snapshot_of(ctx: &Context, reserved: &Reserved, pool: &PoolState) -> PoolSnapshot {
    PoolSnapshot {
        key: pool.key.clone(),
        pool: pool.pool,
        members: pool
            .runs
            .iter()
            .filter(|run| !run.is_finished())
            .map(|run| Member {
                key: run.name_any(),
                fire_time: run.fire_time(),
                not_before: run.not_before(),
                deadline: run.spec.start_deadline,
                state: if is_holding(ctx, reserved, &pool.key, run) {
                    State::Holding
                } else {
                    State::Queued
                },
            })
            .collect(),
    }
}

/// True when `run` holds its slots: it is reserved in `pool`, or it has started
/// ([`holds_slot`]).
fn is_holding(ctx: &Context, reserved: &Reserved, pool: &PoolKey, run: &JobRun) -> bool {
    let name = run.name_any();
    reserved.get(pool).is_some_and(|runs| runs.contains_key(&name)) || holds_slot(ctx, run)
}

/// Does this run hold a slot? The one answer, for admission, the JobRun reconciler (a run
/// that holds one is followed, not admitted again) and the Task's `runningJobs`: a run that
/// has not finished holds its slots from its start on, that is once its Pod (or Job) is in
/// the index or its status names a Pod. (A run admitted a moment ago also holds them through
/// its reservation, which only admission sees.)
pub fn holds_slot(ctx: &Context, run: &JobRun) -> bool {
    !run.is_finished()
        && (run.status.as_ref().is_some_and(|s| s.pod_name.is_some())
            || ctx.pods.latest(run).is_some()
            || ctx.jobs.of_run(run).is_some())
}

/// Drops the reservations of pool `key` that are done: the JobRun cache shows the run finished,
/// or the Pod (or Job) index shows its Pod, or the watch saw the run deleted. A run the JobRun
/// cache does not show yet keeps its reservation: it was created a moment ago. Returns the
/// runs dropped because their Pod (or Job) showed: they still hold their slots.
fn forget_settled(ctx: &Context, reserved: &mut Reserved, key: &PoolKey) -> Vec<Arc<JobRun>> {
    let mut started = Vec::new();
    let Some(runs) = reserved.get_mut(key) else {
        return started;
    };
    runs.retain(|name, run| {
        let namespace = run.namespace().unwrap_or_default();
        match ctx.jobrun(&namespace, name) {
            Some(cached) if cached.is_finished() => false,
            Some(cached) => {
                let shows = ctx.pods.latest(&cached).is_some() || ctx.jobs.of_run(&cached).is_some();
                if shows {
                    started.push(cached);
                }
                !shows
            }
            // By uid: a run created again under a deleted one's name keeps its reservation.
            None => !run.uid().is_some_and(|uid| ctx.runs.was_deleted_uid(&uid)),
        }
    });
    if runs.is_empty() {
        reserved.remove(key);
    }
    started
}

/// Adds to `pool` the runs reserved in it that it does not list: created and admitted a moment
/// ago by another reconcile, not yet in the JobRun cache, and holding a slot all the same.
fn with_reserved(reserved: &Reserved, pool: &mut PoolState) {
    let Some(runs) = reserved.get(&pool.key) else {
        return;
    };
    for (name, run) in runs {
        if !pool.runs.iter().any(|r| r.metadata.name.as_ref() == Some(name)) {
            pool.runs.push(run.clone());
        }
    }
}

/// The Schedule's (or Backfill's) pool of `run`; `None` for a run of neither.
fn own_pool(ctx: &Context, run: &JobRun, extra: &[Arc<JobRun>]) -> Option<PoolState> {
    let namespace = run.namespace().unwrap_or_default();
    let schedule = ctx.schedule_of(run)?;
    let task = schedule.task_name().and_then(|task| ctx.task(&namespace, task));
    let limit = limit_of(ctx, &schedule);
    let policy = policy_of(&schedule, task.as_deref());
    if let Some(backfill) = run.labels().get(BACKFILL_LABEL) {
        let policy = ctx
            .backfill_labelled(&namespace, backfill)
            .and_then(|b: Arc<Backfill>| b.spec.concurrency_policy)
            .unwrap_or(policy);
        let runs = with_extra(
            ctx.runs_of(&schedule)
                .into_iter()
                .filter(|r| r.labels().get(BACKFILL_LABEL) == Some(backfill))
                .collect(),
            extra,
            |r| r.labels().get(BACKFILL_LABEL) == Some(backfill),
        );
        return Some(PoolState {
            key: PoolKey::Backfill(namespace, backfill.clone()),
            // A backfill without a limit still goes one run at a time: it must never start
            // a month of runs at once.
            pool: Pool {
                limit: Some(limit.unwrap_or(1)),
                policy,
                // A Backfill creates its runs in batches of its limit plus a small buffer.
                max_waiting: None,
            },
            runs,
        });
    }
    let runs = with_extra(
        ctx.runs_of(&schedule)
            .into_iter()
            .filter(|r| !r.is_backfill())
            .collect(),
        extra,
        |r| !r.is_backfill(),
    );
    Some(PoolState {
        key: PoolKey::Schedule(namespace, schedule.name_any()),
        pool: Pool {
            limit,
            policy,
            max_waiting: Some(max_waiting_of(&schedule, task.as_deref())),
        },
        runs,
    })
}

/// The Task's pool; `Some(None)` when the Task does not exist.
fn task_pool(ctx: &Context, namespace: &str, task: &str, extra: &[Arc<JobRun>]) -> Option<PoolState> {
    let spec = ctx.task(namespace, task)?;
    let runs = with_extra(ctx.runs_of_task(namespace, task), extra, |r| {
        r.task_name() == Some(task)
    });
    Some(PoolState {
        key: PoolKey::Task(namespace.to_string(), task.to_string()),
        pool: Pool {
            limit: spec.spec.max_running_jobs.map(|m| m.max(1) as usize),
            policy: spec.spec.concurrency_policy.unwrap_or_default(),
            max_waiting: Some(
                spec.spec
                    .max_waiting_runs
                    .map_or(DEFAULT_MAX_WAITING, |m| m.max(0) as usize),
            ),
        },
        runs,
    })
}

/// `runs` plus the runs of `extra` that `belongs` accepts and `runs` lacks.
fn with_extra(
    mut runs: Vec<Arc<JobRun>>,
    extra: &[Arc<JobRun>],
    belongs: impl Fn(&JobRun) -> bool,
) -> Vec<Arc<JobRun>> {
    for run in extra {
        if belongs(run) && !runs.iter().any(|r| r.name_any() == run.name_any()) {
            runs.push(run.clone());
        }
    }
    runs
}

/// A Schedule's `maxRunningJobs`, else the operator's default; `None` = no limit.
pub fn limit_of(ctx: &Context, schedule: &Schedule) -> Option<usize> {
    schedule
        .spec
        .max_running_jobs
        .or(ctx.config.defaults.max_running_jobs)
        .map(|m| m.max(1) as usize)
}

/// A Schedule's `maxWaitingRuns`, else its Task's, else 100.
pub fn max_waiting_of(schedule: &Schedule, task: Option<&Task>) -> usize {
    schedule
        .spec
        .max_waiting_runs
        .or_else(|| task.and_then(|t| t.spec.max_waiting_runs))
        .map_or(DEFAULT_MAX_WAITING, |m| m.max(0) as usize)
}

/// A Schedule's `concurrencyPolicy`, else its Task's, else Wait.
pub fn policy_of(schedule: &Schedule, task: Option<&Task>) -> ConcurrencyPolicy {
    schedule
        .spec
        .concurrency_policy
        .or_else(|| task.and_then(|t| t.spec.concurrency_policy))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JobTemplate, TaskSpec};
    use crate::controller::test_support::{at, hourly_schedule};

    fn task(max_waiting_runs: Option<i32>) -> Task {
        Task::new(
            "shared",
            TaskSpec {
                job_template: JobTemplate::default(),
                max_running_jobs: None,
                concurrency_policy: None,
                max_waiting_runs,
                misfire_grace_time: None,
                calendar_refs: Vec::new(),
            },
        )
    }

    #[test]
    fn max_waiting_runs_is_the_schedules_else_the_tasks_else_one_hundred() {
        let mut schedule = hourly_schedule(at("2026-01-01T00:00:00Z"));
        assert_eq!(max_waiting_of(&schedule, None), DEFAULT_MAX_WAITING);
        assert_eq!(DEFAULT_MAX_WAITING, 100);
        assert_eq!(max_waiting_of(&schedule, Some(&task(None))), 100);
        assert_eq!(max_waiting_of(&schedule, Some(&task(Some(7)))), 7);
        schedule.spec.max_waiting_runs = Some(0);
        assert_eq!(max_waiting_of(&schedule, Some(&task(Some(7)))), 0);
    }
}
