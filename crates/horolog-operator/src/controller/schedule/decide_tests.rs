//! Unit tests of the Schedule decision: planning, gates, settling, write urgency, history and
//! the end of a Schedule, each through `decide` with plain values and explicit times.

use super::*;
use crate::api::Task;
use crate::api::{
    BACKFILL_LABEL, CatchUpPolicy, CoalescePolicy, Duration as ApiDuration, JobRunPhase, JobRunStatus,
    JobTemplate, RESUME_ANNOTATION, SCHEDULE_LABEL, ScheduleSpec, TaskRef, TaskSpec, TriggerSpec,
};
use crate::controller::schedule::ready::{FINISHED, PAUSED, STALLED};
use crate::controller::schedule::{run_name, trigger_hash};
use crate::controller::test_support::{at, hourly_schedule};
use horolog_core::plan::CatchUp;
use horolog_core::trigger::Trigger;

/// When the Schedule was created: its interval trigger's first fire time.
fn created() -> DateTime<Utc> {
    at("2026-01-01T00:00:00Z")
}

/// The Schedule's fire time `n` hours after its creation.
fn hour(n: i64) -> DateTime<Utc> {
    created() + TimeDelta::hours(n)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// The name of the run for the fire time `n` hours after creation.
fn run_at(n: i64) -> String {
    run_name("nightly", hour(n))
}

fn names(runs: &[JobRun]) -> Vec<String> {
    runs.iter().map(|r| r.name_any()).collect()
}

fn active(status: &ScheduleStatus) -> Vec<&str> {
    status.active.iter().map(|a| a.name.as_str()).collect()
}

/// The (warning, reason) of each Event a decision publishes.
fn events(decision: &Decision) -> Vec<(bool, &'static str)> {
    decision.events.iter().map(|e| (e.warning, e.reason)).collect()
}

/// The (status, reason) of a condition of the decided status.
fn condition<'a>(decision: &'a Decision, type_: &str) -> Option<(&'a str, &'a str)> {
    find_condition(&decision.status.conditions, type_).map(|c| (c.status.as_str(), c.reason.as_str()))
}

fn ready(decision: &Decision) -> Option<(&str, &str)> {
    condition(decision, READY)
}

/// A finished run of `nightly` for the fire time `n` hours after creation.
fn finished_run(n: i64, phase: JobRunPhase, done: DateTime<Utc>) -> Arc<JobRun> {
    let mut run = JobRun::new(
        &run_at(n),
        crate::api::JobRunSpec {
            schedule_name: Some("nightly".into()),
            fire_time: Some(hour(n)),
            ..crate::api::JobRunSpec::default()
        },
    );
    run.metadata.namespace = Some("default".into());
    run.status = Some(JobRunStatus {
        phase: Some(phase),
        completion_time: Some(done),
        message: Some(format!("it ended {}", phase.as_str())),
        ..JobRunStatus::default()
    });
    Arc::new(run)
}

/// What one reconcile of the Schedule reads; each test changes what matters to it.
struct World {
    schedule: Schedule,
    runs: Vec<Arc<JobRun>>,
    gone: HashSet<String>,
    task: Option<Task>,
    interrupted: bool,
    settings: Settings,
}

impl World {
    /// `nightly`: every hour from its creation, with a jobTemplate, never reconciled.
    fn new() -> World {
        let mut schedule = hourly_schedule(created());
        schedule.spec.job_template = Some(JobTemplate::default());
        World {
            schedule,
            runs: Vec::new(),
            gone: HashSet::new(),
            task: None,
            interrupted: false,
            settings: Settings {
                catch_up: CatchUp::default(),
                default_grace: None,
                status_delay: TimeDelta::zero(),
                stage_ahead: TimeDelta::zero(),
            },
        }
    }

    fn decide(&self, now: DateTime<Utc>) -> Decision {
        let trigger = Trigger::compile(&self.schedule.spec.trigger, created());
        let task = match (self.schedule.task_name(), &self.task) {
            (None, _) => TaskLookup::NotUsed,
            (Some(_), Some(task)) => TaskLookup::Found(task),
            (Some(name), None) => TaskLookup::Missing(name),
        };
        decide(Input {
            schedule: &self.schedule,
            trigger: trigger.as_ref(),
            runs: &self.runs,
            gone: &self.gone,
            task,
            now,
            interrupted: self.interrupted,
            settings: &self.settings,
            calendars_changed_at: None,
        })
    }

