//! Staged runs: the JobRun of a Schedule's next fire time is created a little before it is
//! due (`stageAhead`), so that at the fire time the pass that covers it only creates its Pod.
//!
//! A staged run is not yet an outcome: its fire time is beyond the cursor, it is neither
//! listed in `status.active` nor counted, and the JobRun reconciler leaves it alone
//! (`still_being_planned`). The pass whose plan reaches its fire time finds it as it finds a
//! run created by a pass whose status write never happened (`fire::create_runs`): that fire
//! time's one outcome, counted once in that pass's status write, and started by that pass
//! before the write. A staged run whose fire time is no longer the Schedule's next one (a
//! pause, a trigger or Calendar edit, maxRuns, the trigger's end) is deleted before its fire
//! time, with an Event that says why: nothing counted it, so nothing is counted twice.

use chrono::{DateTime, TimeDelta, Utc};
use horolog_core::plan;
use horolog_core::trigger::Trigger;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::pass::{Pass, PlanOutcome, Unstaged};
use super::ready::Gate;
use crate::api::{JobRun, RUN_NOW_ANNOTATION};
use crate::names::{jobrun_for, run_name};

/// What staging decided in one pass.
#[derive(Clone, Debug, Default)]
pub struct Staging {
    /// The run to stage now, for the next fire time.
    pub create: Option<JobRun>,
    /// Staged runs to delete: (name, reason, message).
    pub unstage: Vec<Unstaged>,
    /// When to look again to stage the next fire time's run.
    pub wake: Option<DateTime<Utc>>,
}

/// The Schedule's `stageAhead`, else the operator's; zero or less: off.
pub fn stage_ahead(pass: &Pass<'_>) -> TimeDelta {
    pass.input
        .schedule
        .spec
        .stage_ahead
        .map(|d| d.as_chrono())
        .unwrap_or(pass.input.settings.stage_ahead)
}

/// When a run for `fire_time` is staged: in the first half of the window before it, at an
/// offset a stable hash of the Schedule's uid picks, so a thousand Schedules of one minute do
/// not create a thousand JobRuns in one second, and none is staged in the last half of its
/// window (each is created comfortably before its fire time).
pub fn stage_at(seed: &str, fire_time: DateTime<Utc>, ahead: TimeDelta) -> DateTime<Utc> {
    let spread = (ahead.num_milliseconds() / 2).max(0) as u64;
    let offset = if spread == 0 {
        0
    } else {
        let digest = Sha256::digest(format!("stage/{seed}").as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(bytes) % spread
    };
    fire_time - ahead + TimeDelta::milliseconds(offset as i64)
}

/// The runs staged ahead of their fire time: this Schedule's trigger-named runs not yet due,
/// beyond the cursor, not started.
pub fn staged<'a>(pass: &'a Pass<'_>) -> impl Iterator<Item = &'a JobRun> + 'a {
    let schedule = pass.input.schedule.name_any();
    let now = pass.input.now;
    let cursor = pass.status.cursor;
    pass.input.runs.iter().map(|run| run.as_ref()).filter(move |run| {
        let fire_time = run.fire_time();
        !run.is_backfill()
            && !run.annotations().contains_key(RUN_NOW_ANNOTATION)
            && !run.is_finished()
            && fire_time > now
            && cursor.is_none_or(|cursor| fire_time > cursor)
            && run.name_any() == run_name(&schedule, fire_time)
            && run
                .status
                .as_ref()
                .is_none_or(|s| s.pod_name.is_none() && s.attempts.is_none())
    })
}

