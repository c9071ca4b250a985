//! Unit tests of the JobRun decision: every branch of `decide` and the steps it hands over to
//! (`queued`, `follow`, `job`), with plain values and explicit times.
use crate::api::{CANCEL_ANNOTATION, Duration as ApiDuration, JobRunSpec};
use crate::job::JobReport;
use crate::pod::{PodProgress, PodReport, pod_name};

use super::*;
use crate::api::{ConcurrencyPolicy, JobRun, JobRunStatus};
use crate::controller::index::{JobView, PodView};
use crate::controller::test_support::at;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const RUN: &str = "nightly-1767254400";
const JOB: &str = "nightly-1767254400-job";

/// The run's fire time.
fn fire() -> DateTime<Utc> {
    at("2026-01-01T08:00:00Z")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn pod(attempt: i32, progress: PodProgress) -> PodView {
    PodView {
        name: pod_name(RUN, attempt),
        uid: String::new(),
        attempt,
        report: PodReport {
            progress,
            ..PodReport::default()
        },
        deleting: false,
        deleted_at: None,
        tracking: None,
    }
}

fn job(report: JobReport) -> JobView {
    JobView {
        name: JOB.into(),
        uid: String::new(),
        report,
        deleting: false,
        tracking: None,
    }
}

/// The status of a run whose attempt `attempt` has been reported Running since `started`.
fn running_since(started: DateTime<Utc>, attempt: i32) -> JobRunStatus {
    JobRunStatus {
        phase: Some(JobRunPhase::Running),
        pod_name: Some(pod_name(RUN, attempt)),
        attempts: Some(attempt),
        start_time: Some(started),
        ..JobRunStatus::default()
    }
}

/// What one reconcile of the run reads; each test changes what matters to it.
struct World {
    run: JobRun,
    pods: BTreeMap<i32, PodView>,
    verdict: Option<Verdict<String>>,
    pool: Option<(ConcurrencyPolicy, Option<usize>)>,
    task_missing: Option<&'static str>,
    orphaned: Option<(&'static str, &'static str)>,
    deleted_attempt: Option<i32>,
    executor: Executor,
    job: Option<JobView>,
    job_deleted: bool,
    may_expire: bool,
    now: DateTime<Utc>,
}

impl World {
    /// A run of `nightly` due at its fire time, without status, Pod or verdict, one second
    /// after its fire time.
    fn new() -> World {
        let mut run = JobRun::new(
            RUN,
            JobRunSpec {
                schedule_name: Some("nightly".into()),
                fire_time: Some(fire()),
                ..JobRunSpec::default()
            },
        );
        run.metadata.namespace = Some("default".into());
        World {
            run,
            pods: BTreeMap::new(),
            verdict: None,
            pool: None,
            task_missing: None,
            orphaned: None,
            deleted_attempt: None,
            executor: Executor::Pod,
            job: None,
            job_deleted: false,
            may_expire: false,
            now: fire() + secs(1),
        }
    }

    fn status(mut self, status: JobRunStatus) -> World {
        self.run.status = Some(status);
        self
    }

    fn pod(mut self, pod: PodView) -> World {
        self.pods.insert(pod.attempt, pod);
        self
    }

    fn cancel(mut self, value: &str) -> World {
        self.run
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CANCEL_ANNOTATION.into(), value.into());
        self
    }

    /// A newer run named `newer` takes this run's slot in a pool of one with `policy`.
    fn replaced_under(mut self, policy: ConcurrencyPolicy) -> World {
        self.verdict = Some(Verdict::Cancel { by: "newer".into() });
        self.pool = Some((policy, Some(1)));
        self
    }

    fn decide(&self) -> Decision {
        decide(Input {
            run: &self.run,
            pods: &self.pods,
            verdict: self.verdict.as_ref(),
            pool: self.pool,
            task_missing: self.task_missing,
            orphaned: self.orphaned,
            deleted_attempt: self.deleted_attempt,
            executor: self.executor,
            job: self.job.as_ref(),
            job_deleted: self.job_deleted,
            may_expire: self.may_expire,
            now: self.now,
            running_report_delay: secs(10),
        })
    }
}

/// The status a decision writes; a test that calls it expects a write.
fn written(decision: &Decision) -> &JobRunStatus {
    decision.status.as_ref().expect("the decision writes status")
}

/// The (phase, reason) a decision writes.
fn outcome(decision: &Decision) -> (Option<JobRunPhase>, Option<&str>) {
    let status = written(decision);
    (status.phase, status.reason.as_deref())
}

/// The (warning, reason) of each Event a decision publishes.
fn events(decision: &Decision) -> Vec<(bool, &'static str)> {
    decision.events.iter().map(|e| (e.warning, e.reason)).collect()
}

/// The (type, status, reason) of each condition a status carries.
fn conditions(status: &JobRunStatus) -> Vec<(&str, &str, &str)> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect()
}

