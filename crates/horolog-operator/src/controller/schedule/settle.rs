//! Settling: a finished run leaves `status.active` and is counted once, at the Schedule's
//! next status write.
//!
//! `status.active` is the ledger that makes the counters exact across restarts: every run the
//! Schedule creates enters it in the same status write that moves the cursor past its fire
//! time, and leaves it exactly once, when it is seen finished (or gone). What a run counts for
//! (lastSuccessfulTime, the LastRunSucceeded condition, consecutiveFailures, skippedRuns,
//! missedFireTimes) is added when it leaves, and the write that removes it is the write that
//! counts it. A crash before that write leaves it in `active`, to be counted by the next pass.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::{ActiveRun, Condition, JobRun, JobRunPhase, ScheduleStatus, find_condition, set_condition};
use crate::controller::events::Note;

/// The condition type that tells whether the last finished run succeeded.
pub const LAST_RUN_SUCCEEDED: &str = "LastRunSucceeded";

/// What settling the finished runs of `active` changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settled {
    /// The runs that left `active`, oldest completion first.
    pub names: Vec<String>,
    /// True when one of them did not succeed (failed, missed, skipped, cancelled): worth a
    /// status write at once. Only successes may wait for the next write.
    pub bad_news: bool,
    /// The earliest completion time among them (when they waited the longest).
    pub earliest_completion: Option<DateTime<Utc>>,
    /// Events about them, for the Schedule.
    pub events: Vec<Note>,
}

