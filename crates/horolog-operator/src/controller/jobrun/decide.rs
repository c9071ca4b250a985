//! The JobRun reconciler's decision: pure, a function of the run, its Pods, what admission
//! says of it and the current time.
//!
//! Status is written once per transition a user can see: Waiting (held by a limit), Running
//! (once the Pod has run for [`Input::running_report_delay`], so a run of a few seconds goes
//! from Pending to its outcome in one write), a retry, and the final phase. Creating the Pod
//! writes nothing: its name is derived from the run's, and the Pod index finds it, so the
//! status names the Pod in the next write it needs anyway.

use chrono::TimeDelta;
use horolog_core::admission::Verdict;

use super::{follow, job, queued};
use crate::api::{Executor, JobRunPhase, JobRunStatus};

pub use super::decision::{Act, Decision, Input, finish};

/// Decides one reconcile. Pure.
pub fn decide(input: Input<'_>) -> Decision {
    let mut decision = decide_run(input);
    if releases_slot(&input, &decision) {
        // First: before a DeleteSelf ends the reconcile, and before any other act, as the
        // verdict's reservation is given back before anything else happens.
        decision.acts.insert(0, Act::ReleaseSlot);
    }
    decision
}

/// Whether the run gives back the slot admission may have reserved for it: a finished run
/// holds none, and a run admission let start (and reserved a slot for) that this decision
/// does not start leaves that slot to the next run. (Whether a run holds a slot by its Pod is
/// `admission::holds_slot`'s answer; this only ends the reservation.)
fn releases_slot(input: &Input<'_>, decision: &Decision) -> bool {
    let started = decision.acts.iter().any(|act| matches!(act, Act::Start(_)));
    input.run.is_finished() || (input.verdict == Some(&Verdict::Start) && !started)
}

/// The decision for the run, before the slot it may give back.
fn decide_run(input: Input<'_>) -> Decision {
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
        return job::decide(input, &old);
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
        _ if deleted => follow::gone(input, &old),
        Some(pod) => follow::started(input, &old, pod),
        None if old.pod_name.is_some() => follow::gone(input, &old),
        None => queued::decide(input, &old),
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

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
