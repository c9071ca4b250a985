//! `horolog run`: the operator process. Composes the pieces: logging, the Kubernetes
//! client (with a client-side request rate limit), metrics and health probes, leader
//! election, and the controllers; shuts them down in order on SIGTERM/Ctrl-C.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use clap::{ArgAction, Args};
use futures::FutureExt;
use tokio::sync::watch;
use tracing::{error, info};

use crate::api::Duration;
use crate::api::Executor;
use crate::clock::{Clock, SystemClock};
use crate::controller::{self, ControllerConfig, Defaults, EventPolicy};
use crate::leader::{Fence, FenceLayer, LeaderElectionConfig, LeaderElector, default_identity};
use crate::metrics::{ApiRequest, Health, Metrics};
use crate::telemetry::LogFormat;

/// Flags of `horolog run` (the Helm chart passes each of them).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Log level or tracing filter directives, e.g. `info` or `info,kube=debug`. RUST_LOG wins.
    /// Default: `info`, and `warn` in local mode (where the JobRun table is the output).
    #[arg(long, env = "HOROLOG_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "HOROLOG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Namespaces to watch, comma separated. Absent: every namespace.
    #[arg(long, env = "HOROLOG_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// How many reconciles of each kind (Schedule, JobRun, Task, Backfill, Calendar) run at
    /// once. Each in flight holds at most a request or two at the API server: raise it when
    /// many Schedules fire at the same instant and the fire delay's tail grows.
    #[arg(long, env = "HOROLOG_CONCURRENCY", default_value_t = controller::DEFAULT_CONCURRENCY)]
    pub concurrency: u16,

    /// Client-side limit on requests to the Kubernetes API server, per second. 0 (the default)
    /// or a negative value sets no client-side limit and leaves protecting the API server to
    /// its API Priority and Fairness, as SIG API Machinery advises and controller-runtime does
    /// by default. A firing costs about 13 requests (creates, status writes, Events), so a
    /// limit caps the fire rate at about QPS / 13.
    #[arg(
        long,
        env = "HOROLOG_KUBE_QPS",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub kube_qps: f64,

    /// With a positive `--kube-qps`: requests that may be sent at once after a quiet spell.
    #[arg(long, env = "HOROLOG_KUBE_BURST", default_value_t = 100)]
    pub kube_burst: u32,

    /// Elect a leader over a coordination.k8s.io/v1 Lease so only one replica acts.
    /// Written `--leader-election=false` to turn it off.
    #[arg(long, env = "HOROLOG_LEADER_ELECTION", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_election: bool,

    /// Namespace of the Lease (the operator's own; the chart passes POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,

    /// Name of the Lease.
    #[arg(long, default_value = "horolog")]
    pub lease_name: String,

    /// How long a Lease stays valid after its last renewal: how long a standby waits for a
    /// leader that died.
    #[arg(long, default_value = "15s")]
    pub lease_duration: Duration,

    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, default_value = "10s")]
    pub renew_deadline: Duration,

    /// Pause between renewals (leader) and acquisition attempts (standby).
    #[arg(long, default_value = "2s")]
    pub retry_period: Duration,

    /// Address of the HTTP server for /metrics, /healthz and /readyz. The default `[::]`
    /// listens on IPv6 and IPv4 (dual stack), and on IPv4 alone where the node has no IPv6.
    #[arg(long, env = "HOROLOG_METRICS_ADDR", default_value = "[::]:8080")]
    pub metrics_addr: SocketAddr,

    /// Which Events to publish: `warnings` (the default: Warnings, and the Normal Events that
    /// status alone does not tell, such as Skipped, Cancelled, Coalesced, Paused, Resumed,
    /// Finished) or `all` (also Fired, PodCreated, Started and Succeeded, one each per run,
    /// which repeat status fields and cost an API write each).
    #[arg(long, env = "HOROLOG_EVENTS", value_enum, default_value = "warnings")]
    pub events: EventPolicy,

    /// Per-Schedule metrics series (labels namespace and schedule): about 8 series per
    /// Schedule. Turn off for very large installs.
    #[arg(long, env = "HOROLOG_SCHEDULE_METRICS", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub schedule_metrics: bool,

    /// How long a Schedule's status may wait to record runs that succeeded, so that the write
    /// at its next fire time carries them (one status write per fire instead of two). Failed
    /// and missed runs are recorded at once. `0s` records every run at once.
    #[arg(long, env = "HOROLOG_SCHEDULE_STATUS_DELAY", default_value = "60s")]
    pub schedule_status_delay: Duration,

    /// How long before its fire time a Schedule's next JobRun is created (phase Scheduled),
    /// for Schedules that leave `spec.stageAhead` unset: at the fire time only its Pod (or
    /// Job) is created, one write per run at the burst. `0s` turns staging off.
    #[arg(long, env = "HOROLOG_STAGE_AHEAD", default_value = "30s")]
    pub stage_ahead: Duration,

    /// misfireGraceTime for Schedules and Tasks that leave it unset. Absent: no deadline.
    #[arg(long, env = "HOROLOG_DEFAULT_MISFIRE_GRACE_TIME")]
    pub default_misfire_grace_time: Option<Duration>,

    /// maxRunningJobs for Schedules that leave it unset. Absent: unlimited.
    #[arg(long, env = "HOROLOG_DEFAULT_MAX_RUNNING_JOBS", value_parser = clap::value_parser!(i32).range(1..))]
    pub default_max_running_jobs: Option<i32>,

    /// The executor of JobRuns whose template (and Task) leave it unset: `Pod` or `Job`.
    #[arg(
        long,
        env = "HOROLOG_DEFAULT_EXECUTOR",
        value_parser = executor_named,
        default_value = "Pod"
    )]
    pub default_executor: Executor,

    /// Run JobRuns with `executor: Job` as batch/v1 Jobs (needs RBAC on batch jobs; the chart
    /// grants it with jobExecutor.enabled).
    #[arg(long, env = "HOROLOG_JOB_EXECUTOR", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub job_executor: bool,
}

