//! Prometheus metrics of the operator, and the small HTTP server that exposes them
//! together with the liveness (`/healthz`) and readiness (`/readyz`) probes.
//!
//! horolog's own metrics are named `horolog_*`. Beside them the same facts are exported under
//! the names controller-runtime and client-go operators use (`workqueue_*`,
//! `controller_runtime_reconcile_*`, `rest_client_requests_total`) and the `process_*` series
//! of the Prometheus client libraries, so stock dashboards and alerts work unchanged (see
//! [`Ecosystem`]). The reconcilers hold a [`Metrics`] (cheap to clone: every handle inside
//! shares its counters) and call its methods; the server renders the registry in the
//! OpenMetrics text format on each scrape.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use tokio::net::TcpListener;

/// Buckets of `horolog_fire_delay_seconds`: a healthy operator creates pods within tens of
/// milliseconds of the fire time; seconds mean a busy API server, a minute means trouble.
const FIRE_DELAY_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Buckets of `horolog_reconcile_duration_seconds`: a reconcile is a few API calls.
const RECONCILE_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a watch must have kept failing before `/readyz` answers 503: a watch that only
/// failed in passing (a restarted API server, a dropped connection) resumes within seconds.
const WATCH_STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// A pause this long between two failures of a watch ends its run of failures (a stuck watch
/// retries at least every 2 s, see `WatchBackoff`).
const WATCH_FAILURE_GAP: std::time::Duration = std::time::Duration::from_secs(60);

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The OpenMetrics content type Prometheus negotiates for the text format.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of the Kubernetes API request duration (seconds), as client-go's
/// `rest_client_request_duration_seconds`.
const API_REQUEST_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabels {
    namespace: String,
    schedule: String,
}

/// A per-Schedule series with the reason of a condition (`horolog_schedule_ready`,
/// `horolog_schedule_paused`): one series per Schedule, its reason the condition's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    namespace: String,
    schedule: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    schedule: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// controller-runtime's workqueue label: the queue's name (the controller).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

/// client-go's `rest_client_requests_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestLabels {
    code: String,
    method: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// The per-Schedule series (`--schedule-metrics`): about 12 series per Schedule (seven
/// gauges, the last run's duration, and a counter per outcome that occurred), named as
/// kube-state-metrics names a CronJob's.
#[derive(Clone, Default)]
struct PerSchedule {
    enabled: Arc<AtomicBool>,
    ready: Family<ReasonLabels, Gauge>,
    paused: Family<ReasonLabels, Gauge>,
    active_runs: Family<ScheduleLabels, Gauge>,
    consecutive_failures: Family<ScheduleLabels, Gauge>,
    /// The reasons of each Schedule's `ready` and `paused` series, so a new reason replaces
    /// the old series instead of adding one.
    reasons: Arc<std::sync::Mutex<std::collections::HashMap<ScheduleLabels, [String; 2]>>>,
    next_fire: Family<ScheduleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    last_success: Family<ScheduleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    interval: Family<ScheduleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    last_duration: Family<ScheduleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    runs: Family<OutcomeLabels, Counter>,
    excluded: Family<ScheduleLabels, Counter>,
}

/// The reconciles of each controller: how many started, how long they took, which failed.
#[derive(Clone)]
struct ReconcileMetrics {
    started: Family<ControllerLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    errors: Family<ErrorLabels, Counter>,
    queue_depth: Family<ControllerLabels, Gauge>,
}

/// The operator's requests to the Kubernetes API: how many, and how long they took.
#[derive(Clone)]
struct ApiRequestMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<VerbLabels, Histogram>,
}

/// The series under the names of controller-runtime, client-go and the Prometheus client
/// libraries' process collector, fed by the same hooks as horolog's own.
#[derive(Clone)]
struct Ecosystem {
    workqueue_depth: Family<NameLabels, Gauge>,
    workqueue_adds: Family<NameLabels, Counter>,
    workqueue_queue_duration: Family<NameLabels, Histogram>,
    workqueue_work_duration: Family<NameLabels, Histogram>,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_time: Family<ControllerLabels, Histogram>,
    rest_requests: Family<RestLabels, Counter>,
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    resident_memory: Gauge,
    open_fds: Gauge,
    start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// The outcomes `horolog_schedule_runs_total` counts, so a Schedule's series can be removed.
const OUTCOMES: [&str; 5] = ["Succeeded", "Failed", "Missed", "Skipped", "Cancelled"];

/// The operator's metrics. Clone it freely: clones update the same series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    fire_delay: Histogram,
    jobrun_phase: Family<PhaseLabels, Counter>,
    missed: Counter,
    coalesced: Counter,
    excluded: Counter,
    skipped: Counter,
    reconciles: ReconcileMetrics,
    active_jobruns: Gauge,
    api_requests: ApiRequestMetrics,
    /// Counts unfinished JobRuns at scrape time (set once the controllers' caches exist);
    /// one count per scrape instead of bookkeeping on every transition.
    active_source: Arc<std::sync::Mutex<Option<ActiveSource>>>,
    leader: Gauge,
    schedules: PerSchedule,
    /// Objects that do not decode into the operator's types, by kind.
    invalid_objects: Family<KindLabels, Gauge>,
    /// Watch failures, by kind.
    watch_errors: Family<KindLabels, Counter>,
    /// For each kind whose watch is failing: when its run of failures began, and its latest.
    watch_failures: Arc<std::sync::Mutex<std::collections::HashMap<&'static str, (Instant, Instant)>>>,
    ecosystem: Ecosystem,
}

