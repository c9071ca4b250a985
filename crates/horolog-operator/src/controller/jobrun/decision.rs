//! What the JobRun reconciler's decision reads ([`Input`]) and says ([`Decision`], [`Act`]),
//! and the statuses every branch of it writes ([`finish`], [`report_running`]): below the
//! deciding modules (`decide`, `queued`, `follow`, `job`), so none imports its caller.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::admission::Verdict;

use crate::api::{ConcurrencyPolicy, Condition, Executor, JobRun, JobRunPhase, JobRunStatus};
use crate::controller::attempt::Started;
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
    /// Give back the slot admission reserved for the run, if it did (a no-op otherwise): the
    /// run finished, or admission let it start and the decision does not start it.
    ReleaseSlot,
    /// Create the Pod (or Job) of this attempt. Apply hands what the API server answered to
    /// [`answered`]; a start that created nothing also gives the reserved slot back.
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

/// The status of a run whose Task does not exist (yet): Pending, reason `TaskNotFound`; it
/// starts when the Task does. The one rule, whether the decision sees the Task missing in the
/// cache or the start finds it gone.
pub fn task_missing(old: &JobRunStatus, task: &str) -> JobRunStatus {
    JobRunStatus {
        phase: Some(JobRunPhase::Pending),
        reason: Some("TaskNotFound".into()),
        message: Some(format!(
            "spec.taskRef.name: Task {task:?} does not exist; the run starts when it does"
        )),
        ..old.clone()
    }
}

/// The reason of a run whose Pod or Job create the API server refused (403), and of a
/// Schedule's Ready condition when its JobRun create is refused.
pub const CREATE_REFUSED: &str = "CreateRefused";

/// What the API server answered to the start of `attempt` becomes part of `decision`: a
/// created Pod is said in an Event; a template it rejects (or none) fails the run; a missing
/// Task makes it wait ([`task_missing`]); a refused create (403: quota, webhook) keeps it
/// Pending with reason [`CREATE_REFUSED`] (an Event when the message is new) and drops the
/// requeue, since the error that reports it retries with backoff. Pure.
pub fn answered(
    run: &JobRun,
    old: &JobRunStatus,
    attempt: i32,
    answer: &Started,
    mut decision: Decision,
    now: DateTime<Utc>,
) -> Decision {
    match answer {
        Started::Created(pod) => decision.events.push(Note::normal(
            "PodCreated",
            format!("created pod {pod} (attempt {attempt})"),
        )),
        Started::Existed(_) => {}
        Started::Refused { reason, message } => {
            let failed = finish(old, None, JobRunPhase::Failed, reason, message.clone(), now);
            decision.status = failed.status;
            decision.events.push(Note::warning("Failed", message.clone()));
        }
        Started::TaskMissing(task) => decision.status = Some(task_missing(old, task)),
        Started::CreateRefused { kind, name, message } => {
            let until = match run.spec.start_deadline {
                Some(deadline) => format!("until its start deadline {}", deadline.to_rfc3339()),
                None => "with backoff".to_string(),
            };
            let text = format!(
                "the API server refused to create {} {name}: {message}; retrying {until}",
                kind.to_lowercase()
            );
            let status = JobRunStatus {
                phase: Some(JobRunPhase::Pending),
                reason: Some(CREATE_REFUSED.into()),
                message: Some(text.clone()),
                // A retry's decision already counts the new attempt: keep what it says.
                ..decision.status.clone().unwrap_or_else(|| old.clone())
            };
            if old.reason.as_deref() != Some(CREATE_REFUSED) || old.message != status.message {
                decision.events.push(Note::warning(CREATE_REFUSED, text));
            }
            decision.status = Some(status);
            decision.requeue = None;
        }
    }
    decision
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_support::at;

    fn run() -> JobRun {
        JobRun::new("nightly-1", crate::api::JobRunSpec::default())
    }

    #[test]
    fn a_missing_task_reads_the_same_whether_the_cache_or_the_start_found_it() {
        let old = JobRunStatus::default();
        let answer = Started::TaskMissing("t".into());
        let decided = answered(
            &run(),
            &old,
            1,
            &answer,
            Decision::default(),
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(decided.status, Some(task_missing(&old, "t")));
        assert_eq!(
            decided.status.and_then(|s| s.reason).as_deref(),
            Some("TaskNotFound")
        );
    }

    #[test]
    fn a_refused_create_keeps_the_run_pending_and_says_it_once() {
        let answer = Started::CreateRefused {
            kind: "Pod".into(),
            name: "nightly-1-1".into(),
            message: "exceeded quota".into(),
        };
        let now = at("2026-01-01T00:00:00Z");
        let first = answered(
            &run(),
            &JobRunStatus::default(),
            1,
            &answer,
            Decision::wait_until(now),
            now,
        );
        let status = first.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(JobRunPhase::Pending));
        assert_eq!(status.reason.as_deref(), Some(CREATE_REFUSED));
        assert_eq!(first.requeue, None, "the error's backoff retries it");
        assert_eq!(first.events.len(), 1);
        let again = answered(&run(), &status, 1, &answer, Decision::default(), now);
        assert!(again.events.is_empty(), "the same refusal is not said twice");
    }

    #[test]
    fn a_rejected_template_fails_the_run() {
        let answer = Started::Refused {
            reason: "NoTemplate",
            message: "spec.template: absent".into(),
        };
        let now = at("2026-01-01T00:00:00Z");
        let decided = answered(
            &run(),
            &JobRunStatus::default(),
            1,
            &answer,
            Decision::default(),
            now,
        );
        assert_eq!(decided.status.and_then(|s| s.phase), Some(JobRunPhase::Failed));
    }
}
