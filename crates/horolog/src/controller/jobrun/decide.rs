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
use kube::ResourceExt;

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

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let run = input.run;
    let old = run.status.clone().unwrap_or_default();
    if run.is_finished() {
        return expire(input, &old);
    }
    if input.executor == Executor::Job {
        return super::job::decide(input, &old);
    }
    let latest = input.pods.values().next_back();
    if let Some(value) = run.cancel_requested() {
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
        _ if deleted => gone(input, &old),
        Some(pod) => started(input, &old, pod),
        None if old.pod_name.is_some() => gone(input, &old),
        None => unstarted(input, &old),
    }
}

/// The run's Pod was deleted before it finished: the next attempt, or Failed.
fn gone(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let attempt = input.deleted_attempt.max(old.attempts).unwrap_or(1);
    let name = crate::pod::pod_name(&input.run.name_any(), attempt);
    let pod = PodView {
        name: name.clone(),
        attempt,
        report: crate::pod::PodReport::default(),
        deleting: true,
    };
    let why = format!("pod {name} was deleted before it finished");
    retry_or_fail(input.run, old.clone(), &pod, "PodDeleted", why, input.now)
}

/// A finished run: delete it resultTTL after completion, or wait until then.
fn expire(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let (Some(ttl), Some(done)) = (input.run.spec.run.result_ttl, old.completion_time) else {
        return Decision::default();
    };
    let expires = done + ttl.as_chrono();
    if input.now < expires {
        return Decision {
            requeue: Some(expires),
            ..Decision::default()
        };
    }
    if !input.may_expire {
        // Its Schedule has not counted it yet: look again soon.
        return Decision {
            requeue: Some(input.now + TimeDelta::seconds(30)),
            ..Decision::default()
        };
    }
    Decision {
        acts: vec![Act::DeleteSelf],
        ..Decision::default()
    }
}

/// A run without a Pod: what admission says.
pub(super) fn unstarted(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let run = input.run;
    let now = input.now;
    if let Some(task) = input.task_missing {
        let status = JobRunStatus {
            phase: Some(JobRunPhase::Pending),
            reason: Some("TaskNotFound".into()),
            message: Some(format!(
                "spec.taskRef.name: Task {task:?} does not exist; the run starts when it does"
            )),
            ..old.clone()
        };
        return Decision {
            status: Some(status),
            ..Decision::default()
        };
    }
    let (policy, limit) = input.pool.unwrap_or((ConcurrencyPolicy::Allow, None));
    let limit = limit.map_or_else(|| "unlimited".to_string(), |l| l.to_string());
    match input.verdict.unwrap_or(&Verdict::Start) {
        Verdict::Start | Verdict::Keep => Decision {
            acts: vec![Act::Start(old.attempts.unwrap_or(0).max(0) + 1)],
            ..Decision::default()
        },
        Verdict::NotYet => Decision {
            requeue: Some(run.not_before()),
            ..Decision::default()
        },
        Verdict::Missed => {
            let deadline = run.spec.start_deadline.unwrap_or(now);
            let mut decision = finish(
                old,
                None,
                JobRunPhase::Missed,
                "MissedStartDeadline",
                format!(
                    "could not start by its start deadline {} (fire time {} + misfireGraceTime)",
                    deadline.to_rfc3339(),
                    run.fire_time().to_rfc3339()
                ),
                now,
            );
            decision.events = vec![Note::warning(
                "Missed",
                decision
                    .status
                    .as_ref()
                    .and_then(|s| s.message.clone())
                    .unwrap_or_default(),
            )];
            decision
        }
        Verdict::Wait => {
            let until = match run.spec.start_deadline {
                Some(deadline) => format!("until its start deadline {}", deadline.to_rfc3339()),
                None => "with no deadline".to_string(),
            };
            let status = JobRunStatus {
                phase: Some(JobRunPhase::Waiting),
                reason: Some("MaxRunningJobs".into()),
                message: Some(format!(
                    "maxRunningJobs {limit} reached; waiting for a slot {until}"
                )),
                ..old.clone()
            };
            Decision {
                status: Some(status),
                // A freed slot wakes us through the sibling's watch event; the deadline does not.
                requeue: run.spec.start_deadline.map(|d| d + TimeDelta::milliseconds(1)),
                ..Decision::default()
            }
        }
        Verdict::Skip => {
            let message = match policy {
                ConcurrencyPolicy::BufferOne => {
                    format!(
                        "maxRunningJobs {limit} reached and a newer run waits (concurrencyPolicy BufferOne)"
                    )
                }
                _ => format!(
                    "maxRunningJobs {limit} reached; concurrencyPolicy {} drops this run",
                    policy.as_str()
                ),
            };
            let mut decision = finish(
                old,
                None,
                JobRunPhase::Skipped,
                "ConcurrencyPolicySkip",
                message.clone(),
                now,
            );
            decision.events = vec![Note::normal("Skipped", message)];
            decision
        }
        Verdict::Supersede { by } | Verdict::Cancel { by } => {
            let message = format!(
                "replaced by {by} before it started (concurrencyPolicy {})",
                policy.as_str()
            );
            let mut decision = finish(
                old,
                None,
                JobRunPhase::Cancelled,
                "Replaced",
                message.clone(),
                now,
            );
            decision.events = vec![Note::normal("Cancelled", message)];
            decision
        }
    }
}

