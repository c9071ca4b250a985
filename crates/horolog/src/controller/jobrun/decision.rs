//! What the JobRun reconciler's decision reads ([`Input`]) and says ([`Decision`], [`Act`]),
//! and the statuses every branch of it writes ([`finish`], [`report_running`]): below the
//! deciding modules (`decide`, `queued`, `follow`, `job`), so none imports its caller.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::admission::Verdict;

use crate::api::{ConcurrencyPolicy, Condition, Executor, JobRun, JobRunPhase, JobRunStatus};
use crate::controller::events::Note;
use crate::controller::index::{JobView, PodView};
use crate::pod::PodProgress;

/// Everything one reconcile of a JobRun reads.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The run, as cached.
    pub run: &'a JobRun,
    /// Its Pods, by attempt.
    pub pods: &'a BTreeMap<i32, PodView>,
    /// What admission says of it (for a run that has not started, and for a started run in a
    /// pool whose policy may cancel it).
    pub verdict: Option<&'a Verdict<String>>,
    /// The policy of its pool (for messages), and its limit.
    pub pool: Option<(ConcurrencyPolicy, Option<usize>)>,
    /// Its Task is missing (it names one that does not exist).
    pub task_missing: Option<&'a str>,
    /// What made it is gone: the Schedule that created it is deleted or being deleted (or
    /// the Task it runs is), as a reason (`ScheduleDeleted`, `TaskDeleted`) and a message. A
    /// run that has not started then never starts: it ends Cancelled.
    pub orphaned: Option<(&'static str, &'a str)>,
    /// The latest attempt whose Pod was deleted lately, if any.
    pub deleted_attempt: Option<i32>,
    /// What runs its attempts.
    pub executor: Executor,
    /// Its batch/v1 Job (the `Job` executor), if it exists.
    pub job: Option<&'a JobView>,
    /// Its Job was deleted lately.
    pub job_deleted: bool,
    /// Its history is counted where it must be, so resultTTL may delete it.
    pub may_expire: bool,
    /// The current time.
    pub now: DateTime<Utc>,
    /// How long a Pod must have run before the run is reported Running.
    pub running_report_delay: TimeDelta,
}

impl<'a> Input<'a> {
    /// The run's work is done and succeeded, though its status may not say so yet: its latest
    /// Pod Succeeded, or its Job is Complete.
    pub(super) fn succeeded(&self) -> bool {
        match self.executor {
            Executor::Job => self
                .job
                .is_some_and(|job| matches!(job.report.outcome, Some((true, ..)))),
            Executor::Pod => self
                .pods
                .values()
                .next_back()
                .is_some_and(|pod| pod.report.progress == PodProgress::Succeeded),
        }
    }

    /// The value of the cancel annotation, unless it came after the work succeeded: a success
    /// stands.
    pub(super) fn cancel_requested(&self) -> Option<&'a str> {
        self.run.cancel_requested().filter(|_| !self.succeeded())
    }
}

/// Something to do besides writing status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// Create the Pod of this attempt.
    Start(i32),
    /// Delete this Pod, with this grace period (`None`: the Pod's own).
    DeletePod(String, Option<i64>),
    /// Delete this Job and, in the foreground, its Pods, with this grace period.
    DeleteJob(String, Option<i64>),
    /// Delete the JobRun (resultTTL passed).
    DeleteSelf,
}

/// Everything one reconcile of a JobRun decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// The new status (written only when it differs from the old).
    pub status: Option<JobRunStatus>,
    /// What else to do, in order.
    pub acts: Vec<Act>,
    /// Events to publish.
    pub events: Vec<Note>,
    /// When to reconcile again; `None`: only when something changes.
    pub requeue: Option<DateTime<Utc>>,
}

impl Decision {
    /// Nothing to do until `at`.
    pub fn wait_until(at: DateTime<Utc>) -> Self {
        Decision {
            requeue: Some(at),
            ..Decision::default()
        }
    }

    /// Write `status`, nothing else.
    pub fn write(status: JobRunStatus) -> Self {
        Decision {
            status: Some(status),
            ..Decision::default()
        }
    }

    /// The same decision, saying `note` too.
    pub fn with_event(mut self, note: Note) -> Self {
        self.events.push(note);
        self
    }
}

/// The concurrency policy of the run's pool (Replace when it has none: only a replaced run
/// asks), for messages.
pub(super) fn policy(input: &Input<'_>) -> ConcurrencyPolicy {
    input
        .pool
        .map_or(ConcurrencyPolicy::Replace, |(policy, _)| policy)
}

/// A final status, with the conditions batch/v1 Job writes (`Complete` or `Failed`).
pub fn finish(
    old: &JobRunStatus,
    pod: Option<&PodView>,
    phase: JobRunPhase,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> Decision {
    let completion_time = old.completion_time.unwrap_or(now);
    let type_ = if phase == JobRunPhase::Succeeded {
        "Complete"
    } else {
        "Failed"
    };
    let condition = Condition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: reason.to_string(),
        message: message.clone(),
        last_transition_time: completion_time,
        observed_generation: None,
    };
    Decision::write(JobRunStatus {
        phase: Some(phase),
        reason: Some(reason.to_string()),
        message: Some(message),
        pod_name: old.pod_name.clone().or_else(|| pod.map(|p| p.name.clone())),
        attempts: old.attempts.or(pod.map(|p| p.attempt)),
        completion_time: Some(completion_time),
        duration: old
            .start_time
            .map(|start| format_duration(completion_time - start)),
        conditions: vec![condition],
        ..old.clone()
    })
}

/// Running, once the run has been running (since `started`, else now) for the report delay:
/// a shorter run goes from Pending to its outcome in one write.
pub(super) fn report_running(
    input: &Input<'_>,
    started: Option<DateTime<Utc>>,
    facts: JobRunStatus,
    event: String,
) -> Decision {
    let report_at = started.unwrap_or(input.now) + input.running_report_delay;
    if input.now < report_at {
        return Decision::wait_until(report_at);
    }
    Decision::write(JobRunStatus {
        phase: Some(JobRunPhase::Running),
        start_time: facts.start_time.or(Some(input.now)),
        reason: None,
        message: None,
        ..facts
    })
    .with_event(Note::normal("Started", event))
}

fn format_duration(delta: TimeDelta) -> String {
    crate::api::Duration::from(delta.to_std().unwrap_or_default()).to_string()
}
