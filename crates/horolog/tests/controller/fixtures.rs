//! Builders for Schedules and JobRuns, so each test shows only what matters to it, and a
//! stand-in trigger engine (interval and date triggers) for the controller tests.
// Each test binary (controller, exactly_once, controls, ...) uses its own part of the harness.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use horolog::api::{
    CoalescePolicy, ConcurrencyPolicy, Duration, JobRun, JobRunSpec, JobRunTemplate, JobTemplate, Schedule,
    ScheduleSpec, TriggerSpec,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

/// 2026-01-01T00:00:00Z: where every test's clock starts.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// `t0()` plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(secs)
}

fn duration(text: &str) -> Duration {
    text.parse()
        .unwrap_or_else(|err| panic!("bad test duration {text:?}: {err}"))
}

/// The pod every test runs: busybox writing its result to the termination log.
pub fn busybox() -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo ok > /dev/termination-log".into(),
                ]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// A Schedule firing every `interval` (e.g. `"1m"`) from its creation time, with defaults.
pub fn every(name: &str, interval: &str) -> Schedule {
    schedule(
        name,
        TriggerSpec {
            interval: Some(duration(interval)),
            ..TriggerSpec::default()
        },
    )
}

/// A Schedule with the given trigger and defaults for everything else.
pub fn schedule(name: &str, trigger: TriggerSpec) -> Schedule {
    Schedule::new(
        name,
        ScheduleSpec {
            trigger,
            coalesce: CoalescePolicy::Latest,
            job_template: Some(JobTemplate {
                metadata: None,
                spec: JobRunTemplate {
                    template: Some(busybox().into()),
                    ..JobRunTemplate::default()
                },
            }),
            ..ScheduleSpec::default()
        },
    )
}

/// Changes to a Schedule fixture, chained: `every("s", "1m").coalesce(All).grace("30s")`.
pub trait ScheduleExt: Sized {
    /// Sets `coalesce`.
    fn coalesce(self, policy: CoalescePolicy) -> Self;
    /// Sets `misfireGraceTime`.
    fn grace(self, grace: &str) -> Self;
    /// Sets `maxRunningJobs` and `concurrencyPolicy`.
    fn max_running(self, limit: i32, policy: ConcurrencyPolicy) -> Self;
    /// Sets both history limits.
    fn history(self, successful: i32, failed: i32) -> Self;
    /// Sets `jobTemplate.spec.backoffLimit`.
    fn backoff_limit(self, retries: i32) -> Self;
    /// Sets `jobTemplate.spec.resultTTL`.
    fn result_ttl(self, ttl: &str) -> Self;
    /// Sets `trigger.endTime`.
    fn ends_at(self, end: DateTime<Utc>) -> Self;
    /// Sets `maxJitter`.
    fn jitter(self, max: &str) -> Self;
    /// Sets `stageAhead`.
    fn stage_ahead(self, ahead: &str) -> Self;
}

impl ScheduleExt for Schedule {
    fn coalesce(mut self, policy: CoalescePolicy) -> Self {
        self.spec.coalesce = policy;
        self
    }
    fn grace(mut self, grace: &str) -> Self {
        self.spec.misfire_grace_time = Some(duration(grace));
        self
    }
    fn max_running(mut self, limit: i32, policy: ConcurrencyPolicy) -> Self {
        self.spec.max_running_jobs = Some(limit);
        self.spec.concurrency_policy = Some(policy);
        self
    }
    fn history(mut self, successful: i32, failed: i32) -> Self {
        self.spec.successful_runs_history_limit = Some(successful);
        self.spec.failed_runs_history_limit = Some(failed);
        self
    }
    fn backoff_limit(mut self, retries: i32) -> Self {
        if let Some(template) = self.spec.job_template.as_mut() {
            template.spec.backoff_limit = Some(retries);
        }
        self
    }
    fn result_ttl(mut self, ttl: &str) -> Self {
        if let Some(template) = self.spec.job_template.as_mut() {
            template.spec.result_ttl = Some(duration(ttl));
        }
        self
    }
    fn ends_at(mut self, end: DateTime<Utc>) -> Self {
        self.spec.trigger.end_time = Some(end.fixed_offset());
        self
    }
    fn jitter(mut self, max: &str) -> Self {
        self.spec.max_jitter = Some(duration(max));
        self
    }
    fn stage_ahead(mut self, ahead: &str) -> Self {
        self.spec.stage_ahead = Some(duration(ahead));
        self
    }
}

/// A one-off JobRun (no Schedule), as a user would create it.
pub fn one_off(name: &str) -> JobRun {
    JobRun::new(
        name,
        JobRunSpec {
            run: JobRunTemplate {
                template: Some(busybox().into()),
                ..JobRunTemplate::default()
            },
            ..JobRunSpec::default()
        },
    )
}