/// Settles into `status` every run of `status.active` that `runs` shows finished, or that
/// `gone` says was deleted; returns what left. `status.active` keeps the others.
pub fn settle(
    status: &mut ScheduleStatus,
    runs: &[Arc<JobRun>],
    gone: &HashSet<String>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Settled {
    let mut finished: Vec<&JobRun> = Vec::new();
    let mut left = Vec::new();
    status.active.retain(
        |entry| match runs.iter().find(|run| run.name_any() == entry.name) {
            Some(run) if run.is_finished() => {
                finished.push(run);
                left.push(entry.name.clone());
                false
            }
            Some(_) => true,
            None if gone.contains(&entry.name) => {
                left.push(entry.name.clone());
                false
            }
            None => true,
        },
    );
    finished.sort_by_key(|run| (run.completion_time(), run.fire_time(), run.name_any()));

    let mut settled = Settled {
        earliest_completion: finished.iter().filter_map(|r| r.completion_time()).min(),
        ..Settled::default()
    };
    for run in finished {
        count(status, &mut settled, run, generation, now);
    }
    settled.names = left;
    status.active_count = status.active.len() as i32;
    settled
}

/// Counts one finished run.
fn count(
    status: &mut ScheduleStatus,
    settled: &mut Settled,
    run: &JobRun,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let phase = run.phase();
    let name = run.name_any();
    let message = run
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    match phase {
        JobRunPhase::Succeeded => {
            status.last_successful_time = status.last_successful_time.max(Some(run.fire_time()));
            status.consecutive_failures = 0;
        }
        JobRunPhase::Failed => {
            status.consecutive_failures += 1;
            settled.bad_news = true;
            settled.events.push(Note::warning(
                "RunFailed",
                format!("JobRun {name} failed: {message}"),
            ));
        }
        JobRunPhase::Missed => {
            status.missed_fire_times += 1;
            settled.bad_news = true;
            settled.events.push(Note::warning(
                "Missed",
                format!("JobRun {name} missed its start deadline: {message}"),
            ));
        }
        JobRunPhase::Skipped => {
            status.skipped_runs += 1;
            settled.bad_news = true;
        }
        _ => settled.bad_news = true,
    }
    let succeeded = phase == JobRunPhase::Succeeded;
    let previous = find_condition(&status.conditions, LAST_RUN_SUCCEEDED).cloned();
    let condition = Condition::transition(
        previous.as_ref(),
        LAST_RUN_SUCCEEDED,
        succeeded,
        phase.as_str(),
        format!(
            "JobRun {name} ended {} at {}",
            phase.as_str(),
            run.completion_time().unwrap_or(now).to_rfc3339()
        ),
        generation,
        now,
    );
    set_condition(&mut status.conditions, condition);
}

/// The runs to list in `active` after this pass: those already listed, the runs this pass
/// creates, the `rediscovered` runs (planned again because the write that listed them never
/// happened), and any other unfinished run of the Schedule the cache shows (but a run staged
/// ahead of a fire time beyond the cursor), oldest fire time first.
pub fn add_active(
    status: &mut ScheduleStatus,
    runs: &[Arc<JobRun>],
    created: &[JobRun],
    rediscovered: &[String],
) {
    let mut listed: HashSet<String> = status.active.iter().map(|a| a.name.clone()).collect();
    let mut entries: Vec<(DateTime<Utc>, String)> = status
        .active
        .iter()
        .map(|a| {
            let fire = runs
                .iter()
                .map(Arc::as_ref)
                .chain(created)
                .find(|r| r.name_any() == a.name)
                .map(JobRun::fire_time);
            (fire.unwrap_or(DateTime::<Utc>::MIN_UTC), a.name.clone())
        })
        .collect();
    let unfinished = runs
        .iter()
        .map(Arc::as_ref)
        .filter(|run| (!run.is_finished() || rediscovered.contains(&run.name_any())) && !run.is_backfill())
        // A run staged ahead of a fire time the cursor has not reached is no outcome yet.
        .filter(|run| {
            !(super::stage::created_ahead(run) && status.cursor.is_none_or(|c| run.fire_time() > c))
        });
    for run in created.iter().chain(unfinished) {
        if listed.insert(run.name_any()) {
            entries.push((run.fire_time(), run.name_any()));
        }
    }
    entries.sort();
    status.active = entries.into_iter().map(|(_, name)| ActiveRun { name }).collect();
    status.active_count = status.active.len() as i32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{JobRunSpec, JobRunStatus};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap_or_default()
    }

    fn run(name: &str, fire: i64, phase: JobRunPhase, done: Option<i64>) -> Arc<JobRun> {
        let mut run = JobRun::new(
            name,
            JobRunSpec {
                fire_time: Some(t(fire)),
                ..JobRunSpec::default()
            },
        );
        run.status = Some(JobRunStatus {
            phase: Some(phase),
            completion_time: done.map(t),
            ..JobRunStatus::default()
        });
        Arc::new(run)
    }

    fn active(names: &[&str]) -> ScheduleStatus {
        ScheduleStatus {
            active: names.iter().map(|n| ActiveRun { name: n.to_string() }).collect(),
            ..ScheduleStatus::default()
        }
    }

    #[test]
    fn a_finished_run_is_counted_once_when_it_leaves_active() {
        let runs = [
            run("a", 0, JobRunPhase::Failed, Some(5)),
            run("b", 60, JobRunPhase::Running, None),
        ];
        let mut status = active(&["a", "b"]);
        let settled = settle(&mut status, &runs, &HashSet::new(), Some(1), t(70));
        assert_eq!(settled.names, ["a"]);
        assert!(settled.bad_news);
        assert_eq!(status.consecutive_failures, 1);
        assert_eq!(status.active, [ActiveRun { name: "b".into() }]);
        let again = settle(&mut status, &runs, &HashSet::new(), Some(1), t(80));
        assert!(
            again.names.is_empty(),
            "a is no longer listed: never counted twice"
        );
        assert_eq!(status.consecutive_failures, 1);
    }

    #[test]
    fn runs_settle_in_completion_order_so_a_later_success_resets_the_failures() {
        let runs = [
            run("late-success", 0, JobRunPhase::Succeeded, Some(30)),
            run("early-failure", 60, JobRunPhase::Failed, Some(10)),
        ];
        let mut status = active(&["late-success", "early-failure"]);
        status.consecutive_failures = 2;
        settle(&mut status, &runs, &HashSet::new(), None, t(100));
        assert_eq!(status.consecutive_failures, 0);
        assert_eq!(status.last_successful_time, Some(t(0)));
        let condition = find_condition(&status.conditions, LAST_RUN_SUCCEEDED).cloned();
        assert_eq!(
            condition.map(|c| (c.status, c.reason)),
            Some(("True".into(), "Succeeded".into()))
        );
    }

    #[test]
    fn a_run_not_in_the_cache_stays_active_unless_it_is_known_to_be_gone() {
        let mut status = active(&["in-flight", "deleted"]);
        let gone: HashSet<String> = ["deleted".to_string()].into();
        let settled = settle(&mut status, &[], &gone, None, t(0));
        assert_eq!(settled.names, ["deleted"]);
        assert_eq!(
            status.active,
            [ActiveRun {
                name: "in-flight".into()
            }]
        );
    }

    #[test]
    fn skipped_and_missed_runs_are_counted() {
        let runs = [
            run("s", 0, JobRunPhase::Skipped, Some(1)),
            run("m", 1, JobRunPhase::Missed, Some(2)),
        ];
        let mut status = active(&["s", "m"]);
        settle(&mut status, &runs, &HashSet::new(), None, t(10));
        assert_eq!((status.skipped_runs, status.missed_fire_times), (1, 1));
    }
}
