//! Unit tests of the Backfill decision.
use std::collections::HashMap;

use super::*;
use crate::api::{BackfillSpec, JobRunPhase, JobRunStatus, TriggerSpec};
use crate::controller::backfill::trigger_origin;
use crate::controller::test_support::{at, hourly_schedule};

/// The hourly Schedule the Backfills run, created long before their ranges.
fn hourly() -> Schedule {
    hourly_schedule(at("2025-01-01T00:00:00Z"))
}

fn backfill(from: &str, to: &str) -> Backfill {
    let mut backfill = Backfill::new(
        "rerun",
        BackfillSpec {
            schedule_name: "nightly".into(),
            from: at(from),
            to: at(to),
            concurrency_policy: None,
            max_fire_times: None,
            dry_run: false,
            ignore_exclusions: false,
        },
    );
    backfill.metadata.namespace = Some("default".into());
    backfill
}

fn trigger(schedule: &Schedule, from: DateTime<Utc>) -> Trigger {
    let origin = trigger_origin(&schedule.spec.trigger, at("2026-01-01T00:00:00Z"), from);
    Trigger::compile(&schedule.spec.trigger, origin).unwrap()
}

fn finished(mut run: JobRun) -> Arc<JobRun> {
    run.status = Some(JobRunStatus {
        phase: Some(JobRunPhase::Succeeded),
        ..JobRunStatus::default()
    });
    Arc::new(run)
}

struct World {
    schedule: Schedule,
    trigger: Trigger,
    runs: Vec<Arc<JobRun>>,
}

impl World {
    fn new(from: &str) -> World {
        let schedule = hourly();
        let trigger = trigger(&schedule, at(from));
        World {
            schedule,
            trigger,
            runs: Vec::new(),
        }
    }

    fn decide(&self, backfill: &Backfill, limit: usize) -> Decision {
        let by_name: HashMap<String, Arc<JobRun>> =
            self.runs.iter().map(|r| (r.name_any(), r.clone())).collect();
        let existing = move |name: &str| by_name.get(name).cloned();
        decide(Input {
            backfill,
            schedule: ScheduleLookup::Found {
                schedule: &self.schedule,
                trigger: Ok(&self.trigger),
                task: TaskLookup::NotUsed,
            },
            runs: &self.runs,
            existing: &existing,
            limit,
            scan_limit: 100_000,
            now: at("2026-03-01T00:00:00Z"),
        })
    }
}

#[test]
fn an_interval_grid_is_extended_backwards_so_names_match_the_schedules_runs() {
    let schedule = hourly();
    let created = at("2026-01-01T00:30:00Z");
    assert_eq!(
        trigger_origin(&schedule.spec.trigger, created, at("2025-12-31T21:00:00Z")),
        at("2025-12-31T20:30:00Z"),
        "on the Schedule's grid, at or before from"
    );
    assert_eq!(
        trigger_origin(&schedule.spec.trigger, created, at("2026-01-02T00:00:00Z")),
        created,
        "a range after the creation uses the Schedule's own grid"
    );
    let cron: TriggerSpec = serde_json::from_value(serde_json::json!({"cron": "0 9 * * *"})).unwrap();
    assert_eq!(
        trigger_origin(&cron, created, at("2025-12-01T00:00:00Z")),
        at("2025-12-01T00:00:00Z")
    );
}

#[test]
fn the_first_batch_creates_up_to_the_limit_plus_the_buffer_and_moves_the_cursor() {
    let world = World::new("2025-12-01T00:00:00Z");
    let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-03T00:00:00Z");
    let decision = world.decide(&backfill, 1);
    assert_eq!(decision.create.len(), 1 + BATCH_BUFFER);
    let first = &decision.create[0];
    assert_eq!(first.name_any(), "nightly-1764547200");
    assert_eq!(
        first.labels().get(BACKFILL_LABEL).map(String::as_str),
        Some("rerun")
    );
    assert_eq!(first.spec.start_deadline, None, "a backfill has no misfire");
    assert_eq!(first.spec.jitter, None);
    let status = &decision.status;
    assert_eq!(status.phase, Some(BackfillPhase::Running));
    assert_eq!(status.fire_times, Some(48));
    assert_eq!(status.created, 11);
    assert_eq!(status.cursor, Some(at("2025-12-01T10:00:00Z")));
    assert_eq!(
        decision.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
        ["BackfillStarted"]
    );
}

#[test]
fn a_full_pool_creates_nothing_until_a_run_finishes() {
    let mut world = World::new("2025-12-01T00:00:00Z");
    let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-03T00:00:00Z");
    let first = world.decide(&backfill, 1);
    world.runs = first.create.iter().cloned().map(Arc::new).collect();
    backfill.status = Some(first.status.clone());
    let again = world.decide(&backfill, 1);
    assert!(again.create.is_empty());
    assert_eq!(again.status, first.status, "a second pass changes nothing");

    world.runs[0] = finished((*world.runs[0]).clone());
    let next = world.decide(&backfill, 1);
    assert_eq!(next.create.len(), 1);
    assert_eq!(next.create[0].spec.fire_time, Some(at("2025-12-01T11:00:00Z")));
}