type ActiveSource = Box<dyn Fn() -> i64 + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The registry's Debug output is every series; that is noise in a Context dump.
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every horolog metric registered (and at zero).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("horolog");
        let fire_delay = registered_in_seconds(
            r,
            "fire_delay",
            "Time from a JobRun's scheduled fire time to the creation of its pod",
            Histogram::new(FIRE_DELAY_BUCKETS),
        );
        let jobrun_phase = registered(
            r,
            "jobrun_phase_transitions",
            "JobRun phase transitions, by the phase entered",
            Family::default(),
        );
        let missed = registered(
            r,
            "missed_fire_times",
            "Fire times recorded as Missed (their start deadline passed before a pod could start)",
            Counter::default(),
        );
        let coalesced = registered(
            r,
            "coalesced_fire_times",
            "Fire times merged away by a Schedule's coalesce policy",
            Counter::default(),
        );
        let excluded = registered(
            r,
            "excluded_fire_times",
            "Fire times a Calendar or trigger.exclude excluded: no run (never a miss), counted \
             in the Schedule's status.excludedFireTimes",
            Counter::default(),
        );
        let skipped = registered(
            r,
            "skipped_runs",
            "Runs dropped by concurrencyPolicy Skip",
            Counter::default(),
        );
        let reconciles = ReconcileMetrics::registered(r);
        let active_jobruns = registered(
            r,
            "active_jobruns",
            "JobRuns not yet finished (Pending, Waiting or Running)",
            Gauge::default(),
        );
        let api_requests = ApiRequestMetrics::registered(r);
        let leader = registered(
            r,
            "leader",
            "1 while this replica holds the leader lease (or runs without leader election), else 0",
            Gauge::default(),
        );
        register_build_info(r);
        let schedules = PerSchedule::registered(r);
        let invalid_objects = registered(
            r,
            "invalid_objects",
            "Objects the operator cannot read (they do not decode into its types; each has \
             Ready=False reason InvalidSpec) and ignores until fixed, by kind",
            Family::default(),
        );
        let watch_errors = registered(
            r,
            "watch_errors",
            "Failed watch or list requests, by kind; each is retried with a backoff. A count that \
             keeps rising means that kind's cache is not being updated",
            Family::default(),
        );
        let ecosystem = Ecosystem::registered(&mut registry);
        Metrics {
            registry: Arc::new(registry),
            fire_delay,
            jobrun_phase,
            missed,
            coalesced,
            excluded,
            skipped,
            reconciles,
            active_jobruns,
            api_requests,
            active_source: Arc::default(),
            leader,
            schedules,
            invalid_objects,
            watch_errors,
            watch_failures: Arc::default(),
            ecosystem,
        }
    }

    /// Records that the watch of `kind` failed at `now`.
    pub fn watch_failed_at(&self, kind: &'static str, now: Instant) {
        self.watch_errors
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
        let mut failures = self.watch_failures.lock().unwrap_or_else(|p| p.into_inner());
        let run = failures.entry(kind).or_insert((now, now));
        if now.saturating_duration_since(run.1) > WATCH_FAILURE_GAP {
            run.0 = now;
        }
        run.1 = now;
    }

    /// The kinds whose watch has kept failing for [`WATCH_STUCK_AFTER`] up to `now`: their
    /// cache no longer follows the cluster.
    pub fn stuck_watches(&self, now: Instant) -> Vec<&'static str> {
        let failures = self.watch_failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut stuck: Vec<&'static str> = failures
            .iter()
            .filter(|(_, (first, last))| {
                now.saturating_duration_since(*last) <= WATCH_FAILURE_GAP
                    && last.saturating_duration_since(*first) >= WATCH_STUCK_AFTER
            })
            .map(|(kind, _)| *kind)
            .collect();
        stuck.sort_unstable();
        stuck
    }

    /// Turns the per-Schedule series on or off (`--schedule-metrics`).
    pub fn per_schedule(&self, enabled: bool) {
        self.schedules.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Records how late a JobRun's pod was created, in seconds after its scheduled fire time.
    ///
    /// Negative values (the pod's clock ahead of the fire time's) are recorded as 0:
    /// OpenMetrics histograms may not observe negative values.
    pub fn observe_fire_delay(&self, seconds: f64) {
        if seconds.is_finite() {
            self.fire_delay.observe(seconds.max(0.0));
        }
    }

    /// Counts a JobRun entering `phase` (`Pending`, `Running`, `Succeeded`, ...).
    pub fn jobrun_phase(&self, phase: &str) {
        self.jobrun_phase
            .get_or_create(&PhaseLabels {
                phase: phase.to_owned(),
            })
            .inc();
    }

    /// Counts `n` fire times recorded as Missed.
    pub fn missed(&self, n: u64) {
        self.missed.inc_by(n);
    }

    /// Counts `n` fire times merged away by coalescing.
    pub fn coalesced(&self, n: u64) {
        self.coalesced.inc_by(n);
    }

    /// Counts `n` fire times excluded by a Calendar or trigger.exclude.
    pub fn excluded(&self, n: u64) {
        self.excluded.inc_by(n);
    }

    /// Counts `n` runs dropped by concurrencyPolicy Skip.
    pub fn skipped(&self, n: u64) {
        self.skipped.inc_by(n);
    }

    /// Counts a reconcile of `controller` and starts timing it; the duration is
    /// recorded when the timer is finished or dropped, so early returns are measured too.
    pub fn reconcile_started(&self, controller: &str) -> ReconcileTimer {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconciles.started.get_or_create(&labels).inc();
        ReconcileTimer {
            histogram: Some(self.reconciles.duration.get_or_create_owned(&labels)),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile of `controller`. `reason` must come from a small fixed set
    /// (an error variant's name, not its message): every distinct value is a new series.
    pub fn reconcile_error(&self, controller: &str, reason: &str) {
        let labels = ErrorLabels {
            controller: controller.to_owned(),
            reason: reason.to_owned(),
        };
        self.reconciles.errors.get_or_create(&labels).inc();
    }

    /// Sets how many objects of `controller`'s kind wait for a reconcile.
    pub fn set_queue_depth(&self, controller: &str, depth: usize) {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconciles
            .queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.ecosystem
            .workqueue_depth
            .get_or_create(&NameLabels {
                name: controller.to_owned(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts one Kubernetes API request and how long its response took.
    pub fn observe_api_request(&self, request: &ApiRequest, code: &str, seconds: f64) {
        let labels = RequestLabels {
            verb: request.verb.to_owned(),
            resource: request.resource.clone(),
            code: code.to_owned(),
        };
        self.api_requests.requests.get_or_create(&labels).inc();
        let verb = VerbLabels {
            verb: request.verb.to_owned(),
        };
        self.api_requests.duration.get_or_create(&verb).observe(seconds);
        self.ecosystem
            .rest_requests
            .get_or_create(&RestLabels {
                code: code.to_owned(),
                method: request.method().to_owned(),
                host: request.host.clone(),
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Makes `/metrics` count the active JobRuns with `count` at every scrape.
    pub fn count_active_jobruns_with(&self, count: impl Fn() -> i64 + Send + Sync + 'static) {
        *self.active_source.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(count));
    }

    /// The registry in the OpenMetrics text format, as `/metrics` serves it.
    pub fn encode(&self) -> String {
        if let Some(count) = self
            .active_source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            self.active_jobruns.set(count());
        }
        self.ecosystem.read_process();
        let mut out = String::new();
        if let Err(error) = encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; an error here is a bug in a metric's encoder,
            // and a scrape with partial output is better than a crashed operator.
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}

/// `metric`, registered in `registry` as `name` with `help`; the registry keeps a clone, which
/// shares the series.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// [`registered`], for a metric measured in seconds (its name gets the `_seconds` suffix).
fn registered_in_seconds<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

/// `horolog_build_info`: the operator's version as a label, always 1.
fn register_build_info(registry: &mut Registry) {
    let build_info = Family::<BuildLabels, Gauge>::default();
    build_info
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
    registry.register(
        "build_info",
        "The operator's version, as a label; always 1",
        build_info,
    );
}

impl ReconcileMetrics {
    /// The reconcile families, registered in `registry`.
    fn registered(registry: &mut Registry) -> Self {
        ReconcileMetrics {
            started: registered(
                registry,
                "reconciles",
                "Reconciles started, by controller",
                Family::default(),
            ),
            duration: registered_in_seconds(
                registry,
                "reconcile_duration",
                "Duration of reconciles, by controller",
                Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS)),
            ),
            errors: registered(
                registry,
                "reconcile_errors",
                "Reconciles that returned an error, by controller and error kind",
                Family::default(),
            ),
            queue_depth: registered(
                registry,
                "reconcile_queue_depth",
                "Objects waiting for a reconcile a watch event or the recovery asked for, by \
                 controller (timed requeues not counted)",
                Family::default(),
            ),
        }
    }
}

impl ApiRequestMetrics {
    /// The API request families, registered in `registry`.
    fn registered(registry: &mut Registry) -> Self {
        ApiRequestMetrics {
            requests: registered(
                registry,
                "api_requests",
                "Requests to the Kubernetes API, by verb (get, list, watch, create, update, patch, \
                 delete), resource (with subresource, e.g. jobruns/status) and HTTP status code",
                Family::default(),
            ),
            duration: registered_in_seconds(
                registry,
                "api_request_duration",
                "Time from sending a Kubernetes API request to its response headers (a watch: to \
                 its start), by verb; excludes waiting for the --kube-qps limit",
                Family::new_with_constructor(|| Histogram::new(API_REQUEST_BUCKETS)),
            ),
        }
    }
}

impl PerSchedule {
    /// The per-Schedule families, enabled, registered in `registry`.
    fn registered(registry: &mut Registry) -> Self {
        PerSchedule {
            enabled: Arc::new(AtomicBool::new(true)),
            ready: registered(
                registry,
                "schedule_ready",
                "1 while a Schedule's Ready condition is True (paused and finished included), 0 \
                 while a person must act; reason: the condition's",
                Family::default(),
            ),
            paused: registered(
                registry,
                "schedule_paused",
                "1 while a Schedule is paused; reason: Paused (spec.paused), TooManyFailures \
                 (pauseAfterFailures) or NotPaused",
                Family::default(),
            ),
            active_runs: registered(
                registry,
                "schedule_active_runs",
                "A Schedule's runs not yet finished and counted (status.activeCount)",
                Family::default(),
            ),
            consecutive_failures: registered(
                registry,
                "schedule_consecutive_failures",
                "Failed runs of a Schedule in a row (status.consecutiveFailures)",
                Family::default(),
            ),
            reasons: Arc::default(),
            next_fire: registered(
                registry,
                "schedule_next_fire_time_seconds",
                "A Schedule's next fire time (Unix seconds); absent while it does not fire",
                Family::default(),
            ),
            last_success: registered(
                registry,
                "schedule_last_successful_time_seconds",
                "The fire time of a Schedule's latest successful run (Unix seconds)",
                Family::default(),
            ),
            interval: registered(
                registry,
                "schedule_interval_seconds",
                "The time between a Schedule's next two fire times",
                Family::default(),
            ),
            last_duration: registered(
                registry,
                "schedule_last_run_duration_seconds",
                "How long a Schedule's latest finished run ran",
                Family::default(),
            ),
            runs: registered(
                registry,
                "schedule_runs",
                "A Schedule's runs that finished, by outcome (the JobRun's final phase)",
                Family::default(),
            ),
            excluded: registered(
                registry,
                "schedule_excluded_fire_times",
                "A Schedule's fire times a Calendar or trigger.exclude excluded (no run)",
                Family::default(),
            ),
        }
    }
}

/// Buckets of controller-runtime's `workqueue_*_duration_seconds`.
const WORKQUEUE_BUCKETS: [f64; 10] = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0];

impl Ecosystem {
    /// The ecosystem's families, registered in `registry` (no prefix).
    fn registered(registry: &mut Registry) -> Self {
        let workqueue = || Histogram::new(WORKQUEUE_BUCKETS);
        let ecosystem = Ecosystem {
            workqueue_depth: registered(
                registry,
                "workqueue_depth",
                "Current depth of workqueue (objects waiting for a reconcile), by controller",
                Family::default(),
            ),
            workqueue_adds: registered(
                registry,
                "workqueue_adds",
                "Total number of adds handled by workqueue",
                Family::default(),
            ),
            workqueue_queue_duration: registered_in_seconds(
                registry,
                "workqueue_queue_duration",
                "How long in seconds an item stays in workqueue before being requested",
                Family::new_with_constructor(workqueue),
            ),
            workqueue_work_duration: registered_in_seconds(
                registry,
                "workqueue_work_duration",
                "How long in seconds processing an item from workqueue takes",
                Family::new_with_constructor(workqueue),
            ),
            reconcile_total: registered(
                registry,
                "controller_runtime_reconcile",
                "Total number of reconciliations per controller, by result (success, error)",
                Family::default(),
            ),
            reconcile_errors: registered(
                registry,
                "controller_runtime_reconcile_errors",
                "Total number of reconciliation errors per controller",
                Family::default(),
            ),
            reconcile_time: registered_in_seconds(
                registry,
                "controller_runtime_reconcile_time",
                "Length of time per reconciliation per controller",
                Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS)),
            ),
            rest_requests: registered(
                registry,
                "rest_client_requests",
                "Number of HTTP requests, partitioned by status code, method, and host",
                Family::default(),
            ),
            cpu_seconds: registered_in_seconds(
                registry,
                "process_cpu",
                "Total user and system CPU time spent in seconds",
                Counter::default(),
            ),
            resident_memory: registry_unit(
                registry,
                "process_resident_memory",
                "Resident memory size in bytes",
                Unit::Bytes,
                Gauge::default(),
            ),
            open_fds: registered(
                registry,
                "process_open_fds",
                "Number of open file descriptors",
                Gauge::default(),
            ),
            start_time: registered_in_seconds(
                registry,
                "process_start_time",
                "Start time of the process since unix epoch in seconds",
                Gauge::default(),
            ),
        };
        ecosystem.read_process();
        ecosystem
    }

    fn reconciled(&self, controller: &str, elapsed: std::time::Duration, failed: bool) {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        let result = if failed { "error" } else { "success" };
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: controller.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if failed {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
        self.reconcile_time
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.workqueue_work_duration
            .get_or_create(&NameLabels {
                name: controller.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Reads the process series from /proc/self (Linux; elsewhere they stay 0).
    fn read_process(&self) {
        let Some(process) = process::read() else {
            return;
        };
        let cpu = self.cpu_seconds.get();
        if process.cpu_seconds > cpu {
            self.cpu_seconds.inc_by(process.cpu_seconds - cpu);
        }
        self.resident_memory.set(process.resident_bytes);
        self.open_fds.set(process.open_fds);
        self.start_time.set(process.start_time_seconds);
    }
}

/// `metric`, registered in `registry` as `name` with `help` and `unit`.
fn registry_unit<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Unit,
    metric: M,
) -> M {
    registry.register_with_unit(name, help, unit, metric.clone());
    metric
}

/// What /proc/self says about this process.
mod process {
    /// The process collector's facts.
    pub(super) struct Process {
        pub(super) cpu_seconds: f64,
        pub(super) resident_bytes: i64,
        pub(super) open_fds: i64,
        pub(super) start_time_seconds: f64,
    }

    /// Reads /proc/self/stat, /proc/self/status, /proc/self/fd and /proc/stat; `None` where
    /// there is no /proc.
    pub(super) fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: split after it.
        let after = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields from 3 on, so index = field number - 3.
        let number = |field: usize| fields.get(field - 3).and_then(|v| v.parse::<f64>().ok());
        let ticks = clock_ticks();
        let cpu_seconds = (number(14)? + number(15)?) / ticks;
        let start_ticks = number(22)?;
        // VmRSS is in kB whatever the page size (4 KiB, or 64 KiB on some arm64 kernels).
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<i64>()
                    .ok()
            })?
            * 1024;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as i64);
        Some(Process {
            cpu_seconds,
            resident_bytes,
            open_fds,
            start_time_seconds: boot + start_ticks / ticks,
        })
    }

    /// USER_HZ: 100 on every Linux architecture Kubernetes runs on.
    fn clock_ticks() -> f64 {
        100.0
    }
}

/// Times one reconcile; records the duration once, on [`ReconcileTimer::finish`] or on drop.
#[must_use = "the duration is recorded when the timer is finished or dropped"]
#[derive(Debug)]
pub struct ReconcileTimer {
    histogram: Option<Histogram>,
    start: Instant,
}

impl ReconcileTimer {
    /// Records the time since the reconcile started.
    pub fn finish(mut self) {
        self.record();
    }

    /// Records `elapsed` instead of the time since the timer started (the caller measured).
    pub fn finish_after(mut self, elapsed: std::time::Duration) {
        if let Some(histogram) = self.histogram.take() {
            histogram.observe(elapsed.as_secs_f64());
        }
    }

    fn record(&mut self) {
        if let Some(histogram) = self.histogram.take() {
            histogram.observe(self.start.elapsed().as_secs_f64());
        }
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.record();
    }
}

/// Readiness shared between the operator and `/readyz`. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Not ready yet: `/readyz` answers 503 until [`Health::set_ready`]`(true)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the operator ready (caches synced and leadership known: leader or standby,
    /// both are ready) or not ready.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let listener = bind(addr).await?;
    serve_listener(listener, metrics, health, shutdown).await
}

/// Binds `addr`. The IPv6 wildcard `[::]` (the default) listens on IPv6 and, dual-stack, on
/// IPv4 too; on a node without IPv6 it falls back to `0.0.0.0` on the same port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(error) => match ipv4_fallback(addr) {
            Some(v4) => {
                tracing::info!(%addr, %error, fallback = %v4, "no IPv6 here: listening on IPv4 only");
                TcpListener::bind(v4).await
            }
            None => Err(error),
        },
    }
}

