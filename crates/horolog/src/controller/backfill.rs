//! The Backfill reconciler: run the fire times of a Schedule's trigger in `[from, to)` as if
//! they had happened, each with the JobRun the Schedule would have created for it.
//!
//! [`reconcile`] is the thin edge (read the caches, call [`decide`], create, write status,
//! publish Events); [`decide`] holds every decision and is pure.
//!
//! A range may hold a million fire times, so nothing here is proportional to the range:
//!
//! - the count (`status.fireTimes`) comes from [`FireTimes::due_between`], exact and
//!   arithmetic for `interval` and `calendarInterval` triggers, a lower bound past the scan
//!   limit for the others (the message then says "at least");
//! - runs are created in batches: at most the pool's limit plus [`BATCH_BUFFER`] of this
//!   Backfill's runs are unfinished at any moment; each batch moves `status.cursor` (the last
//!   fire time handled), and the next batch waits for a run of this Backfill to finish. A
//!   restart carries on after the cursor;
//! - one pass visits at most [`MAX_VISITS_PER_PASS`] fire times, however many of them
//!   already have a JobRun.
//!
//! A fire time whose JobRun name exists already (it ran, or an earlier pass created it) is
//! done: it is never created twice. Backfilled runs have no start deadline (a backfill has no
//! misfire) and no jitter; their admission (`admission.rs`) is a pool of their own, so a
//! backfill never holds up the Schedule's live fire times.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use horolog_core::plan::{FireTimes, upcoming};
use horolog_core::trigger::{Trigger, TriggerError};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, instrument};

use super::events::Note;
use super::schedule::decide::TaskLookup;
use super::schedule::settle::set_condition;
use super::schedule::{jobrun_for, run_name};
use super::{Context, Error, MANAGER, admission, is_already_exists};
use crate::api::{
    BACKFILL_LABEL, BACKFILL_PREVIEW, Backfill, BackfillPhase, BackfillStatus, Condition, JobRun, Schedule,
    TriggerSpec, find_condition,
};
use crate::pod::{MAX_NAME_LEN, short_name};

/// The condition type of a Backfill, as on batch/v1 Job.
pub const COMPLETE: &str = "Complete";

/// How many of a Backfill's runs may wait beyond its pool's limit: enough that a slot that
/// frees is taken at once by the JobRun reconciler, without waiting for the next batch.
pub const BATCH_BUFFER: usize = 10;

/// Fire times one pass visits at most (those whose JobRun exists cost a visit but no slot).
pub const MAX_VISITS_PER_PASS: usize = 1000;

/// How soon a pass cut short by a JobRun the cache does not show yet looks again, should the
/// run's watch event not wake it first.
const CACHE_BEHIND_RECHECK: Duration = Duration::from_secs(1);

/// The Schedule a Backfill names, as the caches show it.
#[derive(Clone, Copy, Debug)]
pub enum ScheduleLookup<'a> {
    /// No Schedule of that name.
    Missing,
    /// It is being deleted.
    Deleting,
    /// The Schedule, its trigger (compiled as the backfill reads it) and its Task.
    Found {
        /// The Schedule.
        schedule: &'a Schedule,
        /// Its trigger, or why it does not compile.
        trigger: Result<&'a Trigger, &'a TriggerError>,
        /// Its Task.
        task: TaskLookup<'a>,
    },
}

/// Everything one reconcile of a Backfill reads.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The Backfill, as cached.
    pub backfill: &'a Backfill,
    /// Its Schedule.
    pub schedule: ScheduleLookup<'a>,
    /// The Schedule's runs, as cached.
    pub runs: &'a [Arc<JobRun>],
    /// Any JobRun of the namespace by name, as cached.
    pub existing: &'a dyn Fn(&str) -> Option<Arc<JobRun>>,
    /// The limit of the backfill's pool of slots (the Schedule's maxRunningJobs, else 1).
    pub limit: usize,
    /// Fire times counted one by one at most; past it a scanning trigger's count is a lower
    /// bound.
    pub scan_limit: usize,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// Everything one reconcile of a Backfill decided.
#[derive(Clone, Debug)]
pub struct Decision {
    /// JobRuns to create, oldest fire time first. The status below counts them as created.
    pub create: Vec<JobRun>,
    /// The new status.
    pub status: BackfillStatus,
    /// Events to publish once the status is written.
    pub events: Vec<Note>,
}