/// `decision`, giving the run's reserved slot back first.
fn releasing(mut decision: Decision) -> Decision {
    decision.acts.insert(0, Act::ReleaseSlot);
    decision
}

// Finished runs: resultTTL.

fn finished(ttl: Option<u64>) -> World {
    let mut world = World::new().status(JobRunStatus {
        phase: Some(JobRunPhase::Succeeded),
        completion_time: Some(fire() + secs(60)),
        ..JobRunStatus::default()
    });
    world.run.spec.run.result_ttl = ttl.map(ApiDuration::from_secs);
    world
}

#[test]
fn a_finished_run_without_result_ttl_is_left_alone_even_when_cancelled_or_replaced() {
    let mut world = finished(None).cancel("yes").pod(pod(1, PodProgress::Running));
    world.verdict = Some(Verdict::Cancel { by: "newer".into() });
    world.may_expire = true;
    assert_eq!(world.decide(), releasing(Decision::default()));
}

#[test]
fn a_finished_run_waits_for_its_result_ttl() {
    let mut world = finished(Some(3600));
    world.now = fire() + secs(120);
    world.may_expire = true;
    assert_eq!(
        world.decide(),
        releasing(Decision::wait_until(fire() + secs(60) + secs(3600)))
    );
}

#[test]
fn a_finished_run_past_its_result_ttl_is_deleted_once_its_schedule_counted_it() {
    let mut world = finished(Some(3600));
    world.now = fire() + secs(60 + 3600);
    world.may_expire = true;
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::ReleaseSlot, Act::DeleteSelf]);
    assert_eq!((decision.status, decision.requeue), (None, None));
}

#[test]
fn a_finished_run_past_its_result_ttl_looks_again_in_30s_while_its_schedule_has_not_counted_it() {
    let mut world = finished(Some(3600));
    world.now = fire() + secs(7200);
    world.may_expire = false;
    assert_eq!(
        world.decide(),
        releasing(Decision::wait_until(world.now + secs(30)))
    );
}

// A run without a Pod: what admission says.

#[test]
fn a_run_whose_task_is_missing_stays_pending_with_task_not_found_whatever_admission_says() {
    let mut world = World::new();
    world.task_missing = Some("send-report");
    world.verdict = Some(Verdict::Start);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Pending), Some("TaskNotFound"))
    );
    assert!(
        written(&decision)
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Task \"send-report\" does not exist")),
        "{decision:?}"
    );
    assert_eq!(
        decision.acts,
        [Act::ReleaseSlot],
        "the slot admission reserved goes back: the run does not start"
    );
    assert!(decision.events.is_empty());
}

#[test]
fn a_run_admission_lets_start_creates_its_first_pod_and_writes_nothing() {
    for verdict in [None, Some(Verdict::Start), Some(Verdict::Keep)] {
        let mut world = World::new();
        world.verdict = verdict.clone();
        let decision = world.decide();
        assert_eq!(decision.acts, [Act::Start(1)], "{verdict:?}");
        assert_eq!(
            decision.status, None,
            "creating the Pod alone is not worth a write"
        );
        assert_eq!(decision.requeue, None);
    }
}

#[test]
fn a_queued_run_starts_the_attempt_after_those_its_status_counts() {
    let mut world = World::new().status(JobRunStatus {
        phase: Some(JobRunPhase::Waiting),
        attempts: Some(2),
        ..JobRunStatus::default()
    });
    world.verdict = Some(Verdict::Start);
    assert_eq!(world.decide().acts, [Act::Start(3)]);
}

#[test]
fn a_run_not_due_yet_waits_until_its_fire_time_plus_jitter() {
    let mut world = World::new();
    world.run.spec.jitter = Some(ApiDuration::from_secs(25));
    world.verdict = Some(Verdict::NotYet);
    assert_eq!(world.decide(), Decision::wait_until(fire() + secs(25)));
}

#[test]
fn a_run_past_its_start_deadline_ends_missed_with_a_warning() {
    let deadline = fire() + secs(300);
    let mut world = World::new();
    world.run.spec.start_deadline = Some(deadline);
    world.verdict = Some(Verdict::Missed);
    world.now = deadline + secs(1);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Missed), Some("MissedStartDeadline"))
    );
    let status = written(&decision);
    assert_eq!(status.completion_time, Some(world.now));
    assert_eq!(status.pod_name, None);
    assert_eq!(conditions(status), [("Failed", "True", "MissedStartDeadline")]);
    assert_eq!(events(&decision), [(true, "Missed")]);
    assert!(
        decision.events[0]
            .message
            .contains(&format!("start deadline {}", deadline.to_rfc3339())),
        "{}",
        decision.events[0].message
    );
    assert!(decision.acts.is_empty());
}