/// `0.0.0.0:PORT` for the IPv6 wildcard `[::]:PORT`; `None` for any other address.
pub fn ipv4_fallback(addr: SocketAddr) -> Option<SocketAddr> {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => Some(SocketAddr::from(([0, 0, 0, 0], v6.port()))),
        _ => None,
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on an already bound listener (tests bind
/// port 0 and read the port back) until `shutdown` resolves; then stops accepting, lets
/// requests in flight finish, and returns.
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let handler = move |request: Request<Incoming>| {
        let response = respond(&request, &metrics, &health);
        async move { response }
    };
    crate::serve::serve(
        listener,
        "metrics and health probes",
        handler,
        DRAIN_TIMEOUT,
        shutdown,
    )
    .await;
    Ok(())
}

/// What a Kubernetes API request does, read off its method and URL: the metric labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// the lowercase method for anything else.
    pub verb: &'static str,
    /// The resource's plural, with `/subresource` when there is one (`jobruns/status`); empty
    /// for paths that name no resource (discovery, `/version`).
    pub resource: String,
    /// The API server's host and port, when the request's URL names it; else empty.
    pub host: String,
}

impl ApiRequest {
    /// Reads `/api/v1/...` and `/apis/GROUP/VERSION/...` paths, namespaced or not.
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let rest = match segments.as_slice() {
            ["api", _version, rest @ ..] => rest,
            ["apis", _group, _version, rest @ ..] => rest,
            _ => &[][..],
        };
        // `namespaces/NS/RESOURCE...` is inside a namespace; `namespaces[/NS]` alone is the
        // namespaces resource itself.
        let rest = match rest {
            ["namespaces", _namespace, inner @ ..] if !inner.is_empty() => inner,
            other => other,
        };
        let (resource, named) = match rest {
            [] => (String::new(), false),
            [resource] => ((*resource).to_owned(), false),
            [resource, _name] => ((*resource).to_owned(), true),
            [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
        };
        let watch = query
            .unwrap_or_default()
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1");
        let verb = match *method {
            Method::GET if watch => "watch",
            Method::GET if named || resource.is_empty() => "get",
            Method::GET => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if named => "delete",
            Method::DELETE => "deletecollection",
            Method::HEAD => "head",
            Method::OPTIONS => "options",
            _ => "other",
        };
        ApiRequest {
            verb,
            resource,
            host: String::new(),
        }
    }

