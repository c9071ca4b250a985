//! The JobRun reconciler's decision: pure, a function of the run, its Pods, what admission
//! says of it and the current time.
//!
//! Status is written once per transition a user can see: Waiting (held by a limit), Running
//! (once the Pod has run for [`Input::running_report_delay`], so a run of a few seconds goes
//! from Pending to its outcome in one write), a retry, and the final phase. Creating the Pod
//! writes nothing: its name is derived from the run's, and the Pod index finds it, so the
//! status names the Pod in the next write it needs anyway.

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
    fn succeeded(&self) -> bool {
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

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let old = input.run.status.clone().unwrap_or_default();
    if input.run.is_finished() {
        return expire(input, &old);
    }
    // A success stands: a newer run that took the slot before this reconcile saw the success
    // (the Pod finished while the operator was down, say) does not cancel it.
    let input = match input.verdict {
        Some(Verdict::Cancel { .. }) if input.succeeded() => Input {
            verdict: None,
            ..input
        },
        _ => input,
    };
    if input.executor == Executor::Job {
        return super::job::decide(input, &old);
    }
    let latest = input.pods.values().next_back();
    if let Some(value) = input.cancel_requested() {
        let mut decision = finish(
            &old,
            latest,
            JobRunPhase::Cancelled,
            "CancelRequested",
            format!("cancelled: annotation horolog.dev/cancel={value:?}"),
            input.now,
        );
        if let Some(pod) = latest.filter(|p| !p.deleting && !p.report.progress.is_finished()) {
            decision.acts.insert(0, Act::DeletePod(pod.name.clone(), None));
        }
        return decision;
    }
    // Its latest Pod was deleted: the watch saw it go, or its status names a Pod the index
    // no longer has.
    let deleted = input
        .deleted_attempt
        .is_some_and(|attempt| latest.is_none_or(|pod| attempt > pod.attempt));
    match latest {
        _ if deleted => super::follow::gone(input, &old),
        Some(pod) => super::follow::started(input, &old, pod),
        None if old.pod_name.is_some() => super::follow::gone(input, &old),
        None => super::queued::decide(input, &old),
    }
}

/// A finished run: delete it resultTTL after completion, or wait until then.
fn expire(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let (Some(ttl), Some(done)) = (input.run.spec.run.result_ttl, old.completion_time) else {
        return Decision::default();
    };
    let expires = done + ttl.as_chrono();
    if input.now < expires {
        return Decision::wait_until(expires);
    }
    if !input.may_expire {
        // Its Schedule has not counted it yet: look again soon.
        return Decision::wait_until(input.now + TimeDelta::seconds(30));
    }
    Decision {
        acts: vec![Act::DeleteSelf],
        ..Decision::default()
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

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