    /// Carries out `decision` as `apply` does when every call succeeds: the runs exist, a
    /// status due now is written, history goes.
    fn apply(&mut self, decision: &Decision) {
        self.runs.extend(decision.create.iter().cloned().map(Arc::new));
        if decision.write == Write::Now {
            self.schedule.status = Some(decision.status.clone());
        }
        self.runs.retain(|run| !decision.delete.contains(&run.name_any()));
    }

    /// Decides at `now` and applies the decision.
    fn pass(&mut self, now: DateTime<Utc>) -> Decision {
        let decision = self.decide(now);
        self.apply(&decision);
        decision
    }

    /// Ends the run `name` in `phase` at `done`, as the JobRun reconciler would.
    fn end(&mut self, name: &str, phase: JobRunPhase, done: DateTime<Utc>) {
        let run = self
            .runs
            .iter_mut()
            .find(|run| run.name_any() == name)
            .expect("the run exists");
        let mut ended = (**run).clone();
        ended.status = Some(JobRunStatus {
            phase: Some(phase),
            completion_time: Some(done),
            message: Some(format!("it ended {}", phase.as_str())),
            ..JobRunStatus::default()
        });
        *run = Arc::new(ended);
    }

    /// A spec edit: the API server bumps the generation.
    fn edit(&mut self, edit: impl FnOnce(&mut ScheduleSpec)) {
        edit(&mut self.schedule.spec);
        self.schedule.metadata.generation = self.schedule.metadata.generation.map(|g| g + 1);
    }

    fn annotate(&mut self, name: &str, value: &str) {
        self.schedule
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(name.into(), value.into());
    }

    fn status(&self) -> ScheduleStatus {
        self.schedule.status.clone().unwrap_or_default()
    }
}

// Firing.

#[test]
fn a_new_schedule_fires_its_first_fire_time_and_lists_the_run_as_active() {
    let world = World::new();
    let decision = world.decide(created() + secs(1));
    assert_eq!(names(&decision.create), [run_at(0)]);
    let run = &decision.create[0];
    assert_eq!(run.spec.fire_time, Some(created()));
    assert_eq!(run.spec.schedule_name.as_deref(), Some("nightly"));
    assert_eq!(run.spec.start_deadline, None, "no misfireGraceTime, no deadline");
    assert_eq!(
        run.labels().get(SCHEDULE_LABEL).map(String::as_str),
        Some("nightly")
    );
    let status = &decision.status;
    assert_eq!(status.cursor, Some(created()));
    assert_eq!(status.last_fire_time, Some(created()));
    assert_eq!(status.fired_count, 1);
    assert_eq!(active(status), [run_at(0)]);
    assert_eq!(status.active_count, 1);
    assert_eq!(status.next_fire_time, Some(hour(1)));
    assert_eq!(status.upcoming_fire_times, (1..=5).map(hour).collect::<Vec<_>>());
    assert_eq!(status.trigger.as_deref(), Some("every 1h"));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(ready(&decision), Some(("True", "Scheduled")));
    assert_eq!(decision.write, Write::Now);
    assert!(
        decision.events.is_empty(),
        "Fired is published by apply, not decided"
    );
    assert_eq!(decision.requeue, Some(hour(1)));
    assert_eq!((decision.missed, decision.coalesced), (0, 0));
}

#[test]
fn a_second_pass_with_nothing_due_changes_nothing_and_writes_nothing() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    let again = world.decide(created() + secs(2));
    assert!(again.create.is_empty());
    assert_eq!(again.write, Write::Nothing);
    assert_eq!(again.status, world.status());
    assert!(again.events.is_empty());
    assert_eq!(again.requeue, Some(hour(1)));
}

#[test]
fn the_next_due_fire_time_fires_the_next_run_beside_the_active_one() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    let decision = world.decide(hour(1));
    assert_eq!(names(&decision.create), [run_at(1)]);
    assert_eq!(active(&decision.status), [run_at(0), run_at(1)]);
    assert_eq!(decision.status.fired_count, 2);
    assert_eq!(decision.requeue, Some(hour(2)));
}

