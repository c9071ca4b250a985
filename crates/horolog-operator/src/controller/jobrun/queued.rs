//! A run without a Pod (or Job): what admission says of it becomes its next step: start,
//! wait, be skipped, replaced or missed.

use chrono::TimeDelta;
use horolog_core::admission::Verdict;

use super::decision::{Act, Decision, Input, finish, task_missing};
use crate::api::{ConcurrencyPolicy, JobRunPhase, JobRunStatus};
use crate::controller::events::Note;

/// Decides for a run that has not started. Pure.
pub fn decide(input: Input<'_>, old: &JobRunStatus) -> Decision {
    if let Some((reason, message)) = input.orphaned {
        // Its pools are gone with its Schedule: no limit holds it back any more, so starting
        // it would start every waiting run at once.
        return finish(
            old,
            None,
            JobRunPhase::Cancelled,
            reason,
            message.to_string(),
            input.now,
        )
        .with_event(Note::warning("Cancelled", message.to_string()));
    }
    if let Some(task) = input.task_missing {
        return Decision::write(task_missing(old, task));
    }
    match input.verdict.unwrap_or(&Verdict::Start) {
        Verdict::Start | Verdict::Keep => Decision {
            acts: vec![Act::Start(old.attempts.unwrap_or(0).max(0) + 1)],
            ..Decision::default()
        },
        Verdict::NotYet => Decision::wait_until(input.run.not_before()),
        Verdict::Missed => missed(&input, old),
        Verdict::Wait => waiting(&input, old),
        Verdict::Skip => skipped(&input, old),
        Verdict::QueueFull { max_waiting } => queue_full(&input, old, *max_waiting),
        Verdict::Supersede { by } | Verdict::Cancel { by } => {
            let message = format!(
                "replaced by {by} before it started (concurrencyPolicy {})",
                super::decision::policy(&input).as_str()
            );
            finish(
                old,
                None,
                JobRunPhase::Cancelled,
                "Replaced",
                message.clone(),
                input.now,
            )
            .with_event(Note::normal("Cancelled", message))
        }
    }
}

/// `maxRunningJobs` as messages say it.
fn limit(input: &Input<'_>) -> String {
    match input.pool.and_then(|(_, limit)| limit) {
        Some(limit) => limit.to_string(),
        None => "unlimited".to_string(),
    }
}

/// Its start deadline passed before it could start (APScheduler's missed_start_deadline).
fn missed(input: &Input<'_>, old: &JobRunStatus) -> Decision {
    let run = input.run;
    let deadline = run.spec.start_deadline.unwrap_or(input.now);
    let message = format!(
        "could not start by its start deadline {} (fire time {} + misfireGraceTime)",
        deadline.to_rfc3339(),
        run.fire_time().to_rfc3339()
    );
    finish(
        old,
        None,
        JobRunPhase::Missed,
        "MissedStartDeadline",
        message.clone(),
        input.now,
    )
    .with_event(Note::warning("Missed", message))
}

/// No slot: it waits until one frees (a sibling's watch event wakes it) or its deadline
/// passes.
fn waiting(input: &Input<'_>, old: &JobRunStatus) -> Decision {
    let deadline = input.run.spec.start_deadline;
    let until = match deadline {
        Some(deadline) => format!("until its start deadline {}", deadline.to_rfc3339()),
        None => "with no deadline".to_string(),
    };
    Decision {
        status: Some(JobRunStatus {
            phase: Some(JobRunPhase::Waiting),
            reason: Some("MaxRunningJobs".into()),
            message: Some(format!(
                "maxRunningJobs {} reached; waiting for a slot {until}",
                limit(input)
            )),
            ..old.clone()
        }),
        requeue: deadline.map(|d| d + TimeDelta::milliseconds(1)),
        ..Decision::default()
    }
}

/// No slot: Skip drops it; BufferOne drops it for a newer waiting run.
fn skipped(input: &Input<'_>, old: &JobRunStatus) -> Decision {
    let limit = limit(input);
    let message = match input.pool.map(|(policy, _)| policy) {
        Some(ConcurrencyPolicy::BufferOne) => {
            format!("maxRunningJobs {limit} reached and a newer run waits (concurrencyPolicy BufferOne)")
        }
        policy => format!(
            "maxRunningJobs {limit} reached; concurrencyPolicy {} drops this run",
            policy.unwrap_or(ConcurrencyPolicy::Skip).as_str()
        ),
    };
    finish(
        old,
        None,
        JobRunPhase::Skipped,
        "ConcurrencyPolicySkip",
        message.clone(),
        input.now,
    )
    .with_event(Note::normal("Skipped", message))
}

/// No slot, and `maxWaitingRuns` older runs already wait for one: it is dropped, so a hung
/// run cannot make the queue grow without bound.
fn queue_full(input: &Input<'_>, old: &JobRunStatus, max_waiting: usize) -> Decision {
    let message = format!(
        "maxRunningJobs {} reached and maxWaitingRuns ({max_waiting}) older runs already wait for a slot",
        limit(input)
    );
    finish(
        old,
        None,
        JobRunPhase::Skipped,
        "QueueFull",
        message.clone(),
        input.now,
    )
    .with_event(Note::warning("QueueFull", message))
}