#[test]
fn a_run_without_a_slot_waits_until_just_after_its_start_deadline() {
    let deadline = fire() + secs(300);
    let mut world = World::new();
    world.run.spec.start_deadline = Some(deadline);
    world.verdict = Some(Verdict::Wait);
    world.pool = Some((ConcurrencyPolicy::Wait, Some(2)));
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Waiting), Some("MaxRunningJobs"))
    );
    assert_eq!(
        written(&decision).message.as_deref(),
        Some(
            format!(
                "maxRunningJobs 2 reached; waiting for a slot until its start deadline {}",
                deadline.to_rfc3339()
            )
            .as_str()
        )
    );
    assert_eq!(decision.requeue, Some(deadline + TimeDelta::milliseconds(1)));
    assert!(decision.acts.is_empty());
    assert!(decision.events.is_empty(), "Waiting is a phase, not an Event");
}

#[test]
fn a_run_without_a_slot_or_a_deadline_waits_for_a_watch_event_only() {
    let mut world = World::new();
    world.verdict = Some(Verdict::Wait);
    let decision = world.decide();
    assert_eq!(
        written(&decision).message.as_deref(),
        Some("maxRunningJobs unlimited reached; waiting for a slot with no deadline")
    );
    assert_eq!(decision.requeue, None);
}

#[test]
fn a_run_dropped_by_skip_ends_skipped_with_a_normal_event() {
    let mut world = World::new();
    world.verdict = Some(Verdict::Skip);
    world.pool = Some((ConcurrencyPolicy::Skip, Some(1)));
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Skipped), Some("ConcurrencyPolicySkip"))
    );
    assert_eq!(
        written(&decision).message.as_deref(),
        Some("maxRunningJobs 1 reached; concurrencyPolicy Skip drops this run")
    );
    assert_eq!(
        conditions(written(&decision)),
        [("Failed", "True", "ConcurrencyPolicySkip")]
    );
    assert_eq!(events(&decision), [(false, "Skipped")]);
}

#[test]
fn a_run_dropped_by_buffer_one_says_a_newer_run_waits() {
    let mut world = World::new();
    world.verdict = Some(Verdict::Skip);
    world.pool = Some((ConcurrencyPolicy::BufferOne, Some(1)));
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Skipped), Some("ConcurrencyPolicySkip"))
    );
    assert_eq!(
        written(&decision).message.as_deref(),
        Some("maxRunningJobs 1 reached and a newer run waits (concurrencyPolicy BufferOne)")
    );
}

#[test]
fn a_queued_run_a_newer_one_supersedes_ends_cancelled_before_it_starts() {
    for (verdict, policy) in [
        (
            Verdict::Supersede { by: "newer".into() },
            ConcurrencyPolicy::Replace,
        ),
        (
            Verdict::Cancel { by: "newer".into() },
            ConcurrencyPolicy::Terminate,
        ),
    ] {
        let mut world = World::new();
        world.verdict = Some(verdict);
        world.pool = Some((policy, Some(1)));
        let decision = world.decide();
        assert_eq!(
            outcome(&decision),
            (Some(JobRunPhase::Cancelled), Some("Replaced"))
        );
        let expected = format!(
            "replaced by newer before it started (concurrencyPolicy {})",
            policy.as_str()
        );
        assert_eq!(written(&decision).message.as_deref(), Some(expected.as_str()));
        assert_eq!(events(&decision), [(false, "Cancelled")]);
        assert!(decision.acts.is_empty(), "there is no Pod to delete");
    }
}

// Cancellation by annotation.

#[test]
fn the_cancel_annotation_deletes_the_running_pod_and_ends_the_run_cancelled() {
    let started = fire() + secs(5);
    let mut world = World::new()
        .status(running_since(started, 1))
        .pod(pod(1, PodProgress::Running))
        .cancel("stop");
    world.now = started + secs(90);
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::DeletePod(pod_name(RUN, 1), None)]);
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Cancelled), Some("CancelRequested"))
    );
    let status = written(&decision);
    assert_eq!(
        status.message.as_deref(),
        Some("cancelled: annotation horolog.dev/cancel=\"stop\"")
    );
    assert_eq!(status.completion_time, Some(world.now));
    assert_eq!(status.duration.as_deref(), Some("1m30s"));
    assert_eq!(conditions(status), [("Failed", "True", "CancelRequested")]);
}

#[test]
fn the_cancel_annotation_before_any_pod_ends_the_run_without_deleting_anything() {
    let mut world = World::new().cancel("");
    world.verdict = Some(Verdict::Start);
    let decision = world.decide();
    assert_eq!(
        decision.acts,
        [Act::ReleaseSlot],
        "nothing deleted or started; the slot admission reserved goes back"
    );
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Cancelled), Some("CancelRequested"))
    );
    assert_eq!(written(&decision).pod_name, None);
    assert_eq!(written(&decision).attempts, None);
}

