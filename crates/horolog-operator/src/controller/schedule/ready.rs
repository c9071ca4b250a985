//! Whether a Schedule fires: the gates that stop it (an invalid trigger, a missing Task, a
//! pause, too many failures, the end of its trigger), the conditions that say which (kstatus
//! style: `Ready` is False only where a person must act; `Paused`, `Finished` and `Stalled`
//! say the rest), and the Events of their transitions.

use chrono::{DateTime, Utc};

use super::pass::{Input, Pass, TaskLookup};
use crate::api::READY;
use crate::api::{Condition, RESUME_ANNOTATION, ScheduleStatus, find_condition, set_condition};
use crate::controller::events::Note;

/// Why the Schedule does not fire, if it does not.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// The Ready condition's reason.
    pub reason: &'static str,
    /// Its message.
    pub message: String,
    /// True when the transition deserves a Warning Event.
    pub warning: bool,
}

/// The condition type that says whether the Schedule is paused (spec.paused, or
/// pauseAfterFailures).
pub const PAUSED: &str = "Paused";
/// The condition type that says whether the trigger has no more fire times (or maxRuns
/// were fired).
pub const FINISHED: &str = "Finished";
/// The kstatus condition type that is True exactly while Ready is False: the operator cannot
/// make progress until a person acts. kstatus-based tools (Flux, kpt, cli-utils) read it.
pub const STALLED: &str = "Stalled";

impl Gate {
    /// True when a person must act: everything but a pause the spec asks for and the end of
    /// the trigger, which are the operator doing what the spec says.
    pub fn needs_person(&self) -> bool {
        !matches!(self.reason, "Paused" | "Finished")
    }
}

/// The reasons of the gates a Schedule is resumed from.
const RESUMED_FROM: [&str; 4] = ["Paused", "TooManyFailures", "TaskNotFound", "CalendarNotFound"];

/// True when the Schedule was stopped by a gate it can be resumed from.
pub fn was_stopped(old: &ScheduleStatus) -> bool {
    find_condition(&old.conditions, READY).is_some_and(|c| RESUMED_FROM.contains(&c.reason.as_str()))
}

/// A new `horolog.dev/resume` value, or a spec change, lifts a pause after failures.
pub fn lift_failures(pass: &mut Pass<'_>) {
    let schedule = pass.input.schedule;
    let resume = schedule
        .annotation(RESUME_ANNOTATION)
        .filter(|value| pass.old.last_resume.as_deref() != Some(*value));
    let spec_changed = pass.old.observed_generation.is_some()
        && pass.old.observed_generation != schedule.metadata.generation;
    if resume.is_none() && !spec_changed {
        return;
    }
    if let Some(value) = resume {
        pass.status.last_resume = Some(value.to_string());
    }
    if pass.status.consecutive_failures > 0 {
        let why = match resume {
            Some(value) => format!("{RESUME_ANNOTATION}={value:?}"),
            None => "the spec changed".to_string(),
        };
        if schedule.spec.pause_after_failures.is_some() {
            pass.events.push(Note::normal(
                "Resumed",
                format!(
                    "{why}: consecutive failures reset from {}",
                    pass.status.consecutive_failures
                ),
            ));
        }
        pass.status.consecutive_failures = 0;
    }
}

/// Why the Schedule must not fire now, if it must not (the trigger's own end is found by
/// planning, see [`finished`]).
pub fn gate(input: &Input<'_>, status: &ScheduleStatus) -> Option<Gate> {
    let spec = &input.schedule.spec;
    if let Err(fault) = input.trigger {
        return Some(Gate {
            reason: fault.kind.reason(),
            message: fault.to_string(),
            warning: true,
        });
    }
    if let TaskLookup::Missing(task) = input.task {
        return Some(Gate {
            reason: "TaskNotFound",
            message: format!(
                "spec.taskRef.name: Task {task:?} does not exist in this namespace; firing starts when it does"
            ),
            warning: true,
        });
    }
    if spec.paused {
        return Some(Gate {
            reason: "Paused",
            message: "paused: nothing fires until spec.paused is false".into(),
            warning: false,
        });
    }
    let limit = spec.pause_after_failures?;
    (status.consecutive_failures >= i64::from(limit)).then(|| Gate {
        reason: "TooManyFailures",
        message: format!(
            "{} consecutive runs failed (pauseAfterFailures {limit}): nothing fires until a run succeeds, annotation {RESUME_ANNOTATION} gets a new value, or the spec changes",
            status.consecutive_failures
        ),
        warning: true,
    })
}