/// The default start a Backfill compiles the Schedule's trigger with. The Schedule uses its
/// creation time; a backfill may reach further back, as if the Schedule had existed then:
/// an `interval` trigger's grid is extended backwards (so the names match the Schedule's
/// own runs), any other trigger is read from `from`. A `trigger.startTime` always wins.
pub fn trigger_origin(spec: &TriggerSpec, created: DateTime<Utc>, from: DateTime<Utc>) -> DateTime<Utc> {
    if from >= created || spec.start_time.is_some() {
        return created;
    }
    let Some(period) = spec.interval else {
        return from;
    };
    let period_ns = period.as_std().as_nanos() as i128;
    let behind_ns = (created - from).num_nanoseconds().map(i128::from);
    match behind_ns {
        Some(behind) if period_ns > 0 => {
            let periods = (behind + period_ns - 1) / period_ns;
            i64::try_from(periods * period_ns)
                .ok()
                .and_then(|ns| created.checked_sub_signed(TimeDelta::nanoseconds(ns)))
                .unwrap_or(from)
        }
        _ => from,
    }
}

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let backfill = input.backfill;
    let old = backfill.status.clone().unwrap_or_default();
    if old.phase == Some(BackfillPhase::Complete) {
        return unchanged(old);
    }
    let schedule_name = &backfill.spec.schedule_name;
    let (schedule, trigger, task) = match input.schedule {
        ScheduleLookup::Missing => {
            return failed(
                &input,
                "ScheduleNotFound",
                format!("Schedule {schedule_name:?} does not exist"),
            );
        }
        ScheduleLookup::Deleting => {
            return failed(
                &input,
                "ScheduleDeleted",
                format!("Schedule {schedule_name:?} is being deleted"),
            );
        }
        ScheduleLookup::Found {
            trigger: Err(err), ..
        } => {
            return failed(
                &input,
                err.kind.reason(),
                format!("the trigger of Schedule {schedule_name:?} is invalid: {err}"),
            );
        }
        ScheduleLookup::Found {
            schedule,
            trigger: Ok(trigger),
            task,
        } => (schedule, trigger, task),
    };
    let range = Range::of(backfill);
    let mut status = BackfillStatus {
        message: None,
        ..old.clone()
    };
    let first_count = old
        .fire_times
        .is_none()
        .then(|| range.count(trigger, input.scan_limit));
    let (count, exact) = match first_count {
        Some((count, exact)) => (count, exact),
        None => {
            let count = old.fire_times.unwrap_or_default();
            (
                count,
                count_is_exact(&schedule.spec.trigger, count, input.scan_limit),
            )
        }
    };
    status.fire_times = Some(count);
    let count_text = if exact {
        count.to_string()
    } else {
        format!("at least {count}")
    };

    if backfill.spec.dry_run {
        status.preview = upcoming(trigger, Some(range.after()), BACKFILL_PREVIEW)
            .into_iter()
            .filter(|t| range.contains(*t))
            .collect();
        let message = format!("dry run: {count_text} fire time(s) in {range}; nothing created");
        return complete(&input, status, "DryRun", message);
    }

    let label = short_name(&backfill.name_any(), MAX_NAME_LEN);
    let ours = |run: &JobRun| {
        run.labels().get(BACKFILL_LABEL) == Some(&label)
            && run.spec.schedule_name.as_deref() == Some(schedule.name_any().as_str())
    };
    let waiting = input
        .runs
        .iter()
        .filter(|run| ours(run) && !run.is_finished())
        .count();
    let room = (input.limit.max(1) + BATCH_BUFFER).saturating_sub(waiting);
    let mut create = Vec::new();
    let mut visited = 0;
    let mut next = range.next_after(trigger, status.cursor);
    while let Some(fire_time) = next {
        if create.len() >= room || visited >= MAX_VISITS_PER_PASS {
            break;
        }
        visited += 1;
        let name = run_name(&schedule.name_any(), fire_time);
        match (input.existing)(&name) {
            // Created by a pass whose status write was lost: count it now.
            Some(run) if ours(&run) => status.created += 1,
            // It ran (or runs) already: done, not ours.
            Some(_) => {}
            None => {
                info!(%fire_time, run = %name, "backfilling");
                create.push(backfilled_run(schedule, &task, backfill, name, fire_time));
                status.created += 1;
            }
        }
        status.cursor = Some(fire_time);
        next = range.next_after(trigger, status.cursor);
    }
    let exhausted = next.is_none();
    let unfinished = create.len()
        + input
            .runs
            .iter()
            .filter(|run| !run.is_finished() && range.contains(run.fire_time()))
            .count();
    let mut decision = if exhausted && unfinished == 0 {
        let message = format!(
            "every fire time in {range} ({count_text}) has a JobRun and all have finished; this Backfill created {}",
            status.created
        );
        complete(&input, status, "AllRunsFinished", message)
    } else {
        let message = match status.cursor {
            Some(cursor) => format!(
                "created {} of {count_text} JobRun(s); fire times handled up to {}",
                status.created,
                rfc3339(cursor)
            ),
            None => format!("{count_text} fire time(s) in {range}; waiting for a slot"),
        };
        status.phase = Some(BackfillPhase::Running);
        status.message = Some(message);
        condition(
            &mut status,
            &old,
            false,
            "Running",
            "not every fire time has a finished JobRun yet".into(),
            &input,
        );
        let mut events = Vec::new();
        if old.phase != Some(BackfillPhase::Running) {
            events.push(Note::normal(
                "BackfillStarted",
                format!(
                    "running {count_text} fire time(s) of Schedule {schedule_name} in {range}, as the concurrency policy admits them"
                ),
            ));
        }
        Decision {
            create: Vec::new(),
            status,
            events,
        }
    };
    decision.create = create;
    decision
}