#[test]
fn the_cancel_annotation_leaves_a_pod_that_is_going_or_gone_alone() {
    let mut deleting = pod(1, PodProgress::Running);
    deleting.deleting = true;
    for latest in [deleting, pod(1, PodProgress::Failed)] {
        let decision = World::new().pod(latest.clone()).cancel("stop").decide();
        assert!(decision.acts.is_empty(), "{latest:?}");
        let status = written(&decision);
        assert_eq!(status.phase, Some(JobRunPhase::Cancelled));
        assert_eq!(
            status.pod_name,
            Some(pod_name(RUN, 1)),
            "the status names the Pod it had"
        );
        assert_eq!(status.attempts, Some(1));
    }
}

#[test]
fn a_cancel_that_comes_after_the_pod_succeeded_leaves_the_success_standing() {
    let mut done = pod(1, PodProgress::Succeeded);
    done.report.exit_code = Some(0);
    let decision = World::new().pod(done).cancel("too late").decide();
    assert!(decision.acts.is_empty(), "{:?}", decision.acts);
    assert_eq!(written(&decision).phase, Some(JobRunPhase::Succeeded));
}

// A run with a Pod: the Pod's progress.

#[test]
fn a_pending_pod_that_says_nothing_is_not_worth_a_write() {
    let decision = World::new().pod(pod(1, PodProgress::Pending)).decide();
    assert_eq!(decision, Decision::default());
}

#[test]
fn a_pending_pod_that_says_why_it_waits_is_written_and_cleared_once_it_stops_saying() {
    let mut stuck = pod(1, PodProgress::Pending);
    stuck.report.reason = Some("ErrImagePull".into());
    stuck.report.message = Some("no such image".into());
    let decision = World::new().pod(stuck).decide();
    let status = written(&decision);
    assert_eq!(
        (status.phase, status.reason.as_deref(), status.message.as_deref()),
        (
            Some(JobRunPhase::Pending),
            Some("ErrImagePull"),
            Some("no such image")
        )
    );
    assert_eq!(status.pod_name, Some(pod_name(RUN, 1)));
    assert_eq!(status.attempts, Some(1));

    let pulled = World::new()
        .status(status.clone())
        .pod(pod(1, PodProgress::Pending))
        .decide();
    let cleared = written(&pulled);
    assert_eq!(
        (cleared.reason.as_deref(), cleared.message.as_deref()),
        (None, None)
    );
    assert_eq!(cleared.phase, Some(JobRunPhase::Pending));
}

#[test]
fn a_running_pod_is_reported_running_only_after_the_report_delay() {
    let started = fire() + secs(2);
    let mut running = pod(1, PodProgress::Running);
    running.report.start_time = Some(started);
    let mut world = World::new().pod(running);

    world.now = started + secs(9);
    assert_eq!(world.decide(), Decision::wait_until(started + secs(10)));

    world.now = started + secs(10);
    let decision = world.decide();
    assert_eq!(
        (written(&decision).phase, written(&decision).reason.as_deref()),
        (Some(JobRunPhase::Running), None)
    );
    assert_eq!(written(&decision).start_time, Some(started));
    assert_eq!(written(&decision).pod_name, Some(pod_name(RUN, 1)));
    assert_eq!(events(&decision), [(false, "Started")]);
    assert!(decision.acts.is_empty());
}

#[test]
fn a_running_pod_already_reported_running_writes_nothing() {
    let started = fire() + secs(2);
    let mut running = pod(1, PodProgress::Running);
    running.report.start_time = Some(started);
    let mut world = World::new().status(running_since(started, 1)).pod(running);
    world.now = started + secs(600);
    assert_eq!(world.decide(), Decision::default());
}

#[test]
fn a_pod_that_exited_0_ends_the_run_succeeded_with_its_result_and_duration() {
    let started = fire() + secs(2);
    let mut done = pod(1, PodProgress::Succeeded);
    done.report.start_time = Some(started);
    done.report.completion_time = Some(started + secs(75));
    done.report.exit_code = Some(0);
    done.report.result = Some("42 rows\n".into());
    let mut world = World::new().status(running_since(started, 1)).pod(done);
    world.now = started + secs(80);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Succeeded), Some("Completed"))
    );
    let status = written(&decision);
    assert_eq!(
        status.completion_time,
        Some(started + secs(75)),
        "the Pod's, not now"
    );
    assert_eq!(status.duration.as_deref(), Some("1m15s"));
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(status.result.as_deref(), Some("42 rows\n"));
    assert_eq!(conditions(status), [("Complete", "True", "Completed")]);
    assert_eq!(events(&decision), [(false, "Succeeded")]);
    assert_eq!(
        decision.events[0].message,
        format!("pod {} exited 0 in 1m15s; result: 42 rows", pod_name(RUN, 1))
    );
}