#[test]
fn fire_times_due_after_downtime_are_coalesced_as_the_policy_says() {
    for (coalesce, fired, coalesced) in [
        (CoalescePolicy::Latest, vec![5], 4),
        (CoalescePolicy::Earliest, vec![1], 4),
        (CoalescePolicy::All, vec![1, 2, 3, 4, 5], 0),
    ] {
        let mut world = World::new();
        world.schedule.spec.coalesce = coalesce;
        world.pass(created() + secs(1));
        let decision = world.decide(hour(5) + TimeDelta::minutes(30));
        let expected: Vec<String> = fired.iter().map(|n| run_at(*n)).collect();
        assert_eq!(names(&decision.create), expected, "{coalesce:?}");
        assert_eq!(decision.coalesced, coalesced, "{coalesce:?}");
        assert_eq!(decision.status.coalesced_fire_times, coalesced);
        assert_eq!(
            decision.status.cursor,
            Some(hour(5)),
            "every due fire time is handled"
        );
        assert_eq!(decision.status.fired_count, 1 + fired.len() as i64);
        if coalesced > 0 {
            assert_eq!(events(&decision), [(false, "Coalesced")], "{coalesce:?}");
            assert!(
                decision.events[0]
                    .message
                    .starts_with("5 due fire times merged into one"),
                "{}",
                decision.events[0].message
            );
        } else {
            assert!(decision.events.is_empty(), "{coalesce:?}");
        }
    }
}

#[test]
fn a_fire_time_past_its_misfire_grace_time_is_counted_missed_instead_of_created() {
    let mut world = World::new();
    world.schedule.spec.misfire_grace_time = Some(ApiDuration::from_secs(600));
    world.pass(created() + secs(1));
    let decision = world.decide(hour(1) + TimeDelta::minutes(11));
    assert!(decision.create.is_empty());
    assert_eq!(decision.missed, 1);
    assert_eq!(decision.status.missed_fire_times, 1);
    assert_eq!(decision.status.last_fire_time, Some(hour(1)));
    assert_eq!(decision.status.cursor, Some(hour(1)));
    assert_eq!(decision.status.fired_count, 1);
    assert_eq!(events(&decision), [(true, "Missed")]);
    assert_eq!(decision.write, Write::Now);
}

#[test]
fn the_misfire_grace_time_is_the_schedules_else_its_tasks_else_the_operators_default() {
    let grace = |world: &World| {
        let decision = world.decide(created() + secs(1));
        decision.create[0].spec.start_deadline
    };
    let mut world = World::new();
    world.settings.default_grace = Some(TimeDelta::minutes(1));
    assert_eq!(grace(&world), Some(created() + TimeDelta::minutes(1)));

    world.schedule.spec.job_template = None;
    world.schedule.spec.task_ref = Some(TaskRef {
        name: "send-report".into(),
    });
    world.task = Some(Task::new(
        "send-report",
        TaskSpec {
            job_template: JobTemplate::default(),
            max_running_jobs: None,
            concurrency_policy: None,
            max_waiting_runs: None,
            misfire_grace_time: Some(ApiDuration::from_secs(120)),
            calendar_refs: Vec::new(),
        },
    ));
    assert_eq!(grace(&world), Some(created() + TimeDelta::minutes(2)));

    world.schedule.spec.misfire_grace_time = Some(ApiDuration::from_secs(180));
    assert_eq!(grace(&world), Some(created() + TimeDelta::minutes(3)));
}

#[test]
fn jitter_delays_a_run_within_the_cap_and_moves_its_deadline_the_same_way() {
    let mut world = World::new();
    world.schedule.spec.max_jitter = Some(ApiDuration::from_secs(600));
    world.schedule.spec.misfire_grace_time = Some(ApiDuration::from_secs(60));
    let decision = world.decide(created() + secs(1));
    let run = &decision.create[0];
    let jitter = run.spec.jitter.map(|j| j.as_chrono()).unwrap_or_default();
    assert!(jitter <= TimeDelta::minutes(10), "{jitter}");
    assert_eq!(run.spec.start_deadline, Some(created() + jitter + secs(60)));
    let again = world.decide(created() + secs(1));
    assert_eq!(
        again.create[0].spec.jitter, run.spec.jitter,
        "seeded: a repeat repeats it"
    );
}

#[test]
fn runs_created_by_a_pass_whose_status_write_was_lost_are_listed_and_counted_once() {
    let mut world = World::new();
    world.schedule.spec.coalesce = CoalescePolicy::All;
    let lost = world.decide(hour(2) + secs(1));
    assert_eq!(names(&lost.create), [run_at(0), run_at(1), run_at(2)]);
    // The runs exist; the status write never happened.
    world.runs = lost.create.iter().cloned().map(Arc::new).collect();
    world.end(&run_at(0), JobRunPhase::Succeeded, hour(0) + secs(30));
    let decision = world.decide(hour(2) + secs(5));
    assert!(decision.create.is_empty());
    assert_eq!(active(&decision.status), [run_at(0), run_at(1), run_at(2)]);
    assert_eq!(decision.status.fired_count, 3);
    assert_eq!(decision.status.cursor, Some(hour(2)));
    assert_eq!(
        (
            decision.status.coalesced_fire_times,
            decision.status.missed_fire_times
        ),
        (0, 0)
    );
}