/// The run of `fire_time`: the Schedule's, with no jitter, no start deadline and the
/// Backfill's label.
fn backfilled_run(
    schedule: &Schedule,
    task: &TaskLookup<'_>,
    backfill: &Backfill,
    name: String,
    fire_time: DateTime<Utc>,
) -> JobRun {
    let mut run = jobrun_for(schedule, task, name, fire_time, TimeDelta::zero(), None);
    run.metadata.labels.get_or_insert_with(Default::default).insert(
        BACKFILL_LABEL.to_string(),
        short_name(&backfill.name_any(), MAX_NAME_LEN),
    );
    run
}

/// True when `count`, counted with `scan_limit`, is exact: below the limit every trigger
/// counts exactly, past it only an `interval` or `calendarInterval` trigger (which counts
/// arithmetically, see `Trigger::due_between`).
fn count_is_exact(spec: &TriggerSpec, count: i64, scan_limit: usize) -> bool {
    count < scan_limit as i64 || spec.interval.is_some() || spec.calendar_interval.is_some()
}

fn unchanged(status: BackfillStatus) -> Decision {
    Decision {
        create: Vec::new(),
        status,
        events: Vec::new(),
    }
}

/// Failed: the Schedule is missing or its trigger invalid. Not final: the Backfill carries
/// on from its cursor when the Schedule is back or fixed.
fn failed(input: &Input<'_>, reason: &str, message: String) -> Decision {
    let old = input.backfill.status.clone().unwrap_or_default();
    let mut status = BackfillStatus {
        phase: Some(BackfillPhase::Failed),
        message: Some(message.clone()),
        ..old.clone()
    };
    condition(&mut status, &old, false, reason, message.clone(), input);
    let events = if old.phase != Some(BackfillPhase::Failed) || old.message.as_ref() != Some(&message) {
        vec![Note::warning("BackfillFailed", message)]
    } else {
        Vec::new()
    };
    Decision {
        create: Vec::new(),
        status,
        events,
    }
}

fn complete(input: &Input<'_>, mut status: BackfillStatus, reason: &str, message: String) -> Decision {
    let old = input.backfill.status.clone().unwrap_or_default();
    status.phase = Some(BackfillPhase::Complete);
    status.message = Some(message.clone());
    condition(&mut status, &old, true, reason, message.clone(), input);
    Decision {
        create: Vec::new(),
        status,
        events: vec![Note::normal("BackfillComplete", message)],
    }
}

fn condition(
    status: &mut BackfillStatus,
    old: &BackfillStatus,
    ok: bool,
    reason: &str,
    message: String,
    input: &Input<'_>,
) {
    let condition = Condition::transition(
        find_condition(&old.conditions, COMPLETE),
        COMPLETE,
        ok,
        reason,
        message,
        input.backfill.metadata.generation,
        input.now,
    );
    set_condition(&mut status.conditions, condition);
}