#[test]
fn a_pod_that_finished_before_running_was_written_ends_the_run_in_one_write() {
    let started = fire() + secs(2);
    let mut done = pod(1, PodProgress::Succeeded);
    done.report.start_time = Some(started);
    done.report.completion_time = Some(started + secs(3));
    let mut world = World::new().pod(done);
    world.now = started + secs(4);
    let decision = world.decide();
    let status = written(&decision);
    assert_eq!(status.phase, Some(JobRunPhase::Succeeded));
    assert_eq!(status.start_time, Some(started), "the start comes from the Pod");
    assert_eq!(status.duration.as_deref(), Some("3s"));
    assert_eq!(status.pod_name, Some(pod_name(RUN, 1)));
    assert_eq!(
        events(&decision),
        [(false, "Succeeded")],
        "no Started Event: it never was reported running"
    );
}

#[test]
fn a_succeeded_pod_without_a_finish_time_completes_the_run_now() {
    let mut world = World::new().pod(pod(1, PodProgress::Succeeded));
    world.now = fire() + secs(30);
    let decision = world.decide();
    let status = written(&decision);
    assert_eq!(status.completion_time, Some(world.now));
    assert_eq!(status.duration, None, "no start time, no duration");
}

#[test]
fn a_failed_pod_with_no_retries_left_fails_the_run_with_its_exit_code_and_reason() {
    let started = fire() + secs(2);
    let mut failed = pod(1, PodProgress::Failed);
    failed.report.start_time = Some(started);
    failed.report.completion_time = Some(started + secs(10));
    failed.report.exit_code = Some(3);
    failed.report.message = Some("disk full".into());
    let mut world = World::new().status(running_since(started, 1)).pod(failed);
    world.now = started + secs(12);
    let decision = world.decide();
    assert_eq!(outcome(&decision), (Some(JobRunPhase::Failed), Some("Error")));
    let status = written(&decision);
    let why = format!(
        "pod {} failed with exit code 3 (Error): disk full",
        pod_name(RUN, 1)
    );
    assert_eq!(status.message.as_deref(), Some(why.as_str()));
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.completion_time, Some(started + secs(10)));
    assert_eq!(conditions(status), [("Failed", "True", "Error")]);
    assert_eq!(events(&decision), [(true, "Failed")]);
    assert!(decision.acts.is_empty());
}

#[test]
fn a_pod_failed_without_an_exit_code_names_its_reason() {
    let mut failed = pod(1, PodProgress::Failed);
    failed.report.reason = Some("DeadlineExceeded".into());
    let decision = World::new().pod(failed).decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Failed), Some("DeadlineExceeded"))
    );
    let why = format!("pod {} failed (DeadlineExceeded)", pod_name(RUN, 1));
    assert_eq!(written(&decision).message.as_deref(), Some(why.as_str()));
}

#[test]
fn a_failed_attempt_is_retried_while_backoff_limit_allows_then_the_run_fails() {
    let started = fire() + secs(2);
    let mut world = World::new().status(running_since(started, 1));
    world.run.spec.run.backoff_limit = Some(1);
    let mut first = pod(1, PodProgress::Failed);
    first.report.exit_code = Some(1);
    world = world.pod(first);
    let retry = world.decide();
    assert_eq!(retry.acts, [Act::Start(2)]);
    let status = written(&retry);
    assert_eq!(status.attempts, Some(2));
    assert_eq!(status.reason.as_deref(), Some("Retrying"));
    assert_eq!(
        status.phase,
        Some(JobRunPhase::Running),
        "a retry is not a final phase"
    );
    assert_eq!(status.completion_time, None);
    assert!(status.conditions.is_empty());
    assert_eq!(events(&retry), [(true, "Retrying")]);
    assert!(
        retry.events[0].message.ends_with("; starting attempt 2"),
        "{}",
        retry.events[0].message
    );

    let mut second = pod(2, PodProgress::Failed);
    second.report.exit_code = Some(1);
    let world = world.status(status.clone()).pod(second);
    let failed = world.decide();
    assert_eq!(outcome(&failed), (Some(JobRunPhase::Failed), Some("Error")));
    assert_eq!(written(&failed).attempts, Some(2));
    assert_eq!(written(&failed).pod_name, Some(pod_name(RUN, 2)));
    assert!(failed.acts.is_empty());
}

#[test]
fn a_running_run_a_newer_one_replaces_loses_its_pod_gracefully_under_replace() {
    let world = World::new()
        .status(running_since(fire(), 1))
        .pod(pod(1, PodProgress::Running))
        .replaced_under(ConcurrencyPolicy::Replace);
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::DeletePod(pod_name(RUN, 1), None)]);
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Cancelled), Some("Replaced"))
    );
    assert_eq!(
        written(&decision).message.as_deref(),
        Some("replaced by newer (concurrencyPolicy Replace)")
    );
    assert_eq!(events(&decision), [(false, "Cancelled")]);
}

#[test]
fn a_running_run_a_newer_one_replaces_loses_its_pod_at_once_under_terminate() {
    let world = World::new()
        .status(running_since(fire(), 1))
        .pod(pod(1, PodProgress::Running))
        .replaced_under(ConcurrencyPolicy::Terminate);
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::DeletePod(pod_name(RUN, 1), Some(0))]);
    assert_eq!(written(&decision).phase, Some(JobRunPhase::Cancelled));
}