#[test]
fn an_edited_trigger_fires_from_the_moment_of_the_edit() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    let edited = hour(3) + TimeDelta::minutes(10);
    world.edit(|spec| spec.trigger.interval = Some(ApiDuration::from_secs(1800)));
    let decision = world.decide(edited);
    assert_eq!(
        names(&decision.create),
        [run_at(3)],
        "the old (hourly) trigger's 01:00, 02:00 and 03:00, which no pass planned before the \
         edit (its time unknown here: no managedFields, so now), go by its rule: coalesce \
         Latest runs 03:00"
    );
    assert_eq!(decision.status.cursor, Some(edited));
    assert_eq!(
        decision.status.next_fire_time,
        Some(hour(3) + TimeDelta::minutes(30))
    );
    assert_eq!(
        (
            decision.status.missed_fire_times,
            decision.status.coalesced_fire_times
        ),
        (0, 2),
    );
    assert_eq!(
        decision.status.trigger_hash,
        Some(trigger_hash(&world.schedule.spec.trigger))
    );
    assert_eq!(
        decision.status.planned_trigger,
        serde_json::to_value(&world.schedule.spec.trigger).ok(),
        "the new trigger's copy, for the next edit"
    );
    assert!(decision.status.replaced_triggers.is_empty());
    assert_eq!(
        events(&decision),
        [(false, "TriggerChanged"), (false, "Coalesced")]
    );
}

#[test]
fn an_edit_seen_while_paused_is_kept_with_its_time_and_planned_on_resume() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    world.edit(|spec| spec.paused = true);
    world.pass(hour(0) + TimeDelta::minutes(5));
    let edited = hour(2) + TimeDelta::minutes(10);
    world.edit(|spec| spec.trigger.interval = Some(ApiDuration::from_secs(1800)));
    let paused = world.pass(edited);
    assert!(paused.create.is_empty());
    let replaced = &paused.status.replaced_triggers;
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(replaced[0].until, edited);
    assert_eq!(
        paused.status.cursor,
        Some(hour(0)),
        "nothing planned while paused"
    );
    world.edit(|spec| spec.paused = false);
    let resumed = world.decide(hour(4) + TimeDelta::minutes(45));
    let half_past_four = run_name(&world.schedule.name_any(), hour(4) + TimeDelta::minutes(30));
    assert_eq!(
        names(&resumed.create),
        [run_at(2), half_past_four],
        "the old trigger's 01:00 and 02:00 up to the edit (Latest: 02:00), then the new one's \
         02:30 to 04:30 (Latest: 04:30)"
    );
    assert_eq!(resumed.status.coalesced_fire_times, 1 + 4);
    assert!(resumed.status.replaced_triggers.is_empty());
}

#[test]
fn a_status_without_a_copy_of_the_old_trigger_records_its_known_fire_times_as_missed() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    if let Some(status) = world.schedule.status.as_mut() {
        status.planned_trigger = None;
    }
    let edited = hour(3) + TimeDelta::minutes(10);
    world.edit(|spec| spec.trigger.interval = Some(ApiDuration::from_secs(1800)));
    let decision = world.decide(edited);
    assert!(decision.create.is_empty());
    assert_eq!(decision.status.cursor, Some(edited));
    assert_eq!(
        (
            decision.status.missed_fire_times,
            decision.status.coalesced_fire_times
        ),
        (3, 0),
        "01:00, 02:00 and 03:00, from upcomingFireTimes"
    );
    assert_eq!(events(&decision), [(true, "Missed"), (false, "TriggerChanged")]);
}

