//! A run with a Pod: its status follows the Pod; a failed attempt is retried while
//! backoffLimit allows; a newer run may replace it.

use chrono::{DateTime, Utc};
use horolog_core::admission::Verdict;
use kube::ResourceExt;

use super::decision::{Act, Decision, Input, finish, policy, report_running};
use crate::api::{ConcurrencyPolicy, JobRun, JobRunPhase, JobRunStatus};
use crate::controller::events::Note;
use crate::controller::index::PodView;
use crate::pod::{PodProgress, PodReport, pod_name};

/// Decides for a run whose latest attempt has `pod`. Pure.
pub fn started(input: Input<'_>, old: &JobRunStatus, pod: &PodView) -> Decision {
    if let Some(Verdict::Cancel { by }) = input.verdict {
        return replaced(&input, old, pod, by);
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
    if pod.deleting && !report.progress.is_finished() {
        // Deleted before it finished. Its tracking finalizer keeps it (with the status the
        // kubelet writes when its containers stop) until this outcome is recorded; past its
        // grace period with no outcome, the attempt failed (as batch/v1 Job counts it).
        if let Some(due) = pod.deleted_at.filter(|due| *due > input.now) {
            return Decision::wait_until(due);
        }
        let why = format!("pod {} was deleted before it finished", pod.name);
        return retry_or_fail(input.run, facts, pod, "PodDeleted", why, input.now);
    }
    match report.progress {
        PodProgress::Pending => pending(old, report, facts),
        PodProgress::Running => running(&input, old, pod, facts),
        PodProgress::Succeeded => succeeded(&input, pod, facts),
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
            retry_or_fail(input.run, facts, pod, &reason, why, input.now)
        }
    }
}

/// A newer run takes its slot (Replace, Terminate): its Pod goes (Terminate: at once) and it
/// ends Cancelled.
fn replaced(input: &Input<'_>, old: &JobRunStatus, pod: &PodView, by: &str) -> Decision {
    let policy = policy(input);
    let grace = (policy == ConcurrencyPolicy::Terminate).then_some(0);
    let message = format!("replaced by {by} (concurrencyPolicy {})", policy.as_str());
    let mut decision = finish(
        old,
        Some(pod),
        JobRunPhase::Cancelled,
        "Replaced",
        message.clone(),
        input.now,
    )
    .with_event(Note::normal("Cancelled", message));
    if !pod.deleting && !pod.report.progress.is_finished() {
        decision.acts.insert(0, Act::DeletePod(pod.name.clone(), grace));
    }
    decision
}

/// Nothing to say unless the Pod says why it waits (an image that cannot be pulled, say): its
/// creation alone is not worth a write.
fn pending(old: &JobRunStatus, report: &PodReport, facts: JobRunStatus) -> Decision {
    if report.reason.is_none() && old.reason.is_none() {
        return Decision::default();
    }
    Decision::write(JobRunStatus {
        phase: Some(JobRunPhase::Pending),
        reason: report.reason.clone(),
        message: report.message.clone(),
        ..facts
    })
}

/// Running, once the Pod has run for the report delay: a shorter run goes from Pending to its
/// outcome in one write.
fn running(input: &Input<'_>, old: &JobRunStatus, pod: &PodView, facts: JobRunStatus) -> Decision {
    if old.phase == Some(JobRunPhase::Running) {
        return Decision::default();
    }
    let started = pod.report.start_time;
    report_running(input, started, facts, format!("pod {} is running", pod.name))
}

fn succeeded(input: &Input<'_>, pod: &PodView, facts: JobRunStatus) -> Decision {
    let status = JobRunStatus {
        completion_time: pod.report.completion_time.or(Some(input.now)),
        ..facts
    };
    let decision = finish(
        &status,
        Some(pod),
        JobRunPhase::Succeeded,
        "Completed",
        format!("pod {} exited 0", pod.name),
        input.now,
    );
    let done = decision.status.clone().unwrap_or_default();
    let took = done.duration.map(|d| format!(" in {d}")).unwrap_or_default();
    let result = done
        .result
        .map(|r| format!("; result: {}", r.trim()))
        .unwrap_or_default();
    decision.with_event(Note::normal(
        "Succeeded",
        format!("pod {} exited 0{took}{result}", pod.name),
    ))
}

/// The run's Pod is gone before its outcome was recorded: the next attempt, or Failed. When
/// the watch saw it deleted, the reason is PodDeleted; when nothing saw it go (its status
/// names a Pod that no longer exists, as when its tracking finalizer was removed by hand while
/// no operator ran), its outcome is unknowable and the reason is Lost. Either way the attempt
/// is over: it never gets a second Pod.
pub fn gone(input: Input<'_>, old: &JobRunStatus) -> Decision {
    let attempt = input.deleted_attempt.max(old.attempts).unwrap_or(1);
    let name = pod_name(&input.run.name_any(), attempt);
    if input.deleted_attempt.is_none() {
        let pod = PodView {
            name: name.clone(),
            uid: String::new(),
            attempt,
            report: PodReport::default(),
            deleting: true,
            deleted_at: None,
            tracking: None,
        };
        let why = format!(
            "attempt {attempt}: pod {name} is gone and nothing recorded how it ended (outcome unknown)"
        );
        return retry_or_fail(input.run, old.clone(), &pod, "Lost", why, input.now);
    }
    let pod = PodView {
        name: name.clone(),
        uid: String::new(),
        attempt,
        report: PodReport::default(),
        deleting: true,
        deleted_at: None,
        tracking: None,
    };
    let why = format!("pod {name} was deleted before it finished");
    retry_or_fail(input.run, old.clone(), &pod, "PodDeleted", why, input.now)
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
            ..Decision::default()
        }
        .with_event(Note::warning(
            "Retrying",
            format!("attempt {} failed: {why}; starting attempt {next}", pod.attempt),
        ));
    }
    let status = JobRunStatus {
        completion_time: pod.report.completion_time.or(Some(now)),
        ..facts
    };
    finish(&status, Some(pod), JobRunPhase::Failed, reason, why.clone(), now)
        .with_event(Note::warning("Failed", why))
}