    /// The same request, to `host` (client-go's `host` label).
    pub fn on_host(self, host: impl Into<String>) -> Self {
        ApiRequest {
            host: host.into(),
            ..self
        }
    }

    /// The HTTP method of the verb, as client-go's `method` label has it.
    fn method(&self) -> &'static str {
        match self.verb {
            "get" | "list" | "watch" => "GET",
            "create" => "POST",
            "update" => "PUT",
            "patch" => "PATCH",
            "delete" | "deletecollection" => "DELETE",
            "head" => "HEAD",
            "options" => "OPTIONS",
            _ => "OTHER",
        }
    }
}

/// The response to one probe or scrape request.
fn respond(request: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match request.uri().path() {
        "/metrics" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)
            .body(Full::new(Bytes::from(metrics.encode())))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")),
        // Alive means this task answers: a wedged runtime cannot.
        "/healthz" => text(StatusCode::OK, "ok\n"),
        // A watch that keeps failing leaves its cache behind the cluster: not ready.
        "/readyz" if !metrics.stuck_watches(Instant::now()).is_empty() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: a watch keeps failing (horolog_watch_errors_total, logs)\n",
        ),
        "/readyz" if health.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl crate::controller::Observer for Metrics {
    fn caches(&self, jobruns: kube::runtime::reflector::Store<crate::api::JobRun>) {
        self.count_active_jobruns_with(move || {
            let runs = jobruns.state();
            let finished = |run: &&std::sync::Arc<crate::api::JobRun>| {
                run.status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .is_some_and(|phase| phase.is_finished())
            };
            runs.iter().filter(|run| !finished(run)).count() as i64
        });
    }

    fn queue_depth(&self, controller: &'static str, depth: usize) {
        self.set_queue_depth(controller, depth);
    }

    fn invalid_objects(&self, kind: &'static str, count: usize) {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.invalid_objects.get_or_create(&labels).set(count as i64);
    }

    fn watch_failed(&self, kind: &'static str) {
        self.watch_failed_at(kind, Instant::now());
    }

    fn reconciled(
        &self,
        controller: &'static str,
        elapsed: std::time::Duration,
        error: Option<&'static str>,
    ) {
        self.reconcile_started(controller).finish_after(elapsed);
        if let Some(kind) = error {
            self.reconcile_error(controller, kind);
        }
        self.ecosystem.reconciled(controller, elapsed, error.is_some());
    }

    fn queue_added(&self, controller: &'static str) {
        self.ecosystem
            .workqueue_adds
            .get_or_create(&NameLabels {
                name: controller.to_owned(),
            })
            .inc();
    }

    fn queue_waited(&self, controller: &'static str, waited: std::time::Duration) {
        self.ecosystem
            .workqueue_queue_duration
            .get_or_create(&NameLabels {
                name: controller.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    fn finished(
        &self,
        namespace: &str,
        schedule: Option<&str>,
        phase: &'static str,
        duration: Option<chrono::TimeDelta>,
    ) {
        self.jobrun_phase(phase);
        if let Some(schedule) = schedule.filter(|_| self.schedules.enabled.load(Ordering::Relaxed)) {
            let labels = ScheduleLabels {
                namespace: namespace.to_string(),
                schedule: schedule.to_string(),
            };
            self.schedules
                .runs
                .get_or_create(&OutcomeLabels {
                    namespace: namespace.to_string(),
                    schedule: schedule.to_string(),
                    outcome: phase.to_string(),
                })
                .inc();
            if let Some(duration) = duration {
                self.schedules
                    .last_duration
                    .get_or_create(&labels)
                    .set(duration.as_seconds_f64());
            }
        }
        if phase == "Skipped" {
            self.skipped(1);
        }
    }

    fn pod_created(&self, delay: chrono::TimeDelta) {
        self.observe_fire_delay(delay.as_seconds_f64());
    }

    fn planned(&self, missed: usize, coalesced: usize) {
        self.missed(missed as u64);
        self.coalesced(coalesced as u64);
    }

    fn excluded(&self, namespace: &str, schedule: &str, n: usize) {
        Metrics::excluded(self, n as u64);
        if self.schedules.enabled.load(Ordering::Relaxed) {
            self.schedules
                .excluded
                .get_or_create(&ScheduleLabels {
                    namespace: namespace.to_string(),
                    schedule: schedule.to_string(),
                })
                .inc_by(n as u64);
        }
    }

    fn schedule_state(&self, state: &crate::controller::ScheduleState) {
        if !self.schedules.enabled.load(Ordering::Relaxed) {
            return;
        }
        let labels = ScheduleLabels {
            namespace: state.namespace.clone(),
            schedule: state.name.clone(),
        };
        let set = |family: &Family<ScheduleLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
                   value: Option<f64>| match value {
            Some(value) => {
                family.get_or_create(&labels).set(value);
            }
            None => {
                family.remove(&labels);
            }
        };
        let seconds = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
        set(&self.schedules.next_fire, state.next_fire_time.map(seconds));
        set(&self.schedules.interval, state.interval_seconds);
        set(&self.schedules.last_success, state.last_success.map(seconds));
        self.schedules
            .active_runs
            .get_or_create(&labels)
            .set(state.active_runs);
        self.schedules
            .consecutive_failures
            .get_or_create(&labels)
            .set(state.consecutive_failures);
        let reasons = [state.ready.1.clone(), state.paused.1.clone()];
        let old = self
            .schedules
            .reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(labels.clone(), reasons.clone());
        let families = [&self.schedules.ready, &self.schedules.paused];
        let values = [state.ready.0, state.paused.0];
        for (i, family) in families.into_iter().enumerate() {
            let with = |reason: &str| ReasonLabels {
                namespace: labels.namespace.clone(),
                schedule: labels.schedule.clone(),
                reason: reason.to_string(),
            };
            if let Some(old) = old.as_ref().filter(|old| old[i] != reasons[i]) {
                family.remove(&with(&old[i]));
            }
            family.get_or_create(&with(&reasons[i])).set(i64::from(values[i]));
        }
    }

    fn schedule_gone(&self, namespace: &str, schedule: &str) {
        let labels = ScheduleLabels {
            namespace: namespace.to_string(),
            schedule: schedule.to_string(),
        };
        for family in [
            &self.schedules.next_fire,
            &self.schedules.last_success,
            &self.schedules.interval,
            &self.schedules.last_duration,
        ] {
            family.remove(&labels);
        }
        self.schedules.active_runs.remove(&labels);
        self.schedules.consecutive_failures.remove(&labels);
        self.schedules.excluded.remove(&labels);
        let old = self
            .schedules
            .reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&labels);
        if let Some([ready, paused]) = old {
            let with = |reason: String| ReasonLabels {
                namespace: labels.namespace.clone(),
                schedule: labels.schedule.clone(),
                reason,
            };
            self.schedules.ready.remove(&with(ready));
            self.schedules.paused.remove(&with(paused));
        }
        for outcome in OUTCOMES {
            self.schedules.runs.remove(&OutcomeLabels {
                namespace: namespace.to_string(),
                schedule: schedule.to_string(),
                outcome: outcome.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_jobruns_are_counted_at_scrape_time() {
        let metrics = Metrics::new();
        let active = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let source = active.clone();
        metrics.count_active_jobruns_with(move || source.load(std::sync::atomic::Ordering::Relaxed));
        active.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(
            metrics.encode().contains("horolog_active_jobruns 7"),
            "{}",
            metrics.encode()
        );
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn api_requests_are_named_by_verb_and_resource() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/ns/pods/p1", None, "get", "pods"),
            (
                Method::GET,
                "/api/v1/pods",
                Some("labelSelector=a"),
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/pods",
                Some("resourceVersion=5&watch=true"),
                "watch",
                "pods",
            ),
            (
                Method::POST,
                "/apis/horolog.dev/v1alpha1/namespaces/ns/jobruns",
                None,
                "create",
                "jobruns",
            ),
            (
                Method::PATCH,
                "/apis/horolog.dev/v1alpha1/namespaces/ns/jobruns/r1/status",
                None,
                "patch",
                "jobruns/status",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l",
                None,
                "update",
                "leases",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/pods/p1",
                None,
                "delete",
                "pods",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/pods",
                None,
                "deletecollection",
                "pods",
            ),
            (Method::GET, "/api/v1/namespaces/ns", None, "get", "namespaces"),
            (Method::GET, "/api/v1/namespaces", None, "list", "namespaces"),
            (Method::GET, "/version", None, "get", ""),
        ];
        for (method, path, query, verb, resource) in cases {
            let request = ApiRequest::of(&method, path, query);
            assert_eq!(
                (request.verb, request.resource.as_str()),
                (verb, resource),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn encode_contains_every_metric_after_observations() {
        let metrics = Metrics::new();
        metrics.observe_fire_delay(0.2);
        metrics.jobrun_phase("Succeeded");
        metrics.missed(2);
        metrics.coalesced(3);
        metrics.excluded(4);
        metrics.skipped(1);
        metrics.reconcile_started("schedule").finish();
        metrics.reconcile_error("jobrun", "conflict");
        metrics.set_queue_depth("schedule", 5);
        metrics.count_active_jobruns_with(|| 4);
        metrics.set_leader(true);
        crate::controller::Observer::invalid_objects(&metrics, "Schedule", 2);
        crate::controller::Observer::watch_failed(&metrics, "JobRun");
        let patch = ApiRequest::of(&Method::PATCH, "/api/v1/namespaces/ns/pods/p/status", None);
        metrics.observe_api_request(&patch, "200", 0.02);

        let text = metrics.encode();
        for line in [
            "horolog_fire_delay_seconds_count 1",
            "horolog_fire_delay_seconds_bucket{le=\"0.25\"} 1",
            "horolog_fire_delay_seconds_bucket{le=\"0.1\"} 0",
            "horolog_jobrun_phase_transitions_total{phase=\"Succeeded\"} 1",
            "horolog_missed_fire_times_total 2",
            "horolog_coalesced_fire_times_total 3",
            "horolog_excluded_fire_times_total 4",
            "horolog_skipped_runs_total 1",
            "horolog_reconciles_total{controller=\"schedule\"} 1",
            "horolog_reconcile_duration_seconds_count{controller=\"schedule\"} 1",
            "horolog_reconcile_errors_total{controller=\"jobrun\",reason=\"conflict\"} 1",
            "horolog_reconcile_queue_depth{controller=\"schedule\"} 5",
            "horolog_build_info{version=\"0.1.0\"} 1",
            "horolog_active_jobruns 4",
            "horolog_leader 1",
            "horolog_invalid_objects{kind=\"Schedule\"} 2",
            "horolog_watch_errors_total{kind=\"JobRun\"} 1",
            "horolog_api_requests_total{verb=\"patch\",resource=\"pods/status\",code=\"200\"} 1",
            "horolog_api_request_duration_seconds_bucket{le=\"0.025\",verb=\"patch\"} 1",
            "horolog_api_request_duration_seconds_bucket{le=\"0.01\",verb=\"patch\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    }

    #[test]
    fn a_watch_is_stuck_after_five_minutes_of_failures_without_a_pause() {
        let metrics = Metrics::new();
        let start = Instant::now();
        let at = |secs: u64| start + std::time::Duration::from_secs(secs);
        for secs in (0..=290).step_by(2) {
            metrics.watch_failed_at("Schedule", at(secs));
        }
        assert!(metrics.stuck_watches(at(290)).is_empty(), "not five minutes yet");
        metrics.watch_failed_at("Schedule", at(300));
        assert_eq!(metrics.stuck_watches(at(300)), vec!["Schedule"]);
        assert!(
            metrics.stuck_watches(at(400)).is_empty(),
            "no failure for over a minute: it recovered"
        );
        metrics.watch_failed_at("Schedule", at(400));
        assert!(
            metrics.stuck_watches(at(400)).is_empty(),
            "a failure after a pause starts a new run"
        );
        assert!(
            metrics
                .encode()
                .contains("horolog_watch_errors_total{kind=\"Schedule\"} 148"),
            "{}",
            metrics.encode()
        );
    }

    #[test]
    fn per_schedule_series_follow_a_schedule_and_go_with_it() {
        use crate::controller::{Observer, ScheduleState};
        let metrics = Metrics::new();
        let at = |secs| chrono::DateTime::from_timestamp(secs, 0);
        metrics.schedule_state(&ScheduleState {
            namespace: "ns".into(),
            name: "nightly".into(),
            next_fire_time: at(1_767_254_400),
            interval_seconds: Some(86_400.0),
            last_success: at(1_767_168_000),
            ready: (true, "Scheduled".into()),
            paused: (false, "NotPaused".into()),
            active_runs: 1,
            consecutive_failures: 0,
        });
        let stopped = ScheduleState {
            namespace: "ns".into(),
            name: "nightly".into(),
            next_fire_time: None,
            interval_seconds: None,
            last_success: at(1_767_168_000),
            ready: (false, "TooManyFailures".into()),
            paused: (true, "TooManyFailures".into()),
            active_runs: 0,
            consecutive_failures: 3,
        };
        let before = metrics.encode();
        for line in [
            "horolog_schedule_ready{namespace=\"ns\",schedule=\"nightly\",reason=\"Scheduled\"} 1",
            "horolog_schedule_paused{namespace=\"ns\",schedule=\"nightly\",reason=\"NotPaused\"} 0",
            "horolog_schedule_active_runs{namespace=\"ns\",schedule=\"nightly\"} 1",
        ] {
            assert!(before.lines().any(|l| l == line), "missing {line:?} in\n{before}");
        }
        metrics.schedule_state(&stopped);
        let after = metrics.encode();
        for line in [
            "horolog_schedule_ready{namespace=\"ns\",schedule=\"nightly\",reason=\"TooManyFailures\"} 0",
            "horolog_schedule_paused{namespace=\"ns\",schedule=\"nightly\",reason=\"TooManyFailures\"} 1",
            "horolog_schedule_consecutive_failures{namespace=\"ns\",schedule=\"nightly\"} 3",
        ] {
            assert!(after.lines().any(|l| l == line), "missing {line:?} in\n{after}");
        }
        assert!(
            !after.contains("reason=\"NotPaused\"") && !after.contains("reason=\"Scheduled\""),
            "a new reason replaces the old series:\n{after}"
        );
        metrics.schedule_state(&ScheduleState {
            next_fire_time: at(1_767_254_400),
            interval_seconds: Some(86_400.0),
            ..stopped
        });
        metrics.finished(
            "ns",
            Some("nightly"),
            "Failed",
            Some(chrono::TimeDelta::seconds(12)),
        );
        Observer::excluded(&metrics, "ns", "nightly", 2);
        let text = metrics.encode();
        for line in [
            "horolog_schedule_next_fire_time_seconds{namespace=\"ns\",schedule=\"nightly\"} 1767254400.0",
            "horolog_schedule_last_successful_time_seconds{namespace=\"ns\",schedule=\"nightly\"} 1767168000.0",
            "horolog_schedule_interval_seconds{namespace=\"ns\",schedule=\"nightly\"} 86400.0",
            "horolog_schedule_last_run_duration_seconds{namespace=\"ns\",schedule=\"nightly\"} 12.0",
            "horolog_schedule_runs_total{namespace=\"ns\",schedule=\"nightly\",outcome=\"Failed\"} 1",
            "horolog_schedule_excluded_fire_times_total{namespace=\"ns\",schedule=\"nightly\"} 2",
            "horolog_excluded_fire_times_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        metrics.schedule_gone("ns", "nightly");
        assert!(!metrics.encode().contains("nightly"), "{}", metrics.encode());

        metrics.per_schedule(false);
        metrics.finished("ns", Some("other"), "Succeeded", None);
        Observer::excluded(&metrics, "ns", "other", 1);
        assert!(!metrics.encode().contains("other"), "off: no per-Schedule series");
        assert!(metrics.encode().contains("horolog_excluded_fire_times_total 3"));
    }

    #[test]
    fn the_ecosystem_names_carry_the_same_facts() {
        use crate::controller::Observer;
        let metrics = Metrics::new();
        metrics.reconciled("schedule", std::time::Duration::from_millis(20), None);
        metrics.reconciled("jobrun", std::time::Duration::from_millis(20), Some("conflict"));
        metrics.queue_depth("schedule", 3);
        metrics.queue_added("schedule");
        metrics.queue_waited("schedule", std::time::Duration::from_millis(5));
        Observer::watch_failed(&metrics, "Pod");
        let get = ApiRequest::of(&Method::GET, "/api/v1/namespaces/ns/pods", None).on_host("10.0.0.1:443");
        metrics.observe_api_request(&get, "200", 0.01);
        let text = metrics.encode();
        for line in [
            "controller_runtime_reconcile_total{controller=\"schedule\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"jobrun\",result=\"error\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"jobrun\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"schedule\"} 1",
            "workqueue_depth{name=\"schedule\"} 3",
            "workqueue_adds_total{name=\"schedule\"} 1",
            "workqueue_queue_duration_seconds_count{name=\"schedule\"} 1",
            "workqueue_work_duration_seconds_count{name=\"schedule\"} 1",
            "rest_client_requests_total{code=\"200\",method=\"GET\",host=\"10.0.0.1:443\"} 1",
            "horolog_watch_errors_total{kind=\"Pod\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        if cfg!(target_os = "linux") {
            let value = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            };
            assert!(value("process_resident_memory_bytes") > 1e6);
            assert!(value("process_open_fds") >= 3.0);
            assert!(value("process_start_time_seconds") > 1.6e9);
            assert!(value("process_cpu_seconds_total") >= 0.0);
        }
    }

    #[test]
    fn reconcile_timer_records_once_when_dropped_without_finish() {
        let metrics = Metrics::new();
        {
            let _timer = metrics.reconcile_started("jobrun");
        }
        let text = metrics.encode();
        assert!(
            text.contains("horolog_reconcile_duration_seconds_count{controller=\"jobrun\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn negative_fire_delay_is_recorded_as_zero() {
        let metrics = Metrics::new();
        metrics.observe_fire_delay(-1.5);
        metrics.observe_fire_delay(f64::NAN);
        let text = metrics.encode();
        assert!(text.contains("horolog_fire_delay_seconds_count 1\n"), "{text}");
        assert!(
            text.contains("horolog_fire_delay_seconds_bucket{le=\"0.01\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn the_ipv6_wildcard_falls_back_to_the_ipv4_one_and_nothing_else_does() {
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(ipv4_fallback(v6), Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(ipv4_fallback("127.0.0.1:8080".parse().unwrap()), None);
        assert_eq!(ipv4_fallback("[::1]:8080".parse().unwrap()), None);
    }

    /// Bound on `[::]` (IPv6 with dual stack, or the IPv4 fallback), the server answers on
    /// IPv4 loopback either way.
    #[tokio::test]
    async fn the_wildcard_listener_answers_ipv4_clients() {
        let listener = bind("[::]:0".parse().unwrap()).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_listener(listener, Metrics::new(), Health::new(), async {
            let _ = rx.await;
        }));
        let (status, _) = get(SocketAddr::from(([127, 0, 0, 1], port)), "/healthz").await;
        assert_eq!(status, 200);
        let _ = tx.send(());
        let _ = server.await;
    }

    /// A minimal HTTP/1.1 client: status code and body of `GET path`.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn http_server_serves_metrics_health_and_readiness_then_shuts_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let metrics = Metrics::new();
        let health = Health::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_listener(listener, metrics.clone(), health.clone(), async {
            let _ = stopped.await;
        }));

        metrics.missed(7);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("horolog_missed_fire_times_total 7"), "{body}");

        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(
            get(addr, "/readyz").await.0,
            503,
            "not ready before set_ready(true)"
        );
        health.set_ready(true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        assert_eq!(get(addr, "/nope").await.0, 404);

        stop.send(()).expect("server still running");
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("server stops on the shutdown signal")
            .expect("server task")
            .expect("server result");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed after shutdown"
        );
    }
}