/// The gate of a Schedule whose trigger has no more fire times, or that fired maxRuns times.
pub fn finished(status: &ScheduleStatus, max_runs: Option<i64>, trigger: &str) -> Gate {
    let message = if max_runs.is_some_and(|max| status.fired_count >= max) {
        format!("fired maxRuns ({}) times", status.fired_count)
    } else {
        format!("the trigger has no more fire times ({trigger})")
    };
    Gate {
        reason: "Finished",
        message,
        warning: false,
    }
}

/// Sets the Ready, Stalled, Paused and Finished conditions and the Events of their
/// transitions. Ready keeps the gate's reason (`Paused`, `Finished`, ...) whatever its status,
/// so `kubectl get` shows why a Schedule does not fire.
pub fn ready(pass: &mut Pass<'_>, gate: Option<&Gate>, generation: Option<i64>, now: DateTime<Utc>) {
    let previous = find_condition(&pass.old.conditions, READY);
    let previous_reason = previous.map(|c| c.reason.as_str());
    let (ok, reason, message) = match gate {
        Some(gate) => (!gate.needs_person(), gate.reason, gate.message.clone()),
        None => (
            true,
            "Scheduled",
            format!("fires {}", pass.status.trigger.clone().unwrap_or_default()),
        ),
    };
    if previous_reason != Some(reason) {
        pass.events.extend(transition(gate, previous_reason));
    }
    let (stalled_reason, stalled_message) = if ok {
        (
            "Progressing",
            "the operator is doing what the spec says".to_string(),
        )
    } else {
        (reason, message.clone())
    };
    let (paused, paused_reason, paused_message) = paused(pass);
    let (finished, finished_message) = match gate.filter(|g| g.reason == "Finished") {
        Some(gate) => (true, gate.message.clone()),
        None => (false, "the trigger has more fire times".to_string()),
    };
    let finished_reason = if finished { "Finished" } else { "NotFinished" };
    let status = &mut pass.status.conditions;
    for (type_, on, reason, message) in [
        (READY, ok, reason, message),
        (STALLED, !ok, stalled_reason, stalled_message),
        (PAUSED, paused, paused_reason, paused_message),
        (FINISHED, finished, finished_reason, finished_message),
    ] {
        let previous = find_condition(&pass.old.conditions, type_);
        let condition = Condition::transition(previous, type_, on, reason, message, generation, now);
        set_condition(status, condition);
    }
}

/// The Paused condition: True with reason `Paused` for spec.paused, `TooManyFailures` for
/// pauseAfterFailures, whatever else stops the Schedule.
fn paused(pass: &Pass<'_>) -> (bool, &'static str, String) {
    let spec = &pass.input.schedule.spec;
    if spec.paused {
        return (true, "Paused", "spec.paused is true".into());
    }
    match spec.pause_after_failures {
        Some(limit) if pass.status.consecutive_failures >= i64::from(limit) => (
            true,
            "TooManyFailures",
            format!(
                "{} consecutive runs failed (pauseAfterFailures {limit})",
                pass.status.consecutive_failures
            ),
        ),
        _ => (false, "NotPaused", "spec.paused is false".into()),
    }
}

/// The Event of a change of the Ready reason, if it deserves one.
fn transition(gate: Option<&Gate>, previous_reason: Option<&str>) -> Option<Note> {
    match gate {
        Some(gate) if gate.reason == "Paused" => Some(Note::normal(
            "Paused",
            "paused: nothing fires until resumed".into(),
        )),
        Some(gate) if gate.warning => {
            let event = match gate.reason {
                "InvalidTimezone" => "InvalidTrigger",
                other => other,
            };
            Some(Note::warning(event, gate.message.clone()))
        }
        Some(gate) => Some(Note::normal(gate.reason, gate.message.clone())),
        None if previous_reason.is_some_and(|r| RESUMED_FROM.contains(&r)) => Some(Note::normal(
            "Resumed",
            "resumed: fire times that passed meanwhile go through catchUp, coalesce and misfireGraceTime"
                .into(),
        )),
        None => None,
    }
}

/// Ready=False with reason `CreateRefused`: the API server refused the JobRun this Schedule
/// must create (a ResourceQuota, an admission webhook, a name or label rule). The next pass
/// whose creates go through sets Ready back by [`ready`].
pub fn refused(status: &mut ScheduleStatus, message: String, generation: Option<i64>, now: DateTime<Utc>) {
    let previous = find_condition(&status.conditions, READY);
    let condition = Condition::transition(
        previous,
        READY,
        false,
        crate::controller::jobrun::CREATE_REFUSED,
        message,
        generation,
        now,
    );
    set_condition(&mut status.conditions, condition);
}
