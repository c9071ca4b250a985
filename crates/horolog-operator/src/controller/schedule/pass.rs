//! What the Schedule reconciler's decision reads ([`Input`]), the pass it builds up
//! ([`Pass`]) and what it says ([`Decision`]): the types the deciding modules (`decide`,
//! `fire`, `ready`) share, below all of them, so none imports another's caller.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan::CatchUp;
use horolog_core::trigger::{Trigger, TriggerError};

use crate::api::{JobRun, Schedule, ScheduleStatus, Task};
use crate::controller::events::Note;

/// How many fire times `status.upcomingFireTimes` lists.
pub const UPCOMING: usize = 5;

/// What the decision needs to know besides the Schedule.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The catch-up bound of the planner.
    pub catch_up: CatchUp,
    /// `--default-misfire-grace-time`.
    pub default_grace: Option<TimeDelta>,
    /// How long settling successful runs may wait for the next status write
    /// (`--schedule-status-delay`).
    pub status_delay: TimeDelta,
    /// `--stage-ahead`: how long before its fire time a run is staged, for Schedules that
    /// leave `stageAhead` unset.
    pub stage_ahead: TimeDelta,
}

/// The Schedule's Task, when it names one.
#[derive(Clone, Copy, Debug)]
pub enum TaskLookup<'a> {
    /// The Schedule has a jobTemplate.
    NotUsed,
    /// It names a Task that does not exist.
    Missing(&'a str),
    /// It names this Task.
    Found(&'a Task),
}

impl<'a> TaskLookup<'a> {
    /// The Task, when the Schedule names one that exists.
    pub fn found(&self) -> Option<&'a Task> {
        match self {
            TaskLookup::Found(task) => Some(task),
            TaskLookup::NotUsed | TaskLookup::Missing(_) => None,
        }
    }
}

/// Everything one reconcile of a Schedule reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The Schedule, as cached.
    pub schedule: &'a Schedule,
    /// Its compiled trigger, or why it does not compile.
    pub trigger: Result<&'a Trigger, &'a TriggerError>,
    /// Its runs, as cached.
    pub runs: &'a [Arc<JobRun>],
    /// Runs of `status.active` known to be deleted.
    pub gone: &'a HashSet<String>,
    /// Its Task.
    pub task: TaskLookup<'a>,
    /// The current time.
    pub now: DateTime<Utc>,
    /// True when this reconcile ends an interruption of the operator: the first pass since
    /// the process started, or the first after the API server was unavailable.
    pub interrupted: bool,
    /// The operator's settings.
    pub settings: &'a Settings,
    /// When the Calendars the Schedule uses last changed (the latest write to one's spec):
    /// an edit of one applies from then.
    pub calendars_changed_at: Option<DateTime<Utc>>,
}

/// When the new status should be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Nothing changed.
    Nothing,
    /// Now: the cursor moved, a run was created, a condition changed, or news is bad.
    Now,
    /// Only finished runs were settled: at this instant, or with an earlier write.
    At(DateTime<Utc>),
}

/// Everything one reconcile of a Schedule decided.
#[derive(Clone, Debug)]
pub struct Decision {
    /// JobRuns to create (`AlreadyExists` means an earlier reconcile did).
    pub create: Vec<JobRun>,
    /// Settled runs beyond the history limits, to delete once the status is written.
    pub delete: Vec<String>,
    /// The new status.
    pub status: ScheduleStatus,
    /// When to write it.
    pub write: Write,
    /// Events to publish with the write.
    pub events: Vec<Note>,
    /// When to reconcile again; `None`: only when something changes.
    pub requeue: Option<DateTime<Utc>>,
    /// `ttlSecondsAfterFinished` has passed: delete the Schedule.
    pub delete_schedule: bool,
    /// Fire times recorded as missed by this pass, and merged away by coalescing.
    pub missed: i64,
    /// Fire times merged away by this pass.
    pub coalesced: i64,
    /// Fire times excluded by this pass.
    pub excluded: i64,
    /// The run of the next fire time, staged ahead of it (created after `create`).
    pub stage: Option<JobRun>,
    /// Staged runs whose fire time will not fire: deleted, with an Event that says why.
    pub unstage: Vec<Unstaged>,
    /// Runs this pass found already created (staged, or by a pass whose status write never
    /// happened) that have not started: started with the runs it creates, before its write.
    pub start: Vec<String>,
}

/// A staged run whose fire time will not fire, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unstaged {
    /// The JobRun.
    pub name: String,
    /// One CamelCase word: Missed, NotKept, Paused, TriggerEdited, CalendarEdited, MaxRunsReached,
    /// TriggerEnded, NotAFireTime, or the reason that stops the Schedule.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

/// One pass of the decision: what it read, and what it has decided so far.
pub struct Pass<'a> {
    /// What the reconcile read.
    pub input: Input<'a>,
    /// The status as read.
    pub old: ScheduleStatus,
    /// The status being decided.
    pub status: ScheduleStatus,
    /// Events decided so far.
    pub events: Vec<Note>,
    /// JobRuns to create.
    pub create: Vec<JobRun>,
}

/// What planning found.
#[derive(Clone, Debug, Default)]
pub struct PlanOutcome {
    /// The trigger has no more fire times (or maxRuns is reached).
    pub exhausted: bool,
    /// When the next fire time is due, if firing.
    pub wake: Option<DateTime<Utc>>,
    /// The trigger in short.
    pub trigger: String,
    /// Planned runs that already exist (created by a pass whose status write never
    /// happened): listed in `active` even if finished, so they are counted once.
    pub rediscovered: Vec<String>,
    /// Fire times recorded as missed by this pass.
    pub missed: i64,
    /// Fire times merged away by this pass.
    pub coalesced: i64,
    /// Fire times excluded by this pass.
    pub excluded: i64,
}