#[test]
fn a_replaced_run_whose_pod_is_already_being_deleted_deletes_nothing_again() {
    let mut going = pod(1, PodProgress::Running);
    going.deleting = true;
    let mut world = World::new().status(running_since(fire(), 1)).pod(going);
    world.verdict = Some(Verdict::Cancel { by: "newer".into() });
    let decision = world.decide();
    assert!(decision.acts.is_empty());
    assert_eq!(
        written(&decision).message.as_deref(),
        Some("replaced by newer (concurrencyPolicy Replace)"),
        "a run without a pool reads as Replace"
    );
}

/// A Pod that exited 0 before its run's reconcile saw it has done the run's work: a newer run
/// that takes the slot in the meantime (Replace) must not record it as Cancelled.
#[test]
fn a_pod_that_succeeded_before_a_newer_run_replaced_it_ends_succeeded() {
    let mut done = pod(1, PodProgress::Succeeded);
    done.report.completion_time = Some(fire() + secs(59));
    let mut world = World::new()
        .status(running_since(fire(), 1))
        .pod(done)
        .replaced_under(ConcurrencyPolicy::Replace);
    world.now = fire() + secs(60);
    let decision = world.decide();
    assert!(decision.acts.is_empty());
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Succeeded), Some("Completed"))
    );
}

// A run whose Pod went away.

#[test]
fn a_run_whose_pod_was_deleted_fails_with_pod_deleted_when_no_retry_is_left() {
    let mut world = World::new().status(running_since(fire(), 1));
    world.deleted_attempt = Some(1);
    world.now = fire() + secs(40);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Failed), Some("PodDeleted"))
    );
    let status = written(&decision);
    let why = format!("pod {} was deleted before it finished", pod_name(RUN, 1));
    assert_eq!(status.message.as_deref(), Some(why.as_str()));
    assert_eq!(status.completion_time, Some(world.now));
    assert_eq!(status.duration.as_deref(), Some("40s"));
    assert_eq!(events(&decision), [(true, "Failed")]);
}

#[test]
fn a_run_whose_pod_was_deleted_starts_the_next_attempt_while_backoff_limit_allows() {
    let mut world = World::new().status(running_since(fire(), 1));
    world.run.spec.run.backoff_limit = Some(2);
    world.deleted_attempt = Some(1);
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::Start(2)]);
    assert_eq!(written(&decision).attempts, Some(2));
    assert_eq!(written(&decision).reason.as_deref(), Some("Retrying"));
    assert_eq!(events(&decision), [(true, "Retrying")]);
}

#[test]
fn a_deleted_retry_counts_even_while_the_index_still_holds_the_older_attempt() {
    let mut world = World::new()
        .status(running_since(fire(), 2))
        .pod(pod(1, PodProgress::Failed));
    world.run.spec.run.backoff_limit = Some(1);
    world.deleted_attempt = Some(2);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Failed), Some("PodDeleted"))
    );
    assert_eq!(written(&decision).attempts, Some(2));
    assert!(
        decision.acts.is_empty(),
        "attempt 2 was the last backoffLimit 1 allows"
    );
}

#[test]
fn a_deleted_older_attempt_does_not_hide_the_newer_pod() {
    let started = fire() + secs(2);
    let mut newer = pod(2, PodProgress::Running);
    newer.report.start_time = Some(started);
    let mut world = World::new().pod(newer);
    world.deleted_attempt = Some(1);
    world.now = started + secs(10);
    let decision = world.decide();
    assert_eq!(written(&decision).phase, Some(JobRunPhase::Running));
    assert_eq!(written(&decision).pod_name, Some(pod_name(RUN, 2)));
}

#[test]
fn a_run_whose_status_names_a_pod_the_index_no_longer_has_and_never_saw_go_is_lost() {
    let world = World::new().status(running_since(fire(), 1));
    let decision = world.decide();
    assert_eq!(outcome(&decision), (Some(JobRunPhase::Failed), Some("Lost")));
    assert!(
        written(&decision)
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("attempt 1")
    );
    assert!(
        decision.acts.is_empty(),
        "no Start: a missing Pod is not a queued run"
    );
}

// The Job executor.

fn job_world() -> World {
    let mut world = World::new();
    world.executor = Executor::Job;
    world
}

#[test]
fn a_job_run_without_its_job_is_queued_like_a_pod_run() {
    let mut world = job_world();
    world.verdict = Some(Verdict::Wait);
    assert_eq!(
        outcome(&world.decide()),
        (Some(JobRunPhase::Waiting), Some("MaxRunningJobs"))
    );
    world.verdict = None;
    assert_eq!(world.decide().acts, [Act::Start(1)]);
}