#[test]
fn fire_times_whose_run_exists_are_done_and_created_only_counts_new_ones() {
    let mut world = World::new("2025-12-01T00:00:00Z");
    let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T04:00:00Z");
    let mut ran = jobrun_for(
        &world.schedule,
        None,
        run_name("nightly", at("2025-12-01T01:00:00Z")),
        at("2025-12-01T01:00:00Z"),
        TimeDelta::zero(),
        None,
    );
    ran.metadata.namespace = Some("default".into());
    world.runs.push(finished(ran));
    let decision = world.decide(&backfill, 1);
    let fire_times: Vec<_> = decision.create.iter().filter_map(|r| r.spec.fire_time).collect();
    assert_eq!(
        fire_times,
        [
            at("2025-12-01T00:00:00Z"),
            at("2025-12-01T02:00:00Z"),
            at("2025-12-01T03:00:00Z")
        ]
    );
    assert_eq!(decision.status.created, 3);
    assert_eq!(decision.status.fire_times, Some(4));
}

#[test]
fn runs_created_by_a_pass_whose_status_was_lost_are_counted_not_created_again() {
    let mut world = World::new("2025-12-01T00:00:00Z");
    let backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T03:00:00Z");
    let lost = world.decide(&backfill, 1);
    world.runs = lost.create.iter().cloned().map(finished).collect();
    let decision = world.decide(&backfill, 1);
    assert!(decision.create.is_empty());
    assert_eq!(decision.status.created, 3);
    assert_eq!(decision.status.phase, Some(BackfillPhase::Complete));
}

#[test]
fn a_dry_run_counts_and_previews_without_creating() {
    let world = World::new("2025-12-01T00:00:00Z");
    let mut backfill = backfill("2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z");
    backfill.spec.dry_run = true;
    let decision = world.decide(&backfill, 1);
    assert!(decision.create.is_empty());
    assert_eq!(decision.status.phase, Some(BackfillPhase::Complete));
    assert_eq!(decision.status.fire_times, Some(31 * 24));
    assert_eq!(decision.status.preview.len(), BACKFILL_PREVIEW);
    assert_eq!(decision.status.preview[0], at("2025-12-01T00:00:00Z"));
    assert_eq!(decision.status.cursor, None);
    let complete = find_condition(&decision.status.conditions, COMPLETE).unwrap();
    assert_eq!(
        (complete.status.as_str(), complete.reason.as_str()),
        ("True", "DryRun")
    );
}

#[test]
fn a_scanning_trigger_past_the_scan_limit_says_at_least() {
    let cron: TriggerSpec = serde_json::from_value(serde_json::json!({"cron": "* * * * * *"})).unwrap();
    let mut schedule = hourly();
    schedule.spec.trigger = cron;
    let trigger = Trigger::compile(&schedule.spec.trigger, at("2025-12-01T00:00:00Z")).unwrap();
    let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-01T01:00:00Z");
    backfill.spec.dry_run = true;
    let existing = |_: &str| None;
    let decision = decide(Input {
        backfill: &backfill,
        schedule: ScheduleLookup::Found {
            schedule: &schedule,
            trigger: Ok(&trigger),
            task: TaskLookup::NotUsed,
        },
        runs: &[],
        existing: &existing,
        limit: 1,
        scan_limit: 1000,
        now: at("2026-03-01T00:00:00Z"),
    });
    let message = decision.status.message.unwrap_or_default();
    assert!(message.contains("at least 1"), "{message}");
    assert!(!count_is_exact(&schedule.spec.trigger, 1000, 1000));
    assert!(count_is_exact(&hourly().spec.trigger, 1_000_000, 1000));
}

#[test]
fn a_missing_schedule_fails_with_a_warning_once() {
    let mut backfill = backfill("2025-12-01T00:00:00Z", "2025-12-02T00:00:00Z");
    fn missing(backfill: &Backfill) -> Decision {
        decide(Input {
            backfill,
            schedule: ScheduleLookup::Missing,
            runs: &[],
            existing: &|_: &str| None,
            limit: 1,
            scan_limit: 1000,
            now: at("2026-03-01T00:00:00Z"),
        })
    }
    let decision = missing(&backfill);
    assert_eq!(decision.status.phase, Some(BackfillPhase::Failed));
    assert_eq!(
        decision.status.message.as_deref(),
        Some("Schedule \"nightly\" does not exist")
    );
    assert_eq!(decision.events[0].reason, "BackfillFailed");
    assert!(decision.events[0].warning);
    backfill.status = Some(decision.status.clone());
    let again = missing(&backfill);
    assert_eq!(again.status, decision.status);
    assert!(again.events.is_empty());
}

#[test]
fn a_range_beyond_max_fire_times_is_refused_whole_and_a_dry_run_says_so() {
    // Hourly over 2024 and 2025: 17,544 fire times, more than the default 10,000.
    let world = World::new("2024-01-01T00:00:00Z");
    let big = backfill("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    let decision = world.decide(&big, 1);
    assert!(decision.create.is_empty());
    assert_eq!(decision.status.phase, Some(BackfillPhase::Failed));
    assert_eq!(decision.status.fire_times, Some(17_544));
    let message = decision.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("17544") && message.contains("maxFireTimes (10000)"),
        "{message}"
    );
    let ready = find_condition(&decision.status.conditions, COMPLETE).unwrap();
    assert_eq!(ready.reason, "TooManyFireTimes");

    let mut dry = big.clone();
    dry.spec.dry_run = true;
    let decision = world.decide(&dry, 1);
    assert_eq!(decision.status.phase, Some(BackfillPhase::Complete));
    assert_eq!(decision.status.fire_times, Some(17_544));
    let message = decision.status.message.unwrap_or_default();
    assert!(message.contains("a real run would be refused"), "{message}");

    let mut raised = big;
    raised.spec.max_fire_times = Some(20_000);
    let decision = world.decide(&raised, 1);
    assert_eq!(decision.status.phase, Some(BackfillPhase::Running));
    assert!(!decision.create.is_empty());
}