impl RunArgs {
    /// The checks of flags that clap cannot make alone (combinations, finite numbers): what
    /// `horolog run` refuses before it connects to anything.
    pub fn check(&self) -> Result<(), OperatorError> {
        check_rate_limit(self.kube_qps, self.kube_burst)?;
        if self.default_executor == Executor::Job && !self.job_executor {
            return Err(OperatorError::Flag(
                "--default-executor Job needs --job-executor (and RBAC on batch jobs)".to_string(),
            ));
        }
        Ok(())
    }

    /// The controllers' configuration these flags ask for.
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            concurrency: self.concurrency,
            defaults: Defaults {
                misfire_grace_time: self.default_misfire_grace_time,
                max_running_jobs: self.default_max_running_jobs,
                executor: self.default_executor,
            },
            events: self.events,
            status_delay: self.schedule_status_delay.as_std(),
            stage_ahead: self.stage_ahead.as_std(),
            job_executor: self.job_executor,
            instance: Some(default_identity()),
            ..ControllerConfig::default()
        }
    }

    /// The Lease and timings of the leader election these flags ask for.
    pub fn leader_election_config(&self) -> LeaderElectionConfig {
        let mut election = LeaderElectionConfig::new(
            &self.leader_election_namespace,
            &self.lease_name,
            default_identity(),
        );
        election.lease_duration = self.lease_duration.as_std();
        election.renew_deadline = self.renew_deadline.as_std();
        election.retry_period = self.retry_period.as_std();
        election
    }
}