#[test]
fn a_job_run_whose_job_was_deleted_fails_with_job_deleted() {
    let mut deleted = job_world();
    deleted.job_deleted = true;
    let mut lost = job_world().status(JobRunStatus {
        pod_name: Some(JOB.into()),
        ..JobRunStatus::default()
    });
    lost.verdict = Some(Verdict::Start);
    for (world, reason) in [(deleted, "JobDeleted"), (lost, "Lost")] {
        let decision = world.decide();
        assert_eq!(
            outcome(&decision),
            (Some(JobRunPhase::Failed), Some(reason)),
            "seen deleted, or gone while its status named it (outcome unknown)"
        );
        assert_eq!(events(&decision), [(true, "Failed")]);
        assert!(
            decision.acts.iter().all(|act| *act == Act::ReleaseSlot),
            "never started again: {:?}",
            decision.acts
        );
    }
}

#[test]
fn the_cancel_annotation_deletes_an_unfinished_job_and_ends_the_run_cancelled() {
    let mut world = job_world().cancel("stop");
    world.job = Some(job(JobReport {
        active: 1,
        ..JobReport::default()
    }));
    let decision = world.decide();
    assert_eq!(decision.acts, [Act::DeleteJob(JOB.into(), None)]);
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Cancelled), Some("CancelRequested"))
    );

    world.job = Some(job(JobReport {
        outcome: Some((true, "CompletionsReached".into(), String::new())),
        ..JobReport::default()
    }));
    let late = world.decide();
    assert!(late.acts.is_empty(), "a finished Job is not deleted");
    assert_eq!(
        outcome(&late),
        (Some(JobRunPhase::Succeeded), Some("CompletionsReached")),
        "a cancel after the Job completed is too late: the success stands"
    );
}

#[test]
fn a_job_run_a_newer_one_replaces_deletes_its_job_with_the_policys_grace() {
    for (policy, grace) in [
        (ConcurrencyPolicy::Replace, None),
        (ConcurrencyPolicy::Terminate, Some(0)),
    ] {
        let mut world = job_world();
        world.job = Some(job(JobReport {
            active: 1,
            ..JobReport::default()
        }));
        world = world.replaced_under(policy);
        let decision = world.decide();
        assert_eq!(decision.acts, [Act::DeleteJob(JOB.into(), grace)], "{policy:?}");
        assert_eq!(
            outcome(&decision),
            (Some(JobRunPhase::Cancelled), Some("Replaced"))
        );
        assert_eq!(events(&decision), [(false, "Cancelled")]);
    }
}

#[test]
fn a_complete_job_ends_the_run_succeeded_with_its_pods_exit_code() {
    let mut world = job_world();
    world.job = Some(job(JobReport {
        failed: 1,
        outcome: Some((true, "CompletionsReached".into(), "done".into())),
        start_time: Some(fire() + secs(1)),
        completion_time: Some(fire() + secs(31)),
        ..JobReport::default()
    }));
    let mut last = pod(1, PodProgress::Succeeded);
    last.report.exit_code = Some(0);
    last.report.result = Some("ok".into());
    world = world.pod(last);
    world.now = fire() + secs(40);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Succeeded), Some("CompletionsReached"))
    );
    let status = written(&decision);
    assert_eq!(status.pod_name.as_deref(), Some(JOB), "a Job run names its Job");
    assert_eq!(
        status.attempts,
        Some(2),
        "one failed Pod and the one that completed"
    );
    assert_eq!(status.completion_time, Some(fire() + secs(31)));
    assert_eq!(status.duration.as_deref(), Some("30s"));
    assert_eq!(
        (status.exit_code, status.result.as_deref()),
        (Some(0), Some("ok"))
    );
    assert_eq!(conditions(status), [("Complete", "True", "CompletionsReached")]);
    assert_eq!(events(&decision), [(false, "Succeeded")]);
}

/// As for a Pod: a Job that completed before its run's reconcile saw it has done the run's
/// work, whatever admission says now.
#[test]
fn a_job_that_completed_before_a_newer_run_replaced_it_ends_succeeded() {
    let mut world = job_world();
    world.job = Some(job(JobReport {
        outcome: Some((true, "CompletionsReached".into(), String::new())),
        completion_time: Some(fire() + secs(59)),
        ..JobReport::default()
    }));
    world = world.replaced_under(ConcurrencyPolicy::Replace);
    world.now = fire() + secs(60);
    let decision = world.decide();
    assert!(decision.acts.is_empty());
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Succeeded), Some("CompletionsReached"))
    );
}

#[test]
fn a_failed_job_ends_the_run_failed_with_the_jobs_reason() {
    let mut world = job_world();
    world.job = Some(job(JobReport {
        failed: 2,
        outcome: Some((false, "BackoffLimitExceeded".into(), "too many failures".into())),
        ..JobReport::default()
    }));
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Failed), Some("BackoffLimitExceeded"))
    );
    let status = written(&decision);
    assert_eq!(
        status.message.as_deref(),
        Some(format!("job {JOB} failed (BackoffLimitExceeded): too many failures").as_str())
    );
    assert_eq!(status.attempts, Some(2));
    assert_eq!(status.completion_time, Some(world.now));
    assert_eq!(events(&decision), [(true, "Failed")]);
}

