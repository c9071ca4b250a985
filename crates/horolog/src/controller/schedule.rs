//! The Schedule reconciler: plan the due fire times, create their JobRuns, keep the history
//! short, and write what happened to status and Events.
//!
//! [`reconcile`] is the thin edge (read the caches, call [`decide`], write, requeue);
//! [`decide`] is pure and holds every decision.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::{info, instrument};

use super::jobrun::{fire_time_of, phase_of};
use super::{CompiledTrigger, Context, Error, TriggerFault, is_already_exists, is_not_found};
use crate::api::{
    ActiveRun, Condition, JobRun, JobRunPhase, JobRunSpec, RUN_NOW_ANNOTATION, SCHEDULE_LABEL, Schedule,
    ScheduleStatus, find_condition,
};
use crate::pod::{MAX_NAME_LEN, short_name};
use horolog_core::plan::{self, CatchUp, Plan, Policy};

/// The condition type of a Schedule.
pub const READY: &str = "Ready";
/// How many fire times `status.upcomingFireTimes` lists.
pub const UPCOMING: usize = 5;

/// An Event to publish on the Schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// The Event reason: Fired, Missed, Coalesced, Paused, Resumed, InvalidTrigger, Finished.
    pub reason: &'static str,
    /// The Event message.
    pub message: String,
}

impl Note {
    fn normal(reason: &'static str, message: String) -> Self {
        Note {
            warning: false,
            reason,
            message,
        }
    }

    fn warning(reason: &'static str, message: String) -> Self {
        Note {
            warning: true,
            reason,
            message,
        }
    }
}

/// When to look at the Schedule again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Right away: a bounded catch-up has more fire times to examine.
    Now,
    /// At the next fire time.
    At(DateTime<Utc>),
    /// Only when something changes (paused, exhausted, invalid trigger).
    OnChange,
}

/// Everything one reconcile of a Schedule decided.
#[derive(Clone, Debug)]
pub struct Decision {
    /// JobRuns to create (`AlreadyExists` means an earlier reconcile did).
    pub create: Vec<JobRun>,
    /// Finished JobRuns beyond the history limits, to delete.
    pub delete: Vec<String>,
    /// The new status.
    pub status: ScheduleStatus,
    /// Events to publish.
    pub events: Vec<Note>,
    /// When to reconcile again.
    pub requeue: Requeue,
}

/// The name of the JobRun for `fire_time`: `<schedule>-<unix seconds>`, shortened with a
/// hash when too long. The same fire time can never produce two JobRuns.
/// A fire time off the whole second (an interval of `1500ms`, a `date` with a fraction) gets
/// its milliseconds appended, so two fire times within one second never share a name.
pub fn run_name(schedule: &str, fire_time: DateTime<Utc>) -> String {
    let millis = fire_time.timestamp_subsec_millis();
    let name = if millis == 0 {
        format!("{schedule}-{}", fire_time.timestamp())
    } else {
        format!("{schedule}-{}-{millis:03}", fire_time.timestamp())
    };
    short_name(&name, MAX_NAME_LEN)
}

/// The name of the JobRun a `horolog.dev/run-now` value asks for (one per value).
pub fn run_now_name(schedule: &str, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    short_name(&format!("{schedule}-now-{hash}"), MAX_NAME_LEN)
}