/// A run with a Pod: follow it, retry it, or give its slot to a newer run.
fn started(input: Input<'_>, old: &JobRunStatus, pod: &PodView) -> Decision {
    let run = input.run;
    let now = input.now;
    if let Some(Verdict::Cancel { by }) = input.verdict {
        let policy = input.pool.map_or(ConcurrencyPolicy::Replace, |(p, _)| p);
        let grace = (policy == ConcurrencyPolicy::Terminate).then_some(0);
        let message = format!("replaced by {by} (concurrencyPolicy {})", policy.as_str());
        let mut decision = finish(
            old,
            Some(pod),
            JobRunPhase::Cancelled,
            "Replaced",
            message.clone(),
            now,
        );
        if !pod.deleting && !pod.report.progress.is_finished() {
            decision.acts.insert(0, Act::DeletePod(pod.name.clone(), grace));
        }
        decision.events.push(Note::normal("Cancelled", message));
        return decision;
    }
    let report = &pod.report;
    let facts = JobRunStatus {
        pod_name: Some(pod.name.clone()),
        attempts: Some(pod.attempt),
        start_time: old.start_time.or(report.start_time),
        exit_code: report.exit_code.or(old.exit_code),
        result: report.result.clone().or(old.result.clone()),
        ..old.clone()
    };
    match report.progress {
        PodProgress::Pending => {
            // Nothing to say unless the Pod says why it waits (an image that cannot be
            // pulled, say); its creation alone is not worth a write.
            if report.reason.is_none() && old.reason.is_none() {
                return Decision::default();
            }
            let status = JobRunStatus {
                phase: Some(JobRunPhase::Pending),
                reason: report.reason.clone(),
                message: report.message.clone(),
                ..facts
            };
            Decision {
                status: Some(status),
                ..Decision::default()
            }
        }
        PodProgress::Running => {
            if old.phase == Some(JobRunPhase::Running) {
                return Decision::default();
            }
            let since = report.start_time.unwrap_or(now);
            let report_at = since + input.running_report_delay;
            if now < report_at {
                return Decision {
                    requeue: Some(report_at),
                    ..Decision::default()
                };
            }
            let status = JobRunStatus {
                phase: Some(JobRunPhase::Running),
                start_time: facts.start_time.or(Some(now)),
                reason: None,
                message: None,
                ..facts
            };
            Decision {
                status: Some(status),
                events: vec![Note::normal("Started", format!("pod {} is running", pod.name))],
                ..Decision::default()
            }
        }
        PodProgress::Succeeded => {
            let status = JobRunStatus {
                completion_time: report.completion_time.or(Some(now)),
                ..facts
            };
            let mut decision = finish(
                &status,
                Some(pod),
                JobRunPhase::Succeeded,
                "Completed",
                format!("pod {} exited 0", pod.name),
                now,
            );
            let done = decision.status.clone().unwrap_or_default();
            let took = done.duration.map(|d| format!(" in {d}")).unwrap_or_default();
            let result = done
                .result
                .map(|r| format!("; result: {}", r.trim()))
                .unwrap_or_default();
            decision.events = vec![Note::normal(
                "Succeeded",
                format!("pod {} exited 0{took}{result}", pod.name),
            )];
            decision
        }
        PodProgress::Failed => {
            let reason = report.reason.clone().unwrap_or_else(|| "Error".to_string());
            let mut why = match report.exit_code {
                Some(code) => format!("pod {} failed with exit code {code} ({reason})", pod.name),
                None => format!("pod {} failed ({reason})", pod.name),
            };
            if let Some(message) = &report.message {
                why.push_str(": ");
                why.push_str(message);
            }
            retry_or_fail(run, facts, pod, &reason, why, now)
        }
    }
}

/// After a failed attempt: the next attempt while backoffLimit allows, else Failed.
fn retry_or_fail(
    run: &JobRun,
    facts: JobRunStatus,
    pod: &PodView,
    reason: &str,
    why: String,
    now: DateTime<Utc>,
) -> Decision {
    if pod.attempt <= run.spec.run.backoff_limit.unwrap_or(0) {
        let next = pod.attempt + 1;
        let status = JobRunStatus {
            attempts: Some(next),
            reason: Some("Retrying".into()),
            message: Some(format!("attempt {} failed: {why}", pod.attempt)),
            ..facts
        };
        return Decision {
            status: Some(status),
            acts: vec![Act::Start(next)],
            events: vec![Note::warning(
                "Retrying",
                format!("attempt {} failed: {why}; starting attempt {next}", pod.attempt),
            )],
            ..Decision::default()
        };
    }
    let status = JobRunStatus {
        completion_time: pod.report.completion_time.or(Some(now)),
        ..facts
    };
    let mut decision = finish(&status, Some(pod), JobRunPhase::Failed, reason, why.clone(), now);
    decision.events = vec![Note::warning("Failed", why)];
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
    let status = JobRunStatus {
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
    };
    Decision {
        status: Some(status),
        ..Decision::default()
    }
}

pub(super) fn format_duration(delta: TimeDelta) -> String {
    crate::api::Duration::from(delta.to_std().unwrap_or_default()).to_string()
}