#[test]
fn a_suspended_job_keeps_the_run_pending_with_reason_suspended() {
    let mut world = job_world();
    world.job = Some(job(JobReport {
        suspended: true,
        ..JobReport::default()
    }));
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Pending), Some("Suspended"))
    );
    assert_eq!(written(&decision).pod_name.as_deref(), Some(JOB));
    assert_eq!(written(&decision).attempts, Some(1));
}

#[test]
fn an_active_job_is_reported_running_after_the_report_delay_and_only_once() {
    let started = fire() + secs(3);
    let mut world = job_world();
    world.job = Some(job(JobReport {
        active: 1,
        start_time: Some(started),
        ..JobReport::default()
    }));
    world.now = started + secs(5);
    assert_eq!(world.decide(), Decision::wait_until(started + secs(10)));

    world.now = started + secs(10);
    let decision = world.decide();
    assert_eq!(written(&decision).phase, Some(JobRunPhase::Running));
    assert_eq!(written(&decision).start_time, Some(started));
    assert_eq!(events(&decision), [(false, "Started")]);
    assert_eq!(decision.events[0].message, format!("job {JOB} is running"));

    let mut again = job_world().status(written(&decision).clone());
    again.job = Some(job(JobReport {
        active: 1,
        start_time: Some(started),
        ..JobReport::default()
    }));
    again.now = started + secs(60);
    assert_eq!(again.decide(), Decision::default());
}

#[test]
fn a_job_with_nothing_active_and_no_outcome_writes_nothing() {
    let mut world = job_world();
    world.job = Some(job(JobReport::default()));
    assert_eq!(world.decide(), Decision::default());
}

#[test]
fn a_waiting_run_whose_schedule_is_gone_ends_cancelled_and_never_starts() {
    let mut world = World::new().status(JobRunStatus {
        phase: Some(JobRunPhase::Waiting),
        ..JobRunStatus::default()
    });
    world.verdict = Some(Verdict::Start);
    world.orphaned = Some(("ScheduleDeleted", "Schedule nightly was deleted"));
    let decision = world.decide();
    assert_eq!(
        decision.acts,
        [Act::ReleaseSlot],
        "never starts: the reserved slot goes back"
    );
    let status = decision.status.unwrap_or_default();
    assert_eq!(status.phase, Some(JobRunPhase::Cancelled));
    assert_eq!(status.reason.as_deref(), Some("ScheduleDeleted"));
    assert_eq!(decision.events.len(), 1);

    // A run that has started follows its Pod to the end.
    let mut started = World::new().pod(pod(1, PodProgress::Running));
    started.orphaned = Some(("ScheduleDeleted", "Schedule nightly was deleted"));
    assert_ne!(
        started.decide().status.and_then(|s| s.phase),
        Some(JobRunPhase::Cancelled)
    );
}

// The slot a decision gives back.

#[test]
fn a_run_admission_lets_start_gives_its_slot_back_when_it_is_cancelled_instead() {
    let mut world = World::new();
    world.orphaned = Some(("ScheduleDeleted", "Schedule nightly was deleted"));
    world.verdict = Some(Verdict::Start);
    let decision = world.decide();
    assert_eq!(
        outcome(&decision),
        (Some(JobRunPhase::Cancelled), Some("ScheduleDeleted"))
    );
    assert_eq!(decision.acts, [Act::ReleaseSlot]);
    let mut world = World::new().cancel("yes");
    world.verdict = Some(Verdict::Start);
    assert_eq!(world.decide().acts, [Act::ReleaseSlot]);
}

#[test]
fn a_run_admission_did_not_let_start_gives_nothing_back() {
    for verdict in [
        None,
        Some(Verdict::Keep),
        Some(Verdict::Wait),
        Some(Verdict::Cancel { by: "newer".into() }),
    ] {
        let mut world = World::new();
        world.orphaned = Some(("ScheduleDeleted", "Schedule nightly was deleted"));
        world.verdict = verdict.clone();
        let decision = world.decide();
        assert!(
            !decision.acts.contains(&Act::ReleaseSlot),
            "{verdict:?}: {:?}",
            decision.acts
        );
    }
}

#[test]
fn a_started_run_that_admission_says_start_of_gives_the_reservation_back_and_is_followed() {
    let mut world = World::new()
        .status(running_since(fire() + secs(1), 1))
        .pod(pod(1, PodProgress::Running));
    world.verdict = Some(Verdict::Start);
    world.now = fire() + secs(30);
    assert_eq!(world.decide().acts, [Act::ReleaseSlot]);
}