#[test]
fn catch_up_disabled_records_the_fire_times_of_an_interruption_as_missed() {
    let mut world = World::new();
    world.schedule.spec.catch_up = CatchUpPolicy::Disabled;
    world.pass(created() + secs(1));
    let now = hour(5) + TimeDelta::minutes(30);

    let caught_up = world.decide(now);
    assert_eq!(
        names(&caught_up.create),
        [run_at(5)],
        "without an interruption it catches up"
    );

    world.interrupted = true;
    let decision = world.decide(now);
    assert!(decision.create.is_empty());
    assert_eq!(decision.missed, 5);
    assert_eq!(decision.status.missed_fire_times, 5);
    assert_eq!(decision.status.cursor, Some(hour(5)));
    assert_eq!(decision.status.last_fire_time, Some(hour(5)));
    assert_eq!(decision.status.coalesced_fire_times, 0);
    assert_eq!(events(&decision), [(true, "Missed")]);
    assert!(
        decision.events[0]
            .message
            .starts_with("catchUp Disabled: 5 fire time(s)"),
        "{}",
        decision.events[0].message
    );
    assert_eq!(decision.requeue, Some(hour(6)));
}

// Gates and the Ready condition.

#[test]
fn an_invalid_trigger_fires_nothing_and_says_why_in_ready_and_a_warning() {
    let mut world = World::new();
    world.schedule.spec.trigger = TriggerSpec {
        cron: Some("not a cron".into()),
        ..TriggerSpec::default()
    };
    let decision = world.decide(created() + secs(1));
    assert!(decision.create.is_empty());
    assert_eq!(ready(&decision), Some(("False", "InvalidTrigger")));
    assert_eq!(events(&decision), [(true, "InvalidTrigger")]);
    assert_eq!(decision.status.trigger, None);
    assert_eq!(decision.status.next_fire_time, None);
    assert_eq!(decision.status.cursor, None);
    assert_eq!(decision.requeue, None, "a watch event brings the fix");
    assert_eq!(decision.write, Write::Now);
}

#[test]
fn an_invalid_timezone_is_its_own_ready_reason_but_an_invalid_trigger_event() {
    let mut world = World::new();
    world.schedule.spec.trigger.timezone = Some("Mars/Olympus_Mons".into());
    let decision = world.decide(created() + secs(1));
    assert_eq!(ready(&decision), Some(("False", "InvalidTimezone")));
    assert_eq!(events(&decision), [(true, "InvalidTrigger")]);
}

#[test]
fn a_missing_task_holds_firing_until_the_task_exists() {
    let mut world = World::new();
    world.schedule.spec.job_template = None;
    world.schedule.spec.task_ref = Some(TaskRef {
        name: "send-report".into(),
    });
    let missing = world.pass(hour(1) + secs(1));
    assert!(missing.create.is_empty());
    assert_eq!(ready(&missing), Some(("False", "TaskNotFound")));
    assert_eq!(events(&missing), [(true, "TaskNotFound")]);
    assert_eq!(missing.status.cursor, None, "nothing was planned");
    assert_eq!(missing.status.next_fire_time, None);
    assert_eq!(missing.requeue, None);

    world.task = Some(Task::new(
        "send-report",
        TaskSpec {
            job_template: JobTemplate::default(),
            max_running_jobs: None,
            concurrency_policy: None,
            max_waiting_runs: None,
            misfire_grace_time: None,
            calendar_refs: Vec::new(),
        },
    ));
    let found = world.decide(hour(1) + secs(2));
    assert_eq!(names(&found.create), [run_at(1)]);
    assert_eq!(
        found.create[0].spec.task_ref.as_ref().map(|t| t.name.as_str()),
        Some("send-report")
    );
    assert_eq!(ready(&found), Some(("True", "Scheduled")));
    assert_eq!(events(&found), [(false, "Coalesced"), (false, "Resumed")]);
}

#[test]
fn pausing_says_so_once_and_resuming_catches_up_what_passed() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    world.edit(|spec| spec.paused = true);
    let paused = world.pass(hour(2) + secs(1));
    assert!(paused.create.is_empty());
    // Paused is what the spec asks for: Ready stays True (kubectl wait, Argo CD), Paused says it.
    assert_eq!(ready(&paused), Some(("True", "Paused")));
    assert_eq!(condition(&paused, PAUSED), Some(("True", "Paused")));
    assert_eq!(condition(&paused, STALLED), Some(("False", "Progressing")));
    assert_eq!(condition(&paused, FINISHED), Some(("False", "NotFinished")));
    assert_eq!(events(&paused), [(false, "Paused")]);
    assert_eq!(paused.status.cursor, Some(created()), "the cursor waits");
    assert_eq!(paused.status.next_fire_time, None);
    assert!(paused.status.upcoming_fire_times.is_empty());
    assert_eq!(paused.requeue, None);

    let still = world.decide(hour(3) + secs(1));
    assert_eq!(still.write, Write::Nothing);
    assert!(still.events.is_empty(), "the Event is said once");

    world.edit(|spec| spec.paused = false);
    let resumed = world.decide(hour(4) + secs(1));
    assert_eq!(names(&resumed.create), [run_at(4)]);
    assert_eq!(resumed.status.coalesced_fire_times, 3);
    assert_eq!(ready(&resumed), Some(("True", "Scheduled")));
    assert_eq!(events(&resumed), [(false, "Coalesced"), (false, "Resumed")]);
}