/// A jitter in `0..=cap`, whole milliseconds, the same for the same Schedule and fire time
/// every time it is computed (so a repeated reconcile repeats the same decision).
pub fn seeded_jitter(seed: &str, fire_time: DateTime<Utc>, cap: TimeDelta) -> TimeDelta {
    let cap_ms = cap.num_milliseconds().max(0) as u64;
    if cap_ms == 0 {
        return TimeDelta::zero();
    }
    let digest = Sha256::digest(format!("{seed}/{}", fire_time.timestamp_micros()).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    TimeDelta::milliseconds((u64::from_le_bytes(bytes) % (cap_ms + 1)) as i64)
}

/// The planner's policy from a Schedule's spec.
pub fn policy_of(schedule: &Schedule, catch_up: CatchUp) -> Policy {
    let spec = &schedule.spec;
    Policy {
        coalesce: spec.coalesce,
        misfire_grace_time: spec.misfire_grace_time.map(|d| d.as_chrono()),
        max_jitter: spec.max_jitter.map(|d| d.as_chrono()),
        paused: spec.paused,
        catch_up,
    }
}

/// Decides one reconcile of `schedule`, given its compiled trigger (or why it does not
/// compile), its JobRuns and the current time. Pure.
pub fn decide(
    schedule: &Schedule,
    trigger: Result<&dyn CompiledTrigger, &TriggerFault>,
    runs: &[Arc<JobRun>],
    now: DateTime<Utc>,
    catch_up: CatchUp,
) -> Decision {
    let old = schedule.status.clone().unwrap_or_default();
    let generation = schedule.metadata.generation;
    let previous_ready = find_condition(&old.conditions, READY);
    let mut status = ScheduleStatus {
        observed_generation: generation,
        ..old.clone()
    };
    let mut events = Vec::new();
    let mut create = Vec::new();

    // A manual run does not depend on the trigger: it works even while paused or invalid.
    if let Some(value) = schedule.annotations().get(RUN_NOW_ANNOTATION)
        && old.last_run_now.as_ref() != Some(value)
    {
        let name = run_now_name(&schedule.name_any(), value);
        info!(run = %name, value = %value, "run-now: firing once");
        events.push(Note::normal(
            "Fired",
            format!("{RUN_NOW_ANNOTATION}={value:?}: created JobRun {name}"),
        ));
        create.push(jobrun_for(schedule, name, now, TimeDelta::zero(), None));
        status.last_run_now = Some(value.clone());
    }

    let trigger = match trigger {
        Ok(trigger) => trigger,
        Err(fault) => {
            let ready = Condition::transition(
                previous_ready,
                READY,
                false,
                &fault.reason,
                fault.message.clone(),
                generation,
                now,
            );
            if previous_ready != Some(&ready) {
                events.push(Note::warning("InvalidTrigger", fault.message.clone()));
            }
            status.conditions = vec![ready];
            status.trigger = None;
            status.next_fire_time = None;
            status.upcoming_fire_times = Vec::new();
            observe_runs(&mut status, runs, &create);
            return Decision {
                create,
                delete: history_to_delete(schedule, runs),
                status,
                events,
                requeue: Requeue::OnChange,
            };
        }
    };

    let policy = policy_of(schedule, catch_up);
    let seed = schedule.uid().unwrap_or_else(|| schedule.name_any());
    let plan = plan::plan(&trigger, old.last_fire_time, now, &policy, |fire, cap| {
        seeded_jitter(&seed, fire, cap)
    });
    events.extend(notes_for(&plan, policy.coalesce));
    for run in &plan.runs {
        info!(fire_time = %run.fire_time, jitter = %run.jitter, "fired");
        let name = run_name(&schedule.name_any(), run.fire_time);
        create.push(jobrun_for(
            schedule,
            name,
            run.fire_time,
            run.jitter,
            run.start_deadline,
        ));
    }
    for fire_time in &plan.missed {
        info!(fire_time = %fire_time, "missed: past misfireGraceTime when planned");
    }
    if plan.coalesced > 0 {
        info!(coalesced = plan.coalesced, policy = ?policy.coalesce, "coalesced due fire times");
    }

    status.last_fire_time = plan.cursor;
    status.coalesced_fire_times += plan.coalesced as i64;
    status.missed_fire_times += plan.missed.len() as i64 + plan.dropped as i64;
    status.trigger = Some(trigger.describe());
    if policy.paused {
        status.next_fire_time = None;
        status.upcoming_fire_times = Vec::new();
    } else {
        status.next_fire_time = plan.next_fire_time;
        status.upcoming_fire_times = plan::upcoming(&trigger, plan.cursor, UPCOMING);
    }
    observe_runs(&mut status, runs, &create);

    let (reason, message) = if policy.paused {
        (
            "Paused",
            "paused: nothing fires until spec.paused is false".to_string(),
        )
    } else if plan.next_fire_time.is_none() {
        (
            "Finished",
            format!("the trigger has no more fire times ({})", trigger.describe()),
        )
    } else {
        ("Scheduled", format!("fires {}", trigger.describe()))
    };
    let previous_reason = previous_ready.map(|c| c.reason.as_str());
    match (previous_reason, reason) {
        (Some("Paused"), "Paused") => {}
        (_, "Paused") => events.push(Note::normal(
            "Paused",
            "paused: nothing fires until resumed".into(),
        )),
        (Some("Paused"), _) => events.push(Note::normal(
            "Resumed",
            "resumed: fire times that passed meanwhile are coalesced, then checked against misfireGraceTime"
                .into(),
        )),
        _ => {}
    }
    if reason == "Finished" && previous_reason != Some("Finished") {
        events.push(Note::normal("Finished", message.clone()));
    }
    status.conditions = vec![Condition::transition(
        previous_ready,
        READY,
        true,
        reason,
        message,
        generation,
        now,
    )];

    let requeue = match (plan.more_due, policy.paused, plan.next_fire_time) {
        (true, _, _) => Requeue::Now,
        (false, true, _) | (false, false, None) => Requeue::OnChange,
        (false, false, Some(next)) => Requeue::At(next),
    };
    Decision {
        create,
        delete: history_to_delete(schedule, runs),
        status,
        events,
        requeue,
    }
}

/// The Events a plan deserves.
fn notes_for(plan: &Plan, coalesce: crate::api::CoalescePolicy) -> Vec<Note> {
    let mut notes = Vec::new();
    match plan.runs.as_slice() {
        [] => {}
        [run] => notes.push(Note::normal(
            "Fired",
            format!("fire time {}", run.fire_time.to_rfc3339()),
        )),
        [first, .., last] => notes.push(Note::normal(
            "Fired",
            format!(
                "{} fire times from {} to {}",
                plan.runs.len(),
                first.fire_time.to_rfc3339(),
                last.fire_time.to_rfc3339()
            ),
        )),
    }
    if plan.coalesced > 0 {
        let kept = plan
            .runs
            .first()
            .map(|r| r.fire_time)
            .or(plan.missed.first().copied());
        let kept = kept.map(|t| t.to_rfc3339()).unwrap_or_default();
        notes.push(Note::normal(
            "Coalesced",
            format!(
                "{} due fire times merged into one (coalesce {coalesce:?}): kept {kept}",
                plan.coalesced + 1
            ),
        ));
    }
    if !plan.missed.is_empty() {
        let times: Vec<String> = plan.missed.iter().take(5).map(|t| t.to_rfc3339()).collect();
        let more = plan.missed.len().saturating_sub(times.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(Note::warning(
            "Missed",
            format!(
                "fire time(s) {}{more} missed: past misfireGraceTime when the operator saw them",
                times.join(", ")
            ),
        ));
    }
    if plan.dropped > 0 {
        notes.push(Note::warning(
            "Missed",
            format!(
                "catch-up cap: {} due fire times dropped (at most {} runs per pass; the newest were kept)",
                plan.dropped,
                plan.runs.len() + plan.missed.len()
            ),
        ));
    }
    notes
}

/// Fills the parts of status that describe the runs: those in the cache, and those this pass
/// creates (active from the start). Counting the new runs now means the reconcile that their
/// watch event triggers finds the status already right, instead of writing it a second time.
/// A run being created that the cache already holds is taken as the cache shows it.
fn observe_runs(status: &mut ScheduleStatus, runs: &[Arc<JobRun>], creating: &[JobRun]) {
    let known: HashSet<String> = runs.iter().map(|run| run.name_any()).collect();
    let new_runs = creating.iter().filter(|run| !known.contains(&run.name_any()));
    let mut active: Vec<(DateTime<Utc>, String)> = runs
        .iter()
        .map(Arc::as_ref)
        .filter(|run| !phase_of(run).is_finished())
        .chain(new_runs)
        .map(|run| (fire_time_of(run), run.name_any()))
        .collect();
    active.sort();
    status.active = active.into_iter().map(|(_, name)| ActiveRun { name }).collect();
    status.active_count = status.active.len() as i32;
    let last_success = runs
        .iter()
        .filter(|run| phase_of(run) == JobRunPhase::Succeeded)
        .map(|run| fire_time_of(run))
        .max();
    status.last_successful_time = status.last_successful_time.max(last_success);
}

/// Finished runs beyond `successfulRunsHistoryLimit` / `failedRunsHistoryLimit`, oldest first.
fn history_to_delete(schedule: &Schedule, runs: &[Arc<JobRun>]) -> Vec<String> {
    let mut succeeded = Vec::new();
    let mut unsuccessful = Vec::new();
    for run in runs {
        match phase_of(run) {
            JobRunPhase::Succeeded => succeeded.push(run),
            phase if phase.is_finished() => unsuccessful.push(run),
            _ => {}
        }
    }
    let mut delete = Vec::new();
    for (mut finished, keep) in [
        (succeeded, schedule.spec.successful_history()),
        (unsuccessful, schedule.spec.failed_history()),
    ] {
        // Newest first by fire time; the name breaks ties so the order is stable.
        finished.sort_by_key(|run| std::cmp::Reverse((fire_time_of(run), run.name_any())));
        delete.extend(finished.iter().skip(keep).map(|run| run.name_any()));
    }
    delete
}

/// The JobRun a Schedule creates for one fire time.
fn jobrun_for(
    schedule: &Schedule,
    name: String,
    fire_time: DateTime<Utc>,
    jitter: TimeDelta,
    start_deadline: Option<DateTime<Utc>>,
) -> JobRun {
    let template = &schedule.spec.job_template;
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels;
    labels.insert(
        SCHEDULE_LABEL.to_string(),
        short_name(&schedule.name_any(), MAX_NAME_LEN),
    );
    let jitter = jitter
        .to_std()
        .ok()
        .filter(|j| !j.is_zero())
        .map(crate::api::Duration::from);
    JobRun {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: schedule.namespace(),
            labels: Some(labels),
            annotations: (!template_meta.annotations.is_empty()).then_some(template_meta.annotations),
            owner_references: schedule.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: JobRunSpec {
            schedule_name: Some(schedule.name_any()),
            fire_time: Some(fire_time),
            jitter,
            start_deadline,
            run: template.spec.clone(),
        },
        status: None,
    }
}

/// Reconciles one Schedule: read the caches, [`decide`], create and delete JobRuns, write
/// status (only when it changed), publish Events, requeue at the next fire time.
#[instrument(skip(schedule, ctx), fields(schedule = %schedule.name_any(), namespace = %schedule.namespace().unwrap_or_default()))]
pub async fn reconcile(schedule: Arc<Schedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&schedule, &ctx).await;
    if let Some(observer) = &ctx.config.observer {
        observer.reconciled("schedule", started.elapsed(), result.is_ok());
    }
    if result.is_ok() {
        ctx.succeeded(&format!(
            "Schedule/{}/{}",
            schedule.namespace().unwrap_or_default(),
            schedule.name_any()
        ));
    }
    result
}

async fn reconcile_inner(schedule: &Schedule, ctx: &Context) -> Result<Action, Error> {
    if schedule.meta().deletion_timestamp.is_some() {
        // Garbage collection removes the runs with their owner.
        return Ok(Action::await_change());
    }
    if ctx.behind_own_write(schedule) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    let namespace = schedule.namespace().unwrap_or_default();
    let name = schedule.name_any();
    let now = ctx.now();
    let created = schedule
        .meta()
        .creation_timestamp
        .as_ref()
        .and_then(crate::pod::chrono_time)
        .unwrap_or(now);
    let compiled = (ctx.config.triggers)(&schedule.spec.trigger, created);
    let runs = ctx.runs_of(schedule);
    let decision = decide(schedule, compiled.as_deref(), &runs, now, ctx.config.catch_up);

    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut fired = 0;
    for run in &decision.create {
        let run_name = run.name_any();
        match api
            .create(
                &PostParams {
                    field_manager: Some(super::MANAGER.into()),
                    ..PostParams::default()
                },
                run,
            )
            .await
        {
            Ok(_) => fired += 1,
            // The name is derived from the fire time: it exists, so this fire time was handled.
            Err(err) if is_already_exists(&err) => {}
            Err(err) => return Err(Error::api("create", "JobRun", &namespace, &run_name, err)),
        }
    }
    if fired > 0
        && let Some(observer) = &ctx.config.observer
    {
        observer.fired(&namespace, &name, fired);
    }
    for run_name in &decision.delete {
        info!(run = %run_name, "deleting JobRun beyond the history limit");
        match api.delete(run_name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(Error::api("delete", "JobRun", &namespace, run_name, err)),
        }
    }
    let old = schedule.status.clone().unwrap_or_default();
    if ctx.patch_status(schedule, &old, &decision.status).await?
        && let Some(observer) = &ctx.config.observer
    {
        let missed = decision.status.missed_fire_times - old.missed_fire_times;
        let coalesced = decision.status.coalesced_fire_times - old.coalesced_fire_times;
        observer.planned(missed.max(0) as usize, coalesced.max(0) as usize);
    }
    for note in decision.events {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.event(schedule, type_, note.reason, note.message).await;
    }

    Ok(match decision.requeue {
        Requeue::Now => Action::requeue(std::time::Duration::ZERO),
        Requeue::At(at) => Action::requeue((at - ctx.now()).to_std().unwrap_or_default()),
        Requeue::OnChange => Action::await_change(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_run_is_named_after_its_fire_time_in_unix_seconds() {
        assert_eq!(
            run_name("nightly-report", at("2026-01-01T08:00:00Z")),
            "nightly-report-1767254400"
        );
    }

    #[test]
    fn fire_times_within_one_second_get_distinct_names() {
        let whole = run_name("s", at("2026-01-01T08:00:01Z"));
        let half = run_name("s", at("2026-01-01T08:00:01.500Z"));
        assert_eq!(half, "s-1767254401-500");
        assert_ne!(whole, half);
    }

    #[test]
    fn long_schedule_names_are_shortened_to_a_valid_name() {
        let name = run_name(&"x".repeat(300), at("2026-01-01T08:00:00Z"));
        assert!(name.len() <= 253, "{}", name.len());
        assert_ne!(name, run_name(&"x".repeat(299), at("2026-01-01T08:00:00Z")));
    }
}
