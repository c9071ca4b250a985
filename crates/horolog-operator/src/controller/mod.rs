//! The reconcilers — Schedule (fires JobRuns), JobRun (runs Pods or Jobs), Task, Backfill,
//! Calendar —
//! their shared [`Context`], and their configuration. `wiring.rs` connects them to the API
//! server; each reconciler reads the caches, calls its pure decision (`decide.rs`) and carries
//! it out.

mod admission;
pub mod attempt;
pub mod backfill;
pub mod calendar;
mod context;
mod error;
pub mod events;
pub mod index;
pub mod invalid;
pub mod jobrun;
mod queue;
mod recovery;
pub mod schedule;
pub mod status;
pub mod task;
#[cfg(test)]
mod test_support;
mod tracking;
pub mod trim;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use kube::runtime::reflector;

pub use context::{Context, Observer, ScheduleState, Stores};
pub use error::{Error, ErrorKind};
pub use events::EventPolicy;
pub use recovery::retry_delay;
pub use status::status_diff;

use crate::api::{Duration as ApiDuration, Executor};
use error::is_already_exists;

/// The field manager and event reporter name of the operator.
pub const MANAGER: &str = "horolog";

pub use wiring::run;

/// How soon a reconcile skipped because the cache is behind our own write looks again,
/// should the write's watch event not come.
pub(crate) const BEHIND_OWN_WRITE_RECHECK: Duration = Duration::from_secs(5);

/// Operator-wide defaults for what Schedules and Tasks leave unset (APScheduler's
/// TaskDefaults). Precedence: Schedule > Task > these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `--default-misfire-grace-time`.
    pub misfire_grace_time: Option<ApiDuration>,
    /// `--default-max-running-jobs`.
    pub max_running_jobs: Option<i32>,
    /// `--default-executor`.
    pub executor: Executor,
}

/// `--concurrency`'s default: reconciles of each kind that run at once. Chosen by measurement
/// (BENCHMARKS.md, "The top of the minute"): with 8, a thousand Schedules due at one instant
/// queued 125 reconciles (375 API round trips) deep per worker. Each reconcile in flight
/// holds a request at the API server (and, over HTTP/1.1, a pooled connection).
pub const DEFAULT_CONCURRENCY: u16 = 64;

/// How the controllers run.
#[derive(Clone)]
pub struct ControllerConfig {
    /// The namespace to watch; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// How many reconciles of each kind run at once (`--concurrency`; [`DEFAULT_CONCURRENCY`]
    /// in the operator; 4 in this type's `Default`, which tests and local mode use).
    pub concurrency: u16,
    /// The catch-up bound of the planner.
    pub catch_up: horolog_core::plan::CatchUp,
    /// What Schedules and Tasks leave unset.
    pub defaults: Defaults,
    /// Which Events are published.
    pub events: EventPolicy,
    /// How long a Schedule's status may wait to record runs that succeeded
    /// (`--schedule-status-delay`), so that one write per fire carries them.
    pub status_delay: Duration,
    /// How long before its fire time a Schedule's next JobRun is created, for Schedules that
    /// leave `stageAhead` unset (`--stage-ahead`, 30s in the operator; zero, off, in this
    /// type's `Default`, which tests and local mode use).
    pub stage_ahead: Duration,
    /// How long a Pod must have run before its run is reported Running.
    pub running_report_delay: TimeDelta,
    /// Run `executor: Job` runs as batch/v1 Jobs (`--job-executor`).
    pub job_executor: bool,
    /// The event reporter instance (e.g. the pod name); `None` uses the manager name.
    pub instance: Option<String>,
    /// Metrics hooks.
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 4,
            catch_up: horolog_core::plan::CatchUp::default(),
            defaults: Defaults::default(),
            events: EventPolicy::default(),
            status_delay: Duration::from_secs(60),
            stage_ahead: Duration::ZERO,
            running_report_delay: jobrun::RUNNING_REPORT_DELAY,
            job_executor: false,
            instance: None,
            observer: None,
        }
    }
}

impl ControllerConfig {
    /// Watches only `namespace`.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("namespace", &self.namespace)
            .field("concurrency", &self.concurrency)
            .field("catch_up", &self.catch_up)
            .field("defaults", &self.defaults)
            .field("events", &self.events)
            .field("status_delay", &self.status_delay)
            .field("stage_ahead", &self.stage_ahead)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The watch backoff: a watch that fails retries after 200 ms, doubling to at most 2 s, so
/// the caches follow the API server within seconds of an outage's end (kube's default waits
/// up to 30 s).
struct WatchBackoff(Duration);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff(Duration::from_millis(200))
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = WatchBackoff::default();
    }
}

/// Empty stores, for code that builds a [`Context`] by hand (benches, tests).
pub fn empty_stores() -> Stores {
    Stores {
        schedules: reflector::store().0,
        jobruns: reflector::store().0,
        tasks: reflector::store().0,
        backfills: reflector::store().0,
        calendars: reflector::store().0,
    }
}
