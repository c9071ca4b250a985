//! The JobRun decision for the `Job` executor: the run follows its batch/v1 Job (the Job
//! controller retries and enforces deadlines); its exit code and result come from the Job's
//! latest Pod.

use horolog_core::admission::Verdict;

use super::decision::{Act, Decision, Input, finish, policy, report_running};
use super::queued;
use crate::api::{ConcurrencyPolicy, JobRunPhase, JobRunStatus};
use crate::controller::events::Note;
use crate::controller::index::{JobView, PodView};

/// Decides one reconcile of a run whose attempts are Jobs. Pure.
pub fn decide(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let latest_pod = input.pods.values().next_back();
    if let Some(value) = input.cancel_requested() {
        let message = format!("cancelled: annotation horolog.dev/cancel={value:?}");
        return end(
            &input,
            old,
            latest_pod,
            input.job,
            None,
            "CancelRequested",
            message,
        );
    }
    let Some(job) = input.job else {
        // Its tracking finalizer keeps a Job until its outcome is recorded: one that is gone
        // was seen deleted before it finished, or went with nobody watching (the finalizer
        // removed by hand, a Job made before it existed): its outcome is unknown.
        let (reason, message) = if input.job_deleted {
            ("JobDeleted", "its Job was deleted before it finished".to_string())
        } else if let Some(name) = &old.pod_name {
            (
                "Lost",
                format!("job {name} is gone and nothing recorded how it ended (outcome unknown)"),
            )
        } else {
            return queued::decide(input, old);
        };
        return finish(old, None, JobRunPhase::Failed, reason, message.clone(), input.now)
            .with_event(Note::warning("Failed", message));
    };
    if let Some(Verdict::Cancel { by }) = input.verdict {
        let policy = policy(&input);
        let grace = (policy == ConcurrencyPolicy::Terminate).then_some(0);
        let message = format!("replaced by {by} (concurrencyPolicy {})", policy.as_str());
        return end(
            &input,
            old,
            latest_pod,
            Some(job),
            grace,
            "Replaced",
            message.clone(),
        )
        .with_event(Note::normal("Cancelled", message));
    }
    let pod = latest_pod.map(|p| &p.report);
    let report = &job.report;
    let facts = JobRunStatus {
        pod_name: Some(job.name.clone()),
        attempts: Some(report.failed + 1),
        start_time: old
            .start_time
            .or(pod.and_then(|p| p.start_time))
            .or(report.start_time),
        exit_code: pod.and_then(|p| p.exit_code).or(old.exit_code),
        result: pod.and_then(|p| p.result.clone()).or(old.result.clone()),
        ..old.clone()
    };
    if report.outcome.is_some() {
        return outcome(&input, job, latest_pod, facts);
    }
    if job.deleting {
        // Deleted before it finished (a user, say); its finalizer holds it until this is
        // recorded.
        let message = format!("its Job {} was deleted before it finished", job.name);
        return finish(
            &facts,
            latest_pod,
            JobRunPhase::Failed,
            "JobDeleted",
            message.clone(),
            input.now,
        )
        .with_event(Note::warning("Failed", message));
    }
    if report.suspended {
        return Decision::write(JobRunStatus {
            phase: Some(JobRunPhase::Pending),
            reason: Some("Suspended".into()),
            message: Some(format!("job {} is suspended (queued, e.g. by Kueue)", job.name)),
            ..facts
        });
    }
    if report.active > 0 && old.phase != Some(JobRunPhase::Running) {
        return running(&input, job, facts);
    }
    Decision::default()
}

/// Ends the run Cancelled, deleting its Job (and its Pods, in the foreground) with `grace`.
fn end(
    input: &Input<'_>,
    old: &JobRunStatus,
    pod: Option<&PodView>,
    job: Option<&JobView>,
    grace: Option<i64>,
    reason: &str,
    message: String,
) -> Decision {
    let mut decision = finish(old, pod, JobRunPhase::Cancelled, reason, message, input.now);
    if let Some(job) = job.filter(|j| !j.deleting && j.report.outcome.is_none()) {
        decision.acts.insert(0, Act::DeleteJob(job.name.clone(), grace));
    }
    decision
}

/// The Job's Complete or Failed condition ends the run.
fn outcome(input: &Input<'_>, job: &JobView, pod: Option<&PodView>, facts: JobRunStatus) -> Decision {
    let report = &job.report;
    let Some((complete, reason, message)) = &report.outcome else {
        return Decision::default();
    };
    let status = JobRunStatus {
        completion_time: report.completion_time.or(Some(input.now)),
        attempts: Some(report.failed + i32::from(*complete)),
        ..facts
    };
    if *complete {
        let message = format!("job {} completed", job.name);
        finish(
            &status,
            pod,
            JobRunPhase::Succeeded,
            reason,
            message.clone(),
            input.now,
        )
        .with_event(Note::normal("Succeeded", message))
    } else {
        let message = format!("job {} failed ({reason}): {message}", job.name);
        finish(
            &status,
            pod,
            JobRunPhase::Failed,
            reason,
            message.clone(),
            input.now,
        )
        .with_event(Note::warning("Failed", message))
    }
}

/// Running, once the Job has had active pods for the report delay.
fn running(input: &Input<'_>, job: &JobView, facts: JobRunStatus) -> Decision {
    let started = facts.start_time;
    report_running(input, started, facts, format!("job {} is running", job.name))
}