/// A Schedule with pauseAfterFailures 2 whose run at creation failed after one failure before.
fn failing() -> World {
    let mut world = World::new();
    world.schedule.spec.pause_after_failures = Some(2);
    world.pass(created() + secs(1));
    let mut status = world.status();
    status.consecutive_failures = 1;
    world.schedule.status = Some(status);
    world.end(&run_at(0), JobRunPhase::Failed, created() + secs(30));
    world
}

#[test]
fn too_many_failures_in_a_row_stop_firing_with_warnings() {
    let mut world = failing();
    let decision = world.pass(hour(1) + secs(1));
    assert!(decision.create.is_empty(), "the due fire time waits");
    assert_eq!(decision.status.consecutive_failures, 2);
    assert!(decision.status.active.is_empty());
    assert_eq!(ready(&decision), Some(("False", "TooManyFailures")));
    assert_eq!(condition(&decision, PAUSED), Some(("True", "TooManyFailures")));
    assert_eq!(condition(&decision, STALLED), Some(("True", "TooManyFailures")));
    assert_eq!(
        condition(&decision, settle::LAST_RUN_SUCCEEDED),
        Some(("False", "Failed"))
    );
    assert_eq!(
        events(&decision),
        [(true, "TooManyFailures"), (true, "RunFailed")]
    );
    assert_eq!(decision.status.cursor, Some(created()));
    assert_eq!(decision.write, Write::Now);
}

#[test]
fn a_new_resume_value_resets_the_failures_and_fires_again() {
    let mut world = failing();
    world.pass(hour(1) + secs(1));
    world.annotate(RESUME_ANNOTATION, "1");
    let decision = world.pass(hour(2) + secs(1));
    assert_eq!(decision.status.consecutive_failures, 0);
    assert_eq!(decision.status.last_resume.as_deref(), Some("1"));
    assert_eq!(names(&decision.create), [run_at(2)]);
    assert_eq!(ready(&decision), Some(("True", "Scheduled")));
    assert_eq!(
        events(&decision),
        [(false, "Resumed"), (false, "Coalesced"), (false, "Resumed")]
    );
    assert!(
        decision.events[0]
            .message
            .contains("consecutive failures reset from 2"),
        "{}",
        decision.events[0].message
    );

    let again = world.decide(hour(2) + secs(2));
    assert_eq!(again.write, Write::Nothing, "the same value is served once");
}

#[test]
fn a_spec_change_resets_the_failures_too() {
    let mut world = failing();
    world.pass(hour(1) + secs(1));
    world.edit(|spec| spec.successful_runs_history_limit = Some(5));
    let decision = world.decide(hour(1) + secs(2));
    assert_eq!(decision.status.consecutive_failures, 0);
    assert_eq!(decision.status.observed_generation, Some(2));
    assert_eq!(names(&decision.create), [run_at(1)]);
    assert!(
        decision.events[0].message.starts_with("the spec changed"),
        "{}",
        decision.events[0].message
    );
}

#[test]
fn run_now_fires_once_per_annotation_value_even_while_paused() {
    let mut world = World::new();
    world.schedule.spec.paused = true;
    world.annotate(RUN_NOW_ANNOTATION, "a");
    let now = hour(1) + TimeDelta::minutes(7);
    let decision = world.pass(now);
    assert_eq!(names(&decision.create), [run_now_name("nightly", "a")]);
    let run = &decision.create[0];
    assert_eq!(run.spec.fire_time, Some(now));
    assert_eq!(
        run.annotations().get(RUN_NOW_ANNOTATION).map(String::as_str),
        Some("a")
    );
    assert_eq!(decision.status.last_run_now.as_deref(), Some("a"));
    assert_eq!(
        decision.status.fired_count, 0,
        "run-now runs do not count toward maxRuns"
    );
    assert_eq!(active(&decision.status), [run_now_name("nightly", "a")]);
    assert_eq!(ready(&decision), Some(("True", "Paused")));
    assert_eq!(decision.write, Write::Now);

    assert!(
        world.decide(now + secs(1)).create.is_empty(),
        "a value fires once"
    );
    world.annotate(RUN_NOW_ANNOTATION, "b");
    assert_eq!(
        names(&world.decide(now + secs(2)).create),
        [run_now_name("nightly", "b")]
    );
}

