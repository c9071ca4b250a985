//! The JobRun decision for the `Job` executor: the run follows its batch/v1 Job (the Job
//! controller retries and enforces deadlines); its exit code and result come from the Job's
//! latest Pod.

use horolog_core::admission::Verdict;

use super::decide::{Act, Decision, Input, finish, unstarted};
use crate::api::{ConcurrencyPolicy, JobRunPhase, JobRunStatus};
use crate::controller::events::Note;

/// Decides one reconcile of a run whose attempts are Jobs. Pure.
pub fn decide(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let now = input.now;
    let latest_pod = input.pods.values().next_back();
    if let Some(value) = input.run.cancel_requested() {
        let mut decision = finish(
            old,
            latest_pod,
            JobRunPhase::Cancelled,
            "CancelRequested",
            format!("cancelled: annotation horolog.dev/cancel={value:?}"),
            now,
        );
        if let Some(job) = input.job.filter(|j| !j.deleting && j.report.outcome.is_none()) {
            decision.acts.insert(0, Act::DeleteJob(job.name.clone(), None));
        }
        return decision;
    }
    let Some(job) = input.job else {
        if input.job_deleted || old.pod_name.is_some() {
            let mut decision = finish(
                old,
                None,
                JobRunPhase::Failed,
                "JobDeleted",
                "its Job was deleted before it finished".to_string(),
                now,
            );
            decision.events = vec![Note::warning(
                "Failed",
                "its Job was deleted before it finished".into(),
            )];
            return decision;
        }
        return unstarted(input, old);
    };
    if let Some(Verdict::Cancel { by }) = input.verdict {
        let policy = input.pool.map_or(ConcurrencyPolicy::Replace, |(p, _)| p);
        let grace = (policy == ConcurrencyPolicy::Terminate).then_some(0);
        let message = format!("replaced by {by} (concurrencyPolicy {})", policy.as_str());
        let mut decision = finish(
            old,
            latest_pod,
            JobRunPhase::Cancelled,
            "Replaced",
            message.clone(),
            now,
        );
        if !job.deleting && job.report.outcome.is_none() {
            decision.acts.insert(0, Act::DeleteJob(job.name.clone(), grace));
        }
        decision.events.push(Note::normal("Cancelled", message));
        return decision;
    }
    let report = &job.report;
    let pod = latest_pod.map(|p| &p.report);
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
    if let Some((complete, reason, message)) = &report.outcome {
        let status = JobRunStatus {
            completion_time: report.completion_time.or(Some(now)),
            attempts: Some(report.failed + i32::from(*complete)),
            ..facts
        };
        let (phase, message) = if *complete {
            (JobRunPhase::Succeeded, format!("job {} completed", job.name))
        } else {
            (
                JobRunPhase::Failed,
                format!("job {} failed ({reason}): {message}", job.name),
            )
        };
        let mut decision = finish(&status, latest_pod, phase, reason, message.clone(), now);
        decision.events = vec![if *complete {
            Note::normal("Succeeded", message)
        } else {
            Note::warning("Failed", message)
        }];
        return decision;
    }
    if report.suspended {
        let status = JobRunStatus {
            phase: Some(JobRunPhase::Pending),
            reason: Some("Suspended".into()),
            message: Some(format!("job {} is suspended (queued, e.g. by Kueue)", job.name)),
            ..facts
        };
        return Decision {
            status: Some(status),
            ..Decision::default()
        };
    }
    if report.active > 0 && old.phase != Some(JobRunPhase::Running) {
        let since = facts.start_time.unwrap_or(now);
        if now < since + input.running_report_delay {
            return Decision {
                requeue: Some(since + input.running_report_delay),
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
        return Decision {
            status: Some(status),
            events: vec![Note::normal("Started", format!("job {} is running", job.name))],
            ..Decision::default()
        };
    }
    Decision::default()
}