/// Why the operator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Logging could not be set up.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// No kubeconfig or in-cluster configuration.
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// A flag has a value the operator cannot use.
    #[error("{0}")]
    Flag(String),
    /// Leader election could not start.
    #[error(transparent)]
    Leader(#[from] crate::leader::LeaderError),
    /// The controllers stopped with an error (e.g. the CRDs are not installed).
    #[error(transparent)]
    Controller(#[from] controller::Error),
}

/// Runs the operator against the in-cluster configuration or the current kubeconfig until
/// SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), OperatorError> {
    crate::telemetry::init(args.log_level.as_deref().unwrap_or("info"), args.log_format)?;
    args.check()?;
    let metrics = Metrics::new();
    let config = kube::Config::infer().await?;
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The throttle outside the counter, so request durations do not include the wait for a token.
    let throttle = ThrottleLayer::new(args.kube_qps, args.kube_burst);
    // The controllers' client refuses writes once the leader Lease may have lapsed; the
    // elector's own client (Lease reads and writes) is not fenced.
    let fence = Fence::new();
    let fenced = kube::client::ClientBuilder::try_from(config.clone())?
        .with_layer(&RequestMetricsLayer(metrics.clone(), host.clone()))
        .with_layer(&throttle)
        .with_layer(&FenceLayer(fence.clone()))
        .build();
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&RequestMetricsLayer(metrics.clone(), host))
        .with_layer(&throttle)
        .build();
    if args.kube_qps > 0.0 {
        info!(
            qps = args.kube_qps,
            burst = args.kube_burst,
            "client-side API rate limit"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let health = Health::new();

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    let server = tokio::spawn(crate::metrics::serve(
        args.metrics_addr,
        metrics.clone(),
        health.clone(),
        stopped(stop_rx.clone()),
    ));

    metrics.per_schedule(args.schedule_metrics);
    let mut config = args.controller_config();
    config.observer = Some(Arc::new(metrics.clone()));

    let result = if args.leader_election {
        let elector = LeaderElector::new(client.clone(), args.leader_election_config(), clock.clone())?
            .with_metrics(metrics.clone())
            .with_fence(fence);
        run_while_leading(
            elector,
            fenced,
            &args.namespaces,
            config,
            clock,
            &health,
            stop_rx.clone(),
        )
        .await
    } else {
        metrics.set_leader(true);
        health.set_ready(true);
        run_controllers(client, &args.namespaces, config, clock, stopped(stop_rx.clone())).await
    };
    // Whatever ended the controllers, the process ends: stop the probe server too.
    drop(stop_rx);
    server.abort();
    if let Err(e) = &result {
        error!(error = %e, "operator stopped");
    }
    result
}

/// Resolves once a stop is requested on `stop` (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Campaigns for the Lease with `elector` and runs the controllers while this replica leads,
/// until a stop is requested on `stop` or leadership is lost; then releases the Lease.
async fn run_while_leading(
    elector: LeaderElector,
    client: kube::Client,
    namespaces: &[String],
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    health: &Health,
    stop: watch::Receiver<bool>,
) -> Result<(), OperatorError> {
    let mut leading = elector.subscribe();
    let (release_tx, release_rx) = watch::channel(false);
    let election_task = tokio::spawn(elector.run(stopped(release_rx)));
    // A standby is healthy and ready: it can take over at any moment.
    health.set_ready(true);
    let result = async {
        tokio::select! {
            _ = leading.wait_for(|l| *l) => {}
            () = stopped(stop.clone()) => return Ok(()),
        }
        info!("leading: starting the controllers");
        // Stop when asked, or as soon as leadership is lost: another replica takes over
        // and two acting operators must never overlap.
        let lost = async move {
            let _ = leading.wait_for(|l| !*l).await;
        };
        let stop = futures::future::select(Box::pin(stopped(stop.clone())), Box::pin(lost)).map(drop);
        run_controllers(client, namespaces, config, clock, stop).await
    }
    .await;
    // The controllers are stopped: now release the Lease so a standby takes over at once.
    let _ = release_tx.send(true);
    let _ = election_task.await;
    result
}

/// One set of controllers per watched namespace (or one for all namespaces).
async fn run_controllers(
    client: kube::Client,
    namespaces: &[String],
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), OperatorError> {
    let stop = stop.shared();
    let configs: Vec<ControllerConfig> = if namespaces.is_empty() {
        vec![config]
    } else {
        namespaces
            .iter()
            .map(|ns| config.clone().in_namespace(ns))
            .collect()
    };
    let runs = configs
        .into_iter()
        .map(|config| controller::run(client.clone(), config, clock.clone(), stop.clone()));
    futures::future::try_join_all(runs).await?;
    Ok(())
}

/// Rejects `--kube-qps`/`--kube-burst` values that set no usable limit by mistake.
fn check_rate_limit(qps: f64, burst: u32) -> Result<(), OperatorError> {
    if !qps.is_finite() {
        return Err(OperatorError::Flag(format!(
            "--kube-qps ({qps}) must be a number: requests per second, or 0 for no client-side limit"
        )));
    }
    if qps > 0.0 && burst == 0 {
        return Err(OperatorError::Flag(format!(
            "--kube-burst (0) must be at least 1 when --kube-qps ({qps}) sets a limit"
        )));
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut sig) => {
                    sig.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A token bucket: `qps` tokens per second, at most `burst` saved up.
#[derive(Debug)]
struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    fn new(qps: f64, burst: u32) -> Self {
        TokenBucket {
            qps,
            burst: f64::from(burst),
            state: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn try_take(&self, now: Instant) -> Result<(), std::time::Duration> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = *state;
        let tokens = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.qps).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(std::time::Duration::from_secs_f64((1.0 - tokens) / self.qps))
        }
    }
}

/// Limits the requests the kube client sends (client-go's `--kube-api-qps`/`--kube-api-burst`).
#[derive(Clone, Debug)]
/// No bucket: no limit (`--kube-qps` 0 or negative).
struct ThrottleLayer(Option<Arc<TokenBucket>>);

impl ThrottleLayer {
    fn new(qps: f64, burst: u32) -> Self {
        ThrottleLayer((qps > 0.0).then(|| Arc::new(TokenBucket::new(qps, burst))))
    }
}

impl<S> tower::Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            bucket: self.0.clone(),
            wait: None,
            permitted: false,
        }
    }
}