// Settling and when to write.

#[test]
fn a_failed_run_is_settled_and_written_at_once_with_a_warning() {
    let mut world = World::new();
    world.settings.status_delay = TimeDelta::minutes(5);
    world.pass(created() + secs(1));
    world.end(&run_at(0), JobRunPhase::Failed, created() + secs(30));
    let decision = world.decide(created() + secs(40));
    assert!(decision.status.active.is_empty());
    assert_eq!(decision.status.active_count, 0);
    assert_eq!(decision.status.consecutive_failures, 1);
    assert_eq!(decision.write, Write::Now, "bad news does not wait");
    assert_eq!(events(&decision), [(true, "RunFailed")]);
}

#[test]
fn a_settled_success_waits_for_the_status_delay_and_says_nothing_until_written() {
    let mut world = World::new();
    world.settings.status_delay = TimeDelta::minutes(1);
    world.pass(created() + secs(1));
    let done = created() + secs(30);
    world.end(&run_at(0), JobRunPhase::Succeeded, done);

    let early = world.decide(created() + secs(40));
    assert_eq!(early.write, Write::At(done + TimeDelta::minutes(1)));
    assert_eq!(early.requeue, Some(done + TimeDelta::minutes(1)));
    assert!(early.events.is_empty());
    assert!(early.status.active.is_empty());
    assert_eq!(early.status.last_successful_time, Some(created()));
    assert_eq!(
        condition(&early, settle::LAST_RUN_SUCCEEDED),
        Some(("True", "Succeeded"))
    );

    let due = world.decide(done + TimeDelta::minutes(1));
    assert_eq!(due.write, Write::Now, "its delay is over");
}

#[test]
fn a_settled_success_shares_the_write_of_a_new_run() {
    let mut world = World::new();
    world.settings.status_delay = TimeDelta::minutes(5);
    world.pass(created() + secs(1));
    world.end(&run_at(0), JobRunPhase::Succeeded, hour(1) - secs(5));
    let decision = world.decide(hour(1));
    assert_eq!(names(&decision.create), [run_at(1)]);
    assert_eq!(decision.write, Write::Now);
    assert_eq!(active(&decision.status), [run_at(1)]);
    assert_eq!(decision.status.last_successful_time, Some(created()));
}

#[test]
fn an_active_run_known_to_be_deleted_leaves_active_uncounted() {
    let mut world = World::new();
    world.pass(created() + secs(1));
    world.runs.clear();
    let kept = world.decide(created() + secs(5));
    assert_eq!(active(&kept.status), [run_at(0)], "the cache may just be behind");

    world.gone.insert(run_at(0));
    let decision = world.decide(created() + secs(5));
    assert!(decision.status.active.is_empty());
    assert_eq!(decision.write, Write::Now);
    assert_eq!(decision.status.consecutive_failures, 0);
    assert_eq!(decision.status.last_successful_time, None);
    assert_eq!(condition(&decision, settle::LAST_RUN_SUCCEEDED), None);
    assert!(decision.events.is_empty());
}

// History.

#[test]
fn settled_runs_beyond_the_history_limits_are_deleted_oldest_first() {
    let mut world = World::new();
    world.schedule.spec.coalesce = CoalescePolicy::All;
    world.schedule.spec.successful_runs_history_limit = Some(1);
    world.schedule.spec.failed_runs_history_limit = Some(1);
    world.pass(hour(5) + secs(1));
    for n in 0..=2 {
        world.end(&run_at(n), JobRunPhase::Succeeded, hour(5) + secs(10 + n));
    }
    for n in 3..=4 {
        world.end(&run_at(n), JobRunPhase::Failed, hour(5) + secs(10 + n));
    }
    let mut backfilled = (*finished_run(-10, JobRunPhase::Succeeded, hour(5))).clone();
    backfilled
        .metadata
        .labels
        .get_or_insert_default()
        .insert(BACKFILL_LABEL.into(), "rerun".into());
    world.runs.push(Arc::new(backfilled));

    let decision = world.decide(hour(5) + secs(30));
    assert_eq!(decision.write, Write::Now);
    assert_eq!(active(&decision.status), [run_at(5)]);
    assert_eq!(
        decision.delete,
        [run_at(1), run_at(0), run_at(3)],
        "the newest success and failure stay; the running run and the backfilled one are not the Schedule's history"
    );
}