/// A Backfill's range `[from, to)`.
#[derive(Clone, Copy, Debug)]
struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Range {
    fn of(backfill: &Backfill) -> Range {
        Range {
            from: backfill.spec.from,
            to: backfill.spec.to,
        }
    }

    /// The instant just before `from`: the fire times after it are the range's.
    fn after(self) -> DateTime<Utc> {
        self.from - TimeDelta::nanoseconds(1)
    }

    fn contains(self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }

    /// How many fire times the range holds, and whether that is exact.
    fn count(self, trigger: &Trigger, scan_limit: usize) -> (i64, bool) {
        if self.to <= self.from {
            return (0, true);
        }
        // `due_between` counts (after, until]; the range is [from, to).
        let due = trigger.due_between(
            Some(self.after()),
            self.to - TimeDelta::nanoseconds(1),
            0,
            scan_limit,
        );
        (i64::try_from(due.count).unwrap_or(i64::MAX), due.exact)
    }

    /// The first fire time of the range after `cursor` (from its start for `None`).
    fn next_after(self, trigger: &Trigger, cursor: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let after = cursor.unwrap_or(self.after()).max(self.after());
        FireTimes::next_after(trigger, Some(after)).filter(|t| *t > after && *t < self.to)
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", rfc3339(self.from), rfc3339(self.to))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The Backfills to wake when `schedule` changed or went away: those that name it and have
/// not completed (a missing Schedule that appears lets a Failed one carry on).
pub fn of_schedule(ctx: &Context, schedule: &Schedule) -> Vec<ObjectRef<Backfill>> {
    let namespace = schedule.namespace().unwrap_or_default();
    backfills_where(ctx, &namespace, |b| b.spec.schedule_name == schedule.name_any())
}

/// The Backfills to wake when `run` changed: the one that created it, and those of its
/// Schedule whose range holds its fire time (a Backfill completes once every run of its
/// range has finished).
pub fn woken_by(ctx: &Context, run: &JobRun) -> Vec<ObjectRef<Backfill>> {
    let Some(schedule) = run.spec.schedule_name.as_deref() else {
        return Vec::new();
    };
    let namespace = run.namespace().unwrap_or_default();
    let label = run.labels().get(BACKFILL_LABEL);
    backfills_where(ctx, &namespace, |b| {
        b.spec.schedule_name == schedule
            && (label == Some(&short_name(&b.name_any(), MAX_NAME_LEN))
                || Range::of(b).contains(run.fire_time()))
    })
}

fn backfills_where(
    ctx: &Context,
    namespace: &str,
    wanted: impl Fn(&Backfill) -> bool,
) -> Vec<ObjectRef<Backfill>> {
    ctx.stores
        .backfills
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(namespace))
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) != Some(BackfillPhase::Complete))
        .filter(|b| wanted(b))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// Reconciles one Backfill: read the caches, decide, create the batch's runs, write status
/// when it changed, publish Events.
#[instrument(skip(backfill, ctx), fields(backfill = %backfill.name_any(), namespace = %backfill.namespace().unwrap_or_default()))]
pub async fn reconcile(backfill: Arc<Backfill>, ctx: Arc<Context>) -> Result<Action, Error> {
    if backfill.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.status.behind_own_write(backfill.as_ref()) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let old = backfill.status.clone().unwrap_or_default();
    if old.phase == Some(BackfillPhase::Complete) {
        return Ok(Action::await_change());
    }
    let namespace = backfill.namespace().unwrap_or_default();
    let now = ctx.now();
    let schedule = ctx.schedule(&namespace, &backfill.spec.schedule_name);
    let trigger = schedule.as_ref().map(|schedule| {
        let created = schedule
            .meta()
            .creation_timestamp
            .as_ref()
            .and_then(crate::pod::chrono_time)
            .unwrap_or(now);
        let origin = trigger_origin(&schedule.spec.trigger, created, backfill.spec.from);
        Trigger::compile(&schedule.spec.trigger, origin)
    });
    let task = schedule.as_ref().and_then(|s| {
        s.task_name()
            .map(|name| (name.to_string(), ctx.task(&namespace, name)))
    });
    let task_lookup = match &task {
        None => TaskLookup::NotUsed,
        Some((name, None)) => TaskLookup::Missing(name),
        Some((_, Some(task))) => TaskLookup::Found(task),
    };
    let lookup = match (&schedule, &trigger) {
        (Some(schedule), _) if schedule.meta().deletion_timestamp.is_some() => ScheduleLookup::Deleting,
        (Some(schedule), Some(trigger)) => ScheduleLookup::Found {
            schedule,
            trigger: trigger.as_ref(),
            task: task_lookup,
        },
        _ => ScheduleLookup::Missing,
    };
    if let ScheduleLookup::Found { schedule, .. } = lookup
        && !backfill.spec.dry_run
        && runs_cache_behind(&ctx, &backfill, schedule).await?
    {
        return Ok(Action::requeue(CACHE_BEHIND_RECHECK));
    }
    let runs = schedule.as_ref().map(|s| ctx.runs_of(s)).unwrap_or_default();
    let existing = |name: &str| ctx.jobrun(&namespace, name);
    let limit = schedule
        .as_ref()
        .and_then(|s| admission::limit_of(&ctx, s))
        .unwrap_or(1);
    let decision = decide(Input {
        backfill: &backfill,
        schedule: lookup,
        runs: &runs,
        existing: &existing,
        limit,
        scan_limit: ctx.config.catch_up.max_scanned,
        now,
    });
    apply(&backfill, decision, &ctx).await
}