/// The service [`ThrottleLayer`] makes: not ready until the bucket (if any) gives a token.
struct Throttle<S> {
    inner: S,
    bucket: Option<Arc<TokenBucket>>,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    permitted: bool,
}

impl<S, Req> tower::Service<Req> for Throttle<S>
where
    S: tower::Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        let Some(bucket) = self.bucket.clone() else {
            return self.inner.poll_ready(cx);
        };
        while !self.permitted {
            if let Some(wait) = self.wait.as_mut() {
                std::task::ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            match bucket.try_take(Instant::now()) {
                Ok(()) => self.permitted = true,
                Err(delay) => self.wait = Some(Box::pin(tokio::time::sleep(delay))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.permitted = false;
        self.inner.call(req)
    }
}

/// Counts every Kubernetes API request in [`Metrics`], by verb, resource and status code, and
/// times it.
#[derive(Clone, Debug)]
struct RequestMetricsLayer(Metrics, String);

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics {
            inner,
            metrics: self.0.clone(),
            host: self.1.clone(),
        }
    }
}

/// The service [`RequestMetricsLayer`] makes.
#[derive(Clone, Debug)]
struct RequestMetrics<S> {
    inner: S,
    metrics: Metrics,
    /// The API server's host:port (client-go's `host` label), for requests whose URL is
    /// still relative at this layer.
    host: String,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let host = request
            .uri()
            .authority()
            .map_or_else(|| self.host.clone(), |a| a.to_string());
        let kind =
            ApiRequest::of(request.method(), request.uri().path(), request.uri().query()).on_host(host);
        let metrics = self.metrics.clone();
        let start = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(response) => response.status().as_str().to_owned(),
                Err(_) => "error".to_owned(),
            };
            metrics.observe_api_request(&kind, &code, start.elapsed().as_secs_f64());
            result
        })
    }
}