#[test]
fn history_is_deleted_only_with_the_write_that_settles_it() {
    let mut world = World::new();
    world.schedule.spec.successful_runs_history_limit = Some(0);
    world.settings.status_delay = TimeDelta::minutes(1);
    world.pass(created() + secs(1));
    world.end(&run_at(0), JobRunPhase::Succeeded, created() + secs(30));

    let deferred = world.decide(created() + secs(40));
    assert!(matches!(deferred.write, Write::At(_)));
    assert!(deferred.delete.is_empty(), "the written status still lists it");

    let written = world.decide(created() + secs(90));
    assert_eq!(written.write, Write::Now);
    assert_eq!(written.delete, [run_at(0)]);
}

#[test]
fn a_run_beyond_the_written_cursor_is_not_history_yet() {
    let mut world = World::new();
    world.schedule.spec.failed_runs_history_limit = Some(0);
    world.pass(created() + secs(1));
    world
        .runs
        .push(finished_run(1, JobRunPhase::Failed, created() + secs(20)));
    let decision = world.decide(created() + secs(30));
    assert!(decision.delete.is_empty(), "{:?}", decision.delete);
}

// The end of a Schedule.

#[test]
fn max_runs_caps_the_runs_and_finishes_the_schedule() {
    let mut world = World::new();
    world.schedule.spec.max_runs = Some(2);
    world.schedule.spec.coalesce = CoalescePolicy::All;
    world.pass(created() + secs(1));
    let decision = world.decide(hour(3) + secs(1));
    assert_eq!(names(&decision.create), [run_at(1)], "only what maxRuns leaves");
    assert_eq!(decision.status.fired_count, 2);
    assert_eq!(decision.status.next_fire_time, None);
    assert!(decision.status.upcoming_fire_times.is_empty());
    assert_eq!(ready(&decision), Some(("True", "Finished")));
    assert_eq!(condition(&decision, FINISHED), Some(("True", "Finished")));
    assert_eq!(condition(&decision, PAUSED), Some(("False", "NotPaused")));
    assert_eq!(
        find_condition(&decision.status.conditions, FINISHED).map(|c| c.message.as_str()),
        Some("fired maxRuns (2) times")
    );
    assert_eq!(events(&decision), [(false, "Finished")]);
    assert_eq!(
        decision.status.finished_at, None,
        "its runs are not all counted yet"
    );
    assert_eq!(decision.requeue, None);
}

#[test]
fn a_finished_schedule_is_deleted_ttl_seconds_after_its_last_run_completed() {
    let mut world = World::new();
    world.schedule.spec.max_runs = Some(1);
    world.schedule.spec.ttl_seconds_after_finished = Some(60);
    world.pass(created() + secs(1));
    let done = created() + secs(30);
    world.end(&run_at(0), JobRunPhase::Succeeded, done);

    let finished = world.pass(created() + secs(40));
    assert_eq!(finished.status.finished_at, Some(done));
    assert!(!finished.delete_schedule);
    assert_eq!(finished.requeue, Some(done + secs(60)));

    let later = world.decide(done + secs(59));
    assert_eq!(
        later.status.finished_at,
        Some(done),
        "kept while it stays finished"
    );
    assert!(!later.delete_schedule);

    let expired = world.decide(done + secs(60));
    assert!(expired.delete_schedule);
    assert_eq!(expired.requeue, None);
}

#[test]
fn a_schedule_whose_trigger_has_no_more_fire_times_finishes() {
    let mut world = World::new();
    world.schedule.spec.trigger = TriggerSpec {
        date: Some(created().fixed_offset() + TimeDelta::minutes(5)),
        ..TriggerSpec::default()
    };
    let fired = world.pass(created() + TimeDelta::minutes(6));
    assert_eq!(fired.create.len(), 1);
    assert_eq!(ready(&fired), Some(("True", "Finished")));
    assert_eq!(condition(&fired, FINISHED), Some(("True", "Finished")));
    assert_eq!(fired.status.finished_at, None);
    let name = fired.create[0].name_any();
    world.end(&name, JobRunPhase::Failed, created() + TimeDelta::minutes(7));
    let done = world.decide(created() + TimeDelta::minutes(8));
    assert_eq!(done.status.finished_at, Some(created() + TimeDelta::minutes(7)));
    assert_eq!(
        find_condition(&done.status.conditions, READY)
            .map(|c| c.message.starts_with("the trigger has no more fire times")),
        Some(true)
    );
}