/// True when the JobRun cache has not caught up with this Backfill's last batch: the run of
/// its cursor is neither in the cache nor known deleted, yet the API server has it. A batch
/// decided on such a cache could count too few unfinished runs and go past the bound.
async fn runs_cache_behind(ctx: &Context, backfill: &Backfill, schedule: &Schedule) -> Result<bool, Error> {
    let Some(cursor) = backfill.status.as_ref().and_then(|s| s.cursor) else {
        return Ok(false);
    };
    let namespace = backfill.namespace().unwrap_or_default();
    let name = run_name(&schedule.name_any(), cursor);
    if ctx.jobrun(&namespace, &name).is_some() || ctx.runs.was_deleted(&namespace, &name) {
        return Ok(false);
    }
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.get_opt(&name).await {
        Ok(found) => Ok(found.is_some()),
        Err(err) => Err(Error::api("get", "JobRun", &namespace, &name, err)),
    }
}

/// Carries out a decision: the creates first, then the status that counts them.
async fn apply(backfill: &Backfill, decision: Decision, ctx: &Context) -> Result<Action, Error> {
    let namespace = backfill.namespace().unwrap_or_default();
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    for run in &decision.create {
        match api.create(&params, run).await {
            Ok(_) => {}
            // The cache did not show it: it is behind. Decide again on a newer one; the runs
            // this pass created count then as this Backfill's (by their label).
            Err(err) if is_already_exists(&err) => {
                info!(run = %run.name_any(), "JobRun exists but the cache does not show it yet; looking again");
                return Ok(Action::requeue(CACHE_BEHIND_RECHECK));
            }
            Err(err) => return Err(Error::api("create", "JobRun", &namespace, &run.name_any(), err)),
        }
    }
    let old = backfill.status.clone().unwrap_or_default();
    let written = ctx
        .status
        .patch(&ctx.client, backfill, &old, &decision.status)
        .await?;
    if written {
        for note in decision.events {
            ctx.publish(backfill, note).await;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::api::{BackfillSpec, Duration as ApiDuration, JobRunPhase, JobRunStatus, ScheduleSpec};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hourly() -> Schedule {
        let mut schedule = Schedule::new(
            "nightly",
            ScheduleSpec {
                trigger: TriggerSpec {
                    interval: Some(ApiDuration::from_secs(3600)),
                    ..TriggerSpec::default()
                },
                ..ScheduleSpec::default()
            },
        );
        schedule.metadata.namespace = Some("default".into());
        schedule.metadata.uid = Some("uid-1".into());
        schedule
    }

    fn backfill(from: &str, to: &str) -> Backfill {
        let mut backfill = Backfill::new(
            "rerun",
            BackfillSpec {
                schedule_name: "nightly".into(),
                from: at(from),
                to: at(to),
                concurrency_policy: None,
                dry_run: false,
            },
        );
        backfill.metadata.namespace = Some("default".into());
        backfill
    }

    fn trigger(schedule: &Schedule, from: DateTime<Utc>) -> Trigger {
        let origin = trigger_origin(&schedule.spec.trigger, at("2026-01-01T00:00:00Z"), from);
        Trigger::compile(&schedule.spec.trigger, origin).unwrap()
    }

    fn finished(mut run: JobRun) -> Arc<JobRun> {
        run.status = Some(JobRunStatus {
            phase: Some(JobRunPhase::Succeeded),
            ..JobRunStatus::default()
        });
        Arc::new(run)
    }

    struct World {
        schedule: Schedule,
        trigger: Trigger,
        runs: Vec<Arc<JobRun>>,
    }

    impl World {
        fn new(from: &str) -> World {
            let schedule = hourly();
            let trigger = trigger(&schedule, at(from));
            World {
                schedule,
                trigger,
                runs: Vec::new(),
            }
        }

        fn decide(&self, backfill: &Backfill, limit: usize) -> Decision {
            let by_name: HashMap<String, Arc<JobRun>> =
                self.runs.iter().map(|r| (r.name_any(), r.clone())).collect();
            let existing = move |name: &str| by_name.get(name).cloned();
            decide(Input {
                backfill,
                schedule: ScheduleLookup::Found {
                    schedule: &self.schedule,
                    trigger: Ok(&self.trigger),
                    task: TaskLookup::NotUsed,
                },
                runs: &self.runs,
                existing: &existing,
                limit,
                scan_limit: 100_000,
                now: at("2026-03-01T00:00:00Z"),
            })
        }
    }

    #[test]
    fn an_interval_grid_is_extended_backwards_so_names_match_the_schedules_runs() {
        let schedule = hourly();
        let created = at("2026-01-01T00:30:00Z");
        assert_eq!(
            trigger_origin(&schedule.spec.trigger, created, at("2025-12-31T21:00:00Z")),
            at("2025-12-31T20:30:00Z"),
            "on the Schedule's grid, at or before from"
        );
        assert_eq!(
            trigger_origin(&schedule.spec.trigger, created, at("2026-01-02T00:00:00Z")),
            created,
            "a range after the creation uses the Schedule's own grid"
        );
        let cron: TriggerSpec = serde_json::from_value(serde_json::json!({"cron": "0 9 * * *"})).unwrap();
        assert_eq!(
            trigger_origin(&cron, created, at("2025-12-01T00:00:00Z")),
            at("2025-12-01T00:00:00Z")
        );
    }

    #[test]
    fn the_first_batch_creates_up_to_the_limit_plus_the_buffer_and_moves_the_cursor() {
        let world = World::new("2025-12-01T00:00:00Z");
        let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-03T00:00:00Z");
        let decision = world.decide(&backfill, 1);
        assert_eq!(decision.create.len(), 1 + BATCH_BUFFER);
        let first = &decision.create[0];
        assert_eq!(first.name_any(), "nightly-1764547200");
        assert_eq!(
            first.labels().get(BACKFILL_LABEL).map(String::as_str),
            Some("rerun")
        );
        assert_eq!(first.spec.start_deadline, None, "a backfill has no misfire");
        assert_eq!(first.spec.jitter, None);
        let status = &decision.status;
        assert_eq!(status.phase, Some(BackfillPhase::Running));
        assert_eq!(status.fire_times, Some(48));
        assert_eq!(status.created, 11);
        assert_eq!(status.cursor, Some(at("2025-12-01T10:00:00Z")));
        assert_eq!(
            decision.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            ["BackfillStarted"]
        );
    }

    #[test]
    fn a_full_pool_creates_nothing_until_a_run_finishes() {
        let mut world = World::new("2025-12-01T00:00:00Z");
        let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-03T00:00:00Z");
        let first = world.decide(&backfill, 1);
        world.runs = first.create.iter().cloned().map(Arc::new).collect();
        backfill.status = Some(first.status.clone());
        let again = world.decide(&backfill, 1);
        assert!(again.create.is_empty());
        assert_eq!(again.status, first.status, "a second pass changes nothing");

        world.runs[0] = finished((*world.runs[0]).clone());
        let next = world.decide(&backfill, 1);
        assert_eq!(next.create.len(), 1);
        assert_eq!(next.create[0].spec.fire_time, Some(at("2025-12-01T11:00:00Z")));
    }

    #[test]
    fn fire_times_whose_run_exists_are_done_and_created_only_counts_new_ones() {
        let mut world = World::new("2025-12-01T00:00:00Z");
        let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T04:00:00Z");
        let mut ran = jobrun_for(
            &world.schedule,
            &TaskLookup::NotUsed,
            run_name("nightly", at("2025-12-01T01:00:00Z")),
            at("2025-12-01T01:00:00Z"),
            TimeDelta::zero(),
            None,
        );
        ran.metadata.namespace = Some("default".into());
        world.runs.push(finished(ran));
        let decision = world.decide(&backfill, 1);
        let fire_times: Vec<_> = decision.create.iter().filter_map(|r| r.spec.fire_time).collect();
        assert_eq!(
            fire_times,
            [
                at("2025-12-01T00:00:00Z"),
                at("2025-12-01T02:00:00Z"),
                at("2025-12-01T03:00:00Z")
            ]
        );
        assert_eq!(decision.status.created, 3);
        assert_eq!(decision.status.fire_times, Some(4));
    }

    #[test]
    fn runs_created_by_a_pass_whose_status_was_lost_are_counted_not_created_again() {
        let mut world = World::new("2025-12-01T00:00:00Z");
        let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T03:00:00Z");
        let lost = world.decide(&backfill, 1);
        world.runs = lost.create.iter().cloned().map(finished).collect();
        let decision = world.decide(&backfill, 1);
        assert!(decision.create.is_empty());
        assert_eq!(decision.status.created, 3);
        assert_eq!(decision.status.phase, Some(BackfillPhase::Complete));
    }

    #[test]
    fn a_dry_run_counts_and_previews_without_creating() {
        let world = World::new("2025-12-01T00:00:00Z");
        let mut backfill = backfill("2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z");
        backfill.spec.dry_run = true;
        let decision = world.decide(&backfill, 1);
        assert!(decision.create.is_empty());
        assert_eq!(decision.status.phase, Some(BackfillPhase::Complete));
        assert_eq!(decision.status.fire_times, Some(31 * 24));
        assert_eq!(decision.status.preview.len(), BACKFILL_PREVIEW);
        assert_eq!(decision.status.preview[0], at("2025-12-01T00:00:00Z"));
        assert_eq!(decision.status.cursor, None);
        let complete = find_condition(&decision.status.conditions, COMPLETE).unwrap();
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "DryRun")
        );
    }

    #[test]
    fn a_scanning_trigger_past_the_scan_limit_says_at_least() {
        let cron: TriggerSpec = serde_json::from_value(serde_json::json!({"cron": "* * * * * *"})).unwrap();
        let mut schedule = hourly();
        schedule.spec.trigger = cron;
        let trigger = Trigger::compile(&schedule.spec.trigger, at("2025-12-01T00:00:00Z")).unwrap();
        let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T01:00:00Z");
        backfill.spec.dry_run = true;
        let existing = |_: &str| None;
        let decision = decide(Input {
            backfill: &backfill,
            schedule: ScheduleLookup::Found {
                schedule: &schedule,
                trigger: Ok(&trigger),
                task: TaskLookup::NotUsed,
            },
            runs: &[],
            existing: &existing,
            limit: 1,
            scan_limit: 1000,
            now: at("2026-03-01T00:00:00Z"),
        });
        let message = decision.status.message.unwrap_or_default();
        assert!(message.contains("at least 1"), "{message}");
        assert!(!count_is_exact(&schedule.spec.trigger, 1000, 1000));
        assert!(count_is_exact(&hourly().spec.trigger, 1_000_000, 1000));
    }

    #[test]
    fn a_missing_schedule_fails_with_a_warning_once() {
        let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-02T00:00:00Z");
        fn missing(backfill: &Backfill) -> Decision {
            decide(Input {
                backfill,
                schedule: ScheduleLookup::Missing,
                runs: &[],
                existing: &|_: &str| None,
                limit: 1,
                scan_limit: 1000,
                now: at("2026-03-01T00:00:00Z"),
            })
        }
        let decision = missing(&backfill);
        assert_eq!(decision.status.phase, Some(BackfillPhase::Failed));
        assert_eq!(
            decision.status.message.as_deref(),
            Some("Schedule \"nightly\" does not exist")
        );
        assert_eq!(decision.events[0].reason, "BackfillFailed");
        assert!(decision.events[0].warning);
        backfill.status = Some(decision.status.clone());
        let again = missing(&backfill);
        assert_eq!(again.status, decision.status);
        assert!(again.events.is_empty());
    }
}