/// `--default-executor`: `Pod` or `Job`, in any case. (The API type stays free of CLI traits.)
fn executor_named(value: &str) -> Result<Executor, String> {
    match value.to_ascii_lowercase().as_str() {
        "pod" => Ok(Executor::Pod),
        "job" => Ok(Executor::Job),
        _ => Err(format!("{value:?} is not an executor: use Pod or Job")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_paces_at_qps() {
        let bucket = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(bucket.try_take(start).is_ok());
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(
            bucket
                .try_take(start + std::time::Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            bucket
                .try_take(start + std::time::Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn rate_limit_flags_that_set_no_usable_limit_are_refused_by_name() {
        assert!(
            check_rate_limit(0.0, 0).is_ok(),
            "no limit: burst does not matter"
        );
        assert!(check_rate_limit(-1.0, 100).is_ok());
        assert!(check_rate_limit(20.0, 40).is_ok());
        let nan = check_rate_limit(f64::NAN, 100).unwrap_err().to_string();
        assert!(nan.contains("--kube-qps (NaN) must be a number"), "{nan}");
        let burst = check_rate_limit(20.0, 0).unwrap_err().to_string();
        assert!(
            burst.contains("--kube-burst (0) must be at least 1 when --kube-qps (20)"),
            "{burst}"
        );
    }

    #[test]
    fn no_positive_qps_means_no_bucket() {
        assert!(ThrottleLayer::new(0.0, 100).0.is_none());
        assert!(ThrottleLayer::new(-1.0, 100).0.is_none());
        assert!(ThrottleLayer::new(20.0, 40).0.is_some());
    }

    #[test]
    fn run_flags_parse_as_the_chart_writes_them() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "horolog",
            "--log-level=info",
            "--log-format=json",
            "--namespaces=a,b",
            "--concurrency=8",
            "--kube-qps=50",
            "--kube-burst=100",
            "--leader-election=true",
            "--leader-election-namespace=ops",
            "--lease-name=horolog",
            "--lease-duration=15s",
            "--renew-deadline=10s",
            "--retry-period=2s",
            "--metrics-addr=0.0.0.0:8080",
        ])
        .unwrap();
        assert_eq!(cli.run.namespaces, ["a", "b"]);
        assert_eq!(cli.run.log_level.as_deref(), Some("info"));
        assert!(cli.run.leader_election);
        assert_eq!(cli.run.lease_duration.as_std().as_secs(), 15);
        assert_eq!(cli.run.kube_qps, 50.0);
        let off = <Cli as clap::Parser>::try_parse_from(["horolog", "--leader-election=false"]).unwrap();
        assert!(!off.run.leader_election);
        assert!(off.run.namespaces.is_empty());
        assert_eq!(off.run.kube_qps, 0.0, "no client-side limit unless asked");
        let negative = <Cli as clap::Parser>::try_parse_from(["horolog", "--kube-qps=-1"]).unwrap();
        assert_eq!(
            negative.run.kube_qps, -1.0,
            "client-go's spelling of no limit parses too"
        );
        let bad = <Cli as clap::Parser>::try_parse_from(["horolog", "--lease-duration=15 seconds"]);
        assert!(bad.is_err());
    }

    #[test]
    fn the_default_executor_is_pod_and_parses_in_any_case() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let parse =
            |args: &[&str]| <Cli as clap::Parser>::try_parse_from(args).map(|c| c.run.default_executor);
        assert_eq!(parse(&["horolog"]).unwrap(), Executor::Pod);
        assert_eq!(
            parse(&["horolog", "--default-executor=job"]).unwrap(),
            Executor::Job
        );
        assert_eq!(
            parse(&["horolog", "--default-executor=Job"]).unwrap(),
            Executor::Job
        );
        let err = parse(&["horolog", "--default-executor=Cron"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"Cron\" is not an executor: use Pod or Job"),
            "{err}"
        );
    }
}