/// Decides staging after planning: keeps the staged run of the next fire time, stages it when
/// its time has come, deletes any other staged run with the reason its fire time will not
/// fire. `gate` stops firing (a pause, the end of the trigger...); `trigger` is `None` when it
/// does not compile.
pub fn stage(
    pass: &Pass<'_>,
    trigger: Option<&Trigger>,
    gate: Option<&Gate>,
    planned: &PlanOutcome,
) -> Staging {
    let next = match (trigger, gate) {
        (Some(_), None) => pass.status.next_fire_time.filter(|_| !planned.exhausted),
        _ => None,
    };
    let mut staging = Staging::default();
    let mut kept = false;
    for run in staged(pass) {
        if Some(run.fire_time()) == next {
            kept = true;
            continue;
        }
        let (reason, message) = why(pass, gate, run);
        staging.unstage.push(Unstaged {
            name: run.name_any(),
            reason,
            message,
        });
    }
    let ahead = stage_ahead(pass);
    let (Some(trigger), Some(fire_time)) = (trigger, next) else {
        return staging;
    };
    let schedule = pass.input.schedule;
    let name = run_name(&schedule.name_any(), fire_time);
    // A run of that name that is not staged (finished: a user cancelled it) is that fire
    // time's run already.
    let exists = pass.input.runs.iter().any(|run| run.name_any() == name);
    if kept || exists || ahead <= TimeDelta::zero() || fire_time <= pass.input.now {
        return staging;
    }
    let seed = schedule.uid().unwrap_or_else(|| schedule.name_any());
    let at = stage_at(&seed, fire_time, ahead);
    if at > pass.input.now {
        staging.wake = Some(at);
        return staging;
    }
    // Planned as the pass at its fire time plans it: the same jitter and start deadline.
    let policy = super::fire::policy(pass, schedule.spec.coalesce, super::fire::grace(pass));
    let window = plan::plan(trigger, pass.status.cursor, fire_time, &policy, |fire, cap| {
        plan::seeded_jitter(&seed, fire, cap)
    });
    if let Some(run) = window.runs.iter().find(|run| run.fire_time == fire_time) {
        staging.create = Some(jobrun_for(
            schedule,
            pass.input.task.found(),
            name,
            fire_time,
            run.jitter,
            run.start_deadline,
        ));
    }
    staging
}

/// A staged run whose fire time has come and that the pass at it keeps no run for: its
/// fire time is counted as the plan says, and the run goes.
pub fn not_kept(run: &JobRun, now: DateTime<Utc>) -> Unstaged {
    let at = run.fire_time().to_rfc3339();
    let (reason, message) = if run.spec.start_deadline.is_some_and(|deadline| deadline < now) {
        (
            "Missed",
            format!("fire time {at} passed its misfireGraceTime before the operator saw it; counted missed"),
        )
    } else {
        (
            "NotKept",
            format!(
                "the pass at fire time {at} keeps no run for it (coalesced, excluded, paused or edited); counted as that pass says"
            ),
        )
    };
    Unstaged {
        name: run.name_any(),
        reason,
        message,
    }
}

/// True when `run` was created ahead of its fire time (its creation second ends before it):
/// staged, not created by a pass at or after its fire time.
pub fn created_ahead(run: &JobRun) -> bool {
    run.metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second() + 1, 0))
        .is_some_and(|created| created <= run.fire_time())
}

/// Why the staged `run` will not fire.
fn why(pass: &Pass<'_>, gate: Option<&Gate>, run: &JobRun) -> (&'static str, String) {
    let at = run.fire_time().to_rfc3339();
    if let Some(gate) = gate {
        return match gate.reason {
            "Paused" => ("Paused", format!("the Schedule is paused before fire time {at}")),
            "Finished"
                if pass
                    .input
                    .schedule
                    .spec
                    .max_runs
                    .is_some_and(|max| pass.status.fired_count >= max) =>
            {
                (
                    "MaxRunsReached",
                    format!("maxRuns is reached before fire time {at}"),
                )
            }
            "Finished" => (
                "TriggerEnded",
                format!("the trigger has no more fire times (fire time {at} is not one)"),
            ),
            reason => (reason, format!("{} (before fire time {at})", gate.message)),
        };
    }
    if pass.input.trigger.is_err() {
        return (
            "InvalidTrigger",
            format!("the trigger does not compile (before fire time {at})"),
        );
    }
    let created = run
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0));
    if pass
        .input
        .calendars_changed_at
        .is_some_and(|changed| created.is_none_or(|created| changed >= created))
    {
        return (
            "CalendarEdited",
            format!("a Calendar edit excludes or moves fire time {at}"),
        );
    }
    // The trigger hash covers the Calendars too: asked after them.
    if pass.old.trigger_hash != pass.status.trigger_hash {
        return (
            "TriggerEdited",
            format!("the trigger was edited: {at} is not its next fire time"),
        );
    }
    (
        "NotAFireTime",
        format!("{at} is no longer the Schedule's next fire time"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_spread_over_the_first_half_of_the_window() {
        let fire = DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .to_utc();
        let ahead = TimeDelta::seconds(30);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1_000 {
            let at = stage_at(&format!("uid-{i}"), fire, ahead);
            assert!(at >= fire - ahead && at < fire - ahead / 2, "{at}");
            seen.insert((at - (fire - ahead)).num_seconds());
        }
        assert_eq!(seen.len(), 15, "every second of the first half is used: {seen:?}");
        assert_eq!(stage_at("a", fire, ahead), stage_at("a", fire, ahead), "stable");
    }
}
