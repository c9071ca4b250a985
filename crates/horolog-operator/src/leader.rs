//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several replicas
//! exactly one runs the reconcilers and the others wait as hot standbys.
//!
//! The protocol is client-go's, reduced to what horolog needs:
//!
//! - A standby reads the Lease every `retry_period`. It takes the Lease when there is
//!   none (create), when nobody holds it (released), when its holder stopped renewing
//!   (`renewTime + leaseDurationSeconds < now`), or when it names this replica already.
//! - The leader renews every `retry_period` with a `replace` that carries the
//!   resourceVersion of its last write. The API server rejects the write with 409
//!   Conflict if anybody wrote the Lease since: that means the Lease is no longer ours,
//!   and the leader steps down at once. Without that check two replicas could both
//!   believe they lead.
//! - A leader that cannot renew for `renew_deadline` steps down. `renew_deadline` is
//!   shorter than `lease_duration`, so it stops before any standby may take over; the
//!   difference is the tolerated clock skew between replicas.
//! - On shutdown the leader releases the Lease (no holder), so a standby takes over at
//!   its next retry instead of waiting for the Lease to expire.
//!
//! - Writes are fenced by the monotonic clock ([`Fence`]): a successful Lease write sent at
//!   instant `t` lets the controllers write until `t + renew_deadline`, a margin of
//!   `lease_duration - renew_deadline` before any standby may take over. The controllers'
//!   client refuses every write once that has passed ([`FenceLayer`]), so a leader frozen
//!   (SIGSTOP, CPU starvation) past its Lease sends nothing when it resumes, before its
//!   election loop has even noticed.
//!
//! Leadership changes are published on a `watch` channel ([`LeaderElector::subscribe`]).
//! The operator runs its controllers while the value is `true` and exits when it turns
//! `false` after having been `true`: a fresh process is the simplest way to drop every
//! in-flight reconcile of a former leader.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::metrics::Metrics;

/// The field manager recorded on Lease writes.
const FIELD_MANAGER: &str = "horolog";

/// Why leader election could not start or a Lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The timing parameters cannot guarantee a single leader.
    #[error("invalid leader election config: {0}")]
    InvalidConfig(String),
    /// The API server refused or failed a Lease request.
    #[error("lease {namespace}/{name}: {source}")]
    Kube {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The client's error.
        source: kube::Error,
    },
    /// The clock reads a time a Lease cannot hold (outside years -9999..=9999).
    #[error("the clock reads {0}, which a Lease cannot store")]
    ClockOutOfRange(DateTime<Utc>),
}

/// Where the Lease lives, who we are, and how fast leadership moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease: the operator's own (`POD_NAMESPACE`).
    pub namespace: String,
    /// Name of the Lease (`horolog`).
    pub lease_name: String,
    /// This replica's name in `holderIdentity`; see [`default_identity`].
    pub identity: String,
    /// How long a Lease stays valid after its last renewal: how long standbys wait for
    /// a crashed leader. Whole seconds (the Lease field is in seconds). Default 15s.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down. Must be shorter
    /// than `lease_duration`. Default 10s.
    pub renew_deadline: Duration,
    /// Pause between attempts, for the leader (renew) and for standbys (acquire).
    /// Default 2s.
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Default lease duration.
    pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
    /// Default renew deadline.
    pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
    /// Default retry period.
    pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

    /// A config with the default timings.
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaderElectionConfig {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Self::DEFAULT_LEASE_DURATION,
            renew_deadline: Self::DEFAULT_RENEW_DEADLINE,
            retry_period: Self::DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks that the timings keep leadership exclusive: a leader must give up
    /// (`renew_deadline`) before standbys may take over (`lease_duration`), and must get
    /// at least one retry in before giving up.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |message: String| Err(LeaderError::InvalidConfig(message));
        if self.namespace.is_empty() || self.lease_name.is_empty() || self.identity.is_empty() {
            return invalid("namespace, lease name and identity must not be empty".into());
        }
        if self.lease_duration < Duration::from_secs(1) || self.lease_duration.subsec_nanos() != 0 {
            return invalid(format!(
                "lease duration {:?} must be whole seconds, at least 1s",
                self.lease_duration
            ));
        }
        if self.lease_duration.as_secs() > i32::MAX as u64 {
            return invalid(format!("lease duration {:?} is too long", self.lease_duration));
        }
        if self.retry_period.is_zero() {
            return invalid("retry period must be positive".into());
        }
        if self.renew_deadline >= self.lease_duration {
            return invalid(format!(
                "renew deadline {:?} must be shorter than lease duration {:?}",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return invalid(format!(
                "retry period {:?} must be shorter than renew deadline {:?}",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        // validate() bounds it to 1..=i32::MAX.
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// This replica's identity: `POD_NAME` (set by the chart from the downward API), else
/// `<hostname>-<pid>` so two processes on one machine still differ.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "horolog".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The Lease as last written by us, and the renewTime we wrote into it.
#[derive(Clone, Debug)]
struct Held {
    lease: Lease,
    renewed_at: DateTime<Utc>,
}

/// Outcome of one renewal.
enum Renewal {
    Renewed(Box<Held>),
    /// Somebody else wrote the Lease (409): it is not ours any more.
    Lost,
    Failed(LeaderError),
}

/// Until when this replica's Lease lets it write, by the monotonic clock (tokio's, so paused
/// time in tests moves it). Shared by the elector, which extends it on every successful
/// Lease write and closes it when it steps down, and the controllers' client
/// ([`FenceLayer`]), which checks it before every write. Starts closed.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Fence {
    /// A closed fence.
    pub fn new() -> Fence {
        Fence::default()
    }

    /// True while the Lease may still be ours: before the instant the last Lease write was
    /// sent plus the renew deadline.
    pub fn is_open(&self) -> bool {
        self.lock()
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    fn open_until(&self, until: tokio::time::Instant) {
        let mut guard = self.lock();
        *guard = Some(guard.map_or(until, |old| old.max(until)));
    }

    fn close(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        self.until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A write refused because the [`Fence`] is closed: the Lease may have lapsed.
#[derive(Debug, thiserror::Error)]
#[error("write refused: this replica's leader lease may have lapsed (leader fence closed)")]
pub struct FenceClosed;

/// A client layer that refuses every write (any method but GET) while its [`Fence`] is
/// closed. Reads pass, so a former leader's caches stay usable until it stops.
#[derive(Clone, Debug)]
pub struct FenceLayer(pub Fence);

impl<S> tower::Layer<S> for FenceLayer {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            fence: self.0.clone(),
        }
    }
}

/// The service [`FenceLayer`] makes.
#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    fence: Fence,
}

impl<S, B> tower::Service<http::Request<B>> for Fenced<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use futures::FutureExt;
        if request.method() != http::Method::GET && !self.fence.is_open() {
            tracing::warn!(method = %request.method(), path = %request.uri().path(), "write refused: the leader lease may have lapsed");
            return futures::future::ready(Err(Box::new(FenceClosed) as tower::BoxError)).boxed();
        }
        self.inner.call(request).map(|r| r.map_err(Into::into)).boxed()
    }
}

/// Runs the election loop for one replica; see the module docs for the protocol.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    clock: Arc<dyn Clock>,
    leading: watch::Sender<bool>,
    metrics: Option<Metrics>,
    fence: Fence,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .field("leading", &*self.leading.borrow())
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for the Lease `config` names; it does nothing until [`LeaderElector::run`].
    pub fn new(
        client: Client,
        config: LeaderElectionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LeaderError> {
        config.validate()?;
        let (leading, _) = watch::channel(false);
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock,
            leading,
            metrics: None,
            fence: Fence::new(),
        })
    }

    /// Opens and closes `fence` with the Lease (see [`Fence`]); give the controllers' client a
    /// [`FenceLayer`] of the same fence.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// Also reports leadership as the `horolog_leader` gauge.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        metrics.set_leader(*self.leading.borrow());
        self.metrics = Some(metrics);
        self
    }

    /// Leadership as it changes: `true` while this replica leads. Starts `false`.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Campaigns, leads and renews until `shutdown` resolves; then reports `false` and
    /// releases the Lease if it holds it. API errors are logged and retried, never fatal.
    ///
    /// Let `shutdown` resolve only after the controllers stopped, so the next leader
    /// never overlaps with reconciles still running here.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(
            identity = %self.config.identity,
            lease = %self.config.lease_name,
            namespace = %self.config.namespace,
            "starting leader election"
        );
        let mut held: Option<Held> = None;
        loop {
            held = match held {
                None => self.campaign().await,
                Some(current) => self.keep(current).await,
            };
            self.set_leading(held.is_some());
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        self.set_leading(false);
        if let Some(current) = held {
            self.release(current).await;
        }
    }

    /// One attempt of a standby to take the Lease; `Some` when it now leads.
    async fn campaign(&self) -> Option<Held> {
        // A request stuck longer than the renew deadline would be useless even if it succeeded.
        match tokio::time::timeout(self.config.renew_deadline, self.try_acquire()).await {
            Ok(Ok(held)) => held,
            Ok(Err(error)) => {
                tracing::warn!(%error, "acquiring the leader lease failed; retrying");
                None
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.config.renew_deadline, "acquiring the leader lease timed out");
                None
            }
        }
    }

    /// One renewal by the leader; `None` when it must step down.
    async fn keep(&self, current: Held) -> Option<Held> {
        let deadline = current.renewed_at + delta(self.config.renew_deadline);
        let now = self.clock.now();
        let remaining = (deadline - now).to_std().unwrap_or(Duration::ZERO);
        if remaining.is_zero() {
            tracing::warn!(last_renewal = %current.renewed_at, "renew deadline passed; stepping down");
            return None;
        }
        // Bounded by the deadline: a hung request must not keep us leading past it.
        match tokio::time::timeout(remaining, self.renew(&current, now)).await {
            Ok(Renewal::Renewed(held)) => Some(*held),
            Ok(Renewal::Lost) => {
                tracing::warn!("the leader lease was written by someone else (409 Conflict); stepping down");
                None
            }
            Ok(Renewal::Failed(error)) if self.clock.now() < deadline => {
                tracing::warn!(%error, %deadline, "renewing the leader lease failed; retrying until the deadline");
                Some(current)
            }
            Ok(Renewal::Failed(error)) => {
                tracing::warn!(%error, "renewing the leader lease failed past the renew deadline; stepping down");
                None
            }
            Err(_) => {
                tracing::warn!(%deadline, "renewing the leader lease timed out at the renew deadline; stepping down");
                None
            }
        }
    }

    /// Reads the Lease and takes it if it is absent, free, expired or ours already.
    async fn try_acquire(&self) -> Result<Option<Held>, LeaderError> {
        let now = self.clock.now();
        let sent = tokio::time::Instant::now();
        let Some(current) = self
            .api
            .get_opt(&self.config.lease_name)
            .await
            .map_err(|e| self.kube_error(e))?
        else {
            return self.create(now).await;
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec
            .holder_identity
            .as_deref()
            .filter(|holder| !holder.is_empty());
        let ours = holder == Some(self.config.identity.as_str());
        if let Some(holder) = holder
            && !ours
            && !self.expired(&spec, now)
        {
            tracing::debug!(%holder, "the leader lease is held; standing by");
            return Ok(None);
        }

        // `current` carries the resourceVersion we read: if another standby takes the
        // Lease between our read and this write, the API server answers 409 and only
        // one of us wins.
        let mut next = current;
        let next_spec = next.spec.get_or_insert_with(LeaseSpec::default);
        if !ours {
            next_spec.acquire_time = Some(micro_time(now)?);
            next_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        next_spec.holder_identity = Some(self.config.identity.clone());
        next_spec.renew_time = Some(micro_time(now)?);
        next_spec.lease_duration_seconds = Some(self.config.lease_duration_seconds());
        match self
            .api
            .replace(&self.config.lease_name, &post_params(), &next)
            .await
        {
            Ok(lease) => {
                self.fence.open_until(sent + self.config.renew_deadline);
                tracing::info!(previous = holder.unwrap_or(""), "acquired the leader lease");
                Ok(Some(Held {
                    lease,
                    renewed_at: now,
                }))
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                tracing::debug!("another replica wrote the leader lease first");
                Ok(None)
            }
            Err(error) => Err(self.kube_error(error)),
        }
    }

    /// Creates the Lease, held by us.
    async fn create(&self, now: DateTime<Utc>) -> Result<Option<Held>, LeaderError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.lease_name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_duration_seconds()),
                acquire_time: Some(micro_time(now)?),
                renew_time: Some(micro_time(now)?),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let sent = tokio::time::Instant::now();
        match self.api.create(&post_params(), &lease).await {
            Ok(lease) => {
                self.fence.open_until(sent + self.config.renew_deadline);
                tracing::info!("created the leader lease");
                Ok(Some(Held {
                    lease,
                    renewed_at: now,
                }))
            }
            // Another replica created it between our read and our create; it leads.
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(None),
            Err(error) => Err(self.kube_error(error)),
        }
    }

    /// Writes a new renewTime over the Lease we hold, with the resourceVersion of our last write.
    async fn renew(&self, current: &Held, now: DateTime<Utc>) -> Renewal {
        let mut next = current.lease.clone();
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(self.config.lease_duration_seconds());
        spec.renew_time = match micro_time(now) {
            Ok(time) => Some(time),
            Err(error) => return Renewal::Failed(error),
        };
        let sent = tokio::time::Instant::now();
        match self
            .api
            .replace(&self.config.lease_name, &post_params(), &next)
            .await
        {
            Ok(lease) => {
                // Written at or after `sent`: no standby takes over before `sent` plus the
                // lease duration, and the fence closes a margin earlier.
                self.fence.open_until(sent + self.config.renew_deadline);
                Renewal::Renewed(Box::new(Held {
                    lease,
                    renewed_at: now,
                }))
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => Renewal::Lost,
            // Deleted under us: whoever recreates it first leads.
            Err(kube::Error::Api(status)) if status.is_not_found() => Renewal::Lost,
            Err(error) => Renewal::Failed(self.kube_error(error)),
        }
    }

    /// Hands the Lease back so a standby need not wait for it to expire.
    async fn release(&self, current: Held) {
        let mut next = current.lease;
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        // For electors that only look at expiry (client-go does this too).
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = micro_time(self.clock.now()).ok();
        let params = post_params();
        let replace = self.api.replace(&self.config.lease_name, &params, &next);
        match tokio::time::timeout(self.config.renew_deadline, replace).await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            // Not ours any more (it expired and a standby took it): nothing to release.
            Ok(Err(kube::Error::Api(status))) if status.is_conflict() || status.is_not_found() => {
                tracing::info!("the leader lease was taken over already; nothing to release")
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %self.kube_error(error), "releasing the leader lease failed")
            }
            Err(_) => {
                tracing::warn!("releasing the leader lease timed out; a standby takes over when it expires")
            }
        }
    }

    /// Whether a holder stopped renewing: `renewTime + leaseDurationSeconds < now`.
    /// Compares the holder's clock with ours: `lease_duration - renew_deadline` is the
    /// skew this tolerates.
    fn expired(&self, spec: &LeaseSpec, now: DateTime<Utc>) -> bool {
        let Some(renewed) = spec.renew_time.as_ref().and_then(from_micro_time) else {
            // A holder that never renewed has no claim.
            return true;
        };
        let duration = spec
            .lease_duration_seconds
            .map_or(delta(self.config.lease_duration), |seconds| {
                TimeDelta::seconds(i64::from(seconds))
            });
        renewed + duration < now
    }

    fn set_leading(&self, leading: bool) {
        if !leading {
            self.fence.close();
        }
        let changed = self.leading.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            tracing::info!(identity = %self.config.identity, leading, "leadership changed");
            if let Some(metrics) = &self.metrics {
                metrics.set_leader(leading);
            }
        }
    }

    fn kube_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Kube {
            namespace: self.config.namespace.clone(),
            name: self.config.lease_name.clone(),
            source,
        }
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

fn micro_time(time: DateTime<Utc>) -> Result<MicroTime, LeaderError> {
    Timestamp::from_microsecond(time.timestamp_micros())
        .map(MicroTime)
        .map_err(|_| LeaderError::ClockOutOfRange(time))
}

fn from_micro_time(time: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(time.0.as_microsecond())
}

#[cfg(test)]
mod tests {
    use horolog_memserver::{ApiServer, RequestMatch};
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    use super::*;
    use crate::clock::TokioClock;

    const NS: &str = "horolog-system";
    const NAME: &str = "horolog";

    /// How a replica is cut off from the API server (the others still reach it).
    #[derive(Clone, Copy, Debug)]
    enum Cutoff {
        /// Its requests get 503 Service Unavailable.
        Failing,
        /// Its connections are refused (a transport error, as from a stopped API server).
        Refused,
        /// Its requests never get an answer.
        Hanging,
    }

    /// The in-memory API server the replicas share, on paused tokio time.
    struct Cluster {
        server: ApiServer,
        clock: TokioClock,
    }

    impl Cluster {
        fn new() -> Cluster {
            let clock = clock();
            let server = ApiServer::new(Arc::new(clock.clone()));
            Cluster { server, clock }
        }

        /// A replica whose requests carry `identity` as their User-Agent, so faults can single
        /// it out.
        fn start(&self, identity: &str) -> Replica {
            Replica::with_client(self.server.client_as(identity), identity, &self.clock)
        }

        fn cut_off(&self, identity: &str, how: Cutoff) {
            let requests = RequestMatch::any().client(identity);
            let faults = self.server.faults();
            match how {
                Cutoff::Failing => faults.fail(requests, usize::MAX, 503),
                Cutoff::Refused => faults.refuse(requests),
                Cutoff::Hanging => faults.delay(requests, Duration::from_secs(24 * 3600)),
            }
        }

        /// Replica `a` leading, and `b` started beside it as a standby.
        async fn leader_and_standby(&self) -> (Replica, Replica) {
            let mut a = self.start("a");
            assert!(a.becomes(true, SECOND).await, "a creates the lease and leads");
            let b = self.start("b");
            (a, b)
        }

        fn reconnect(&self) {
            self.server.faults().restore();
        }

        /// The stored Lease's spec (default when there is none).
        fn spec(&self) -> LeaseSpec {
            self.server
                .snapshot()
                .into_iter()
                .find(|object| object["kind"] == "Lease" && object["metadata"]["name"] == NAME)
                .and_then(|object| serde_json::from_value::<Lease>(object).ok())
                .and_then(|lease| lease.spec)
                .unwrap_or_default()
        }

        /// Another writer (a third replica, or kubectl) takes the Lease.
        async fn take_over(&self, holder: &str) {
            let leases: Api<Lease> = Api::namespaced(self.server.client_as(holder), NS);
            let mut lease = leases.get(NAME).await.expect("the lease exists");
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(holder.to_owned());
            spec.renew_time = Some(micro_time(self.clock.now()).expect("time in range"));
            leases
                .replace(NAME, &PostParams::default(), &lease)
                .await
                .expect("the intruder writes the lease");
        }
    }

    /// One replica: its leadership channel and the stop signal for `run`.
    struct Replica {
        leading: watch::Receiver<bool>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: JoinHandle<()>,
    }

    impl Replica {
        fn with_client(client: Client, identity: &str, clock: &TokioClock) -> Replica {
            let config = LeaderElectionConfig::new(NS, NAME, identity);
            let elector = LeaderElector::new(client, config, Arc::new(clock.clone())).expect("valid config");
            let leading = elector.subscribe();
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(elector.run(async {
                let _ = stopped.await;
            }));
            Replica {
                leading,
                stop: Some(stop),
                task,
            }
        }

        fn leads(&self) -> bool {
            *self.leading.borrow()
        }

        /// Waits up to `within` for leadership to become `want`; whether it did.
        async fn becomes(&mut self, want: bool, within: Duration) -> bool {
            tokio::time::timeout(within, self.leading.wait_for(|leading| *leading == want))
                .await
                .is_ok()
        }
    }

    fn clock() -> TokioClock {
        TokioClock::starting_at(
            DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("rfc3339")
                .to_utc(),
        )
    }

    /// Fails the test if both replicas ever lead at once.
    fn watch_exclusive(a: &Replica, b: &Replica) -> JoinHandle<()> {
        let (mut a, mut b) = (a.leading.clone(), b.leading.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = a.changed() => if changed.is_err() { return },
                    changed = b.changed() => if changed.is_err() { return },
                }
                assert!(!(*a.borrow() && *b.borrow()), "two replicas lead at once");
            }
        })
    }

    /// Fails if the exclusivity watcher saw two leaders.
    async fn assert_exclusive(watcher: JoinHandle<()>) {
        watcher.abort();
        if let Err(error) = watcher.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn first_replica_creates_the_lease_and_of_two_only_one_leads() {
        let cluster = Cluster::new();
        let (a, b) = cluster.leader_and_standby().await;
        let exclusive = watch_exclusive(&a, &b);

        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(a.leads() && !b.leads(), "a keeps renewing, b stands by");
        let spec = cluster.spec();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        let renewed = spec
            .renew_time
            .as_ref()
            .and_then(from_micro_time)
            .expect("renewTime");
        assert!(
            cluster.clock.now() - renewed <= TimeDelta::seconds(2),
            "renewed every retry period"
        );
        assert_exclusive(exclusive).await;
    }

    #[tokio::test(start_paused = true)]
    async fn standby_takes_over_only_after_a_crashed_leaders_lease_expires() {
        let cluster = Cluster::new();
        let (a, mut b) = cluster.leader_and_standby().await;
        tokio::time::sleep(Duration::from_secs(5)).await;

        // A crash: no release, no more renewals.
        a.task.abort();
        let crashed = Instant::now();
        assert!(
            !b.becomes(true, Duration::from_secs(12)).await,
            "b waits for the lease to expire"
        );
        assert!(
            b.becomes(true, Duration::from_secs(6)).await,
            "b takes over once the lease expired"
        );
        let waited = crashed.elapsed();
        assert!(
            waited > Duration::from_secs(13) && waited <= Duration::from_secs(17),
            "waited {waited:?}"
        );
        assert_eq!(cluster.spec().holder_identity.as_deref(), Some("b"));
        assert_eq!(cluster.spec().lease_transitions, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn release_on_shutdown_hands_over_within_one_retry_period() {
        let cluster = Cluster::new();
        let (mut a, mut b) = cluster.leader_and_standby().await;
        let exclusive = watch_exclusive(&a, &b);
        tokio::time::sleep(Duration::from_secs(5)).await;

        a.stop.take().expect("running").send(()).expect("a still running");
        let released = Instant::now();
        (&mut a.task).await.expect("a's run returns after shutdown");
        assert!(!a.leads(), "a reports false after shutdown");
        assert!(
            b.becomes(true, Duration::from_secs(3)).await,
            "b takes over without waiting for expiry"
        );
        assert!(released.elapsed() <= Duration::from_secs(2));
        assert_exclusive(exclusive).await;
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_on_renew_makes_the_leader_step_down() {
        let cluster = Cluster::new();
        let mut a = cluster.start("a");
        assert!(a.becomes(true, SECOND).await);

        cluster.take_over("intruder").await;
        assert!(
            a.becomes(false, Duration::from_secs(3)).await,
            "the next renew gets 409 and a steps down"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!a.leads(), "a stands by while the intruder's lease is fresh");
        assert_eq!(cluster.spec().holder_identity.as_deref(), Some("intruder"));
    }

    #[tokio::test(start_paused = true)]
    async fn leader_cut_off_from_the_api_steps_down_before_the_standby_takes_over() {
        for how in [Cutoff::Failing, Cutoff::Refused, Cutoff::Hanging] {
            let cluster = Cluster::new();
            let (mut a, mut b) = cluster.leader_and_standby().await;
            let exclusive = watch_exclusive(&a, &b);
            tokio::time::sleep(Duration::from_secs(5)).await;

            cluster.cut_off("a", how);
            let cut = Instant::now();
            assert!(
                a.becomes(false, Duration::from_secs(11)).await,
                "{how:?}: a steps down by the renew deadline"
            );
            assert!(
                cut.elapsed() >= Duration::from_secs(8),
                "{how:?}: a kept leading while within the deadline"
            );
            assert!(
                b.becomes(true, Duration::from_secs(10)).await,
                "{how:?}: b takes over after expiry"
            );
            assert_exclusive(exclusive).await;

            // Reconnected, a sees b's fresh lease and stays a standby.
            cluster.reconnect();
            tokio::time::sleep(Duration::from_secs(30)).await;
            assert!(!a.leads() && b.leads(), "{how:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_leader_sends_no_write_once_its_lease_could_have_lapsed() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use tower::Layer;
        let cluster = Cluster::new();
        let fence = Fence::new();
        let config = LeaderElectionConfig::new(NS, NAME, "a");
        let elector = LeaderElector::new(
            cluster.server.client_as("a"),
            config,
            Arc::new(cluster.clock.clone()),
        )
        .expect("valid config")
        .with_fence(fence.clone());
        let mut leading = elector.subscribe();
        let election = tokio::spawn(elector.run(std::future::pending::<()>()));
        assert!(
            tokio::time::timeout(SECOND, leading.wait_for(|l| *l))
                .await
                .is_ok(),
            "a leads"
        );
        // a's controllers write through a fenced client, as the operator's do.
        let writer = tower::ServiceBuilder::new()
            .map_request(|mut request: http::Request<kube::client::Body>| {
                request.headers_mut().insert(
                    http::header::USER_AGENT,
                    http::HeaderValue::from_static("a-controllers"),
                );
                request
            })
            .service(cluster.server.clone());
        let writer = Client::new(FenceLayer(fence.clone()).layer(writer), NS);
        let maps: Api<ConfigMap> = Api::namespaced(writer, NS);
        let write = |name: &str| {
            let map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            };
            let maps = maps.clone();
            async move { maps.create(&PostParams::default(), &map).await }
        };
        assert!(write("while-leading").await.is_ok());
        // a's election loop freezes (SIGSTOP, CPU starvation): it neither renews nor steps
        // down, so only the fence's own clock can stop a's writes. b, started now, takes the
        // Lease once it expires.
        let last_renewal = Instant::now();
        election.abort();
        let mut b = cluster.start("b");
        assert!(b.becomes(true, Duration::from_secs(20)).await, "b takes over");
        assert!(last_renewal.elapsed() >= Duration::from_secs(15));
        // a's controllers, resuming, try to write: refused without reaching the server.
        let refused = write("after-the-lease").await;
        assert!(refused.is_err(), "{refused:?}");
        let written_by_a = cluster
            .server
            .request_counts()
            .iter()
            .filter(|(key, _)| key.client == "a-controllers" && key.verb.is_write())
            .map(|(_, n)| n)
            .sum::<u64>();
        assert_eq!(written_by_a, 1, "only the write made while the lease was valid");
        assert!(!fence.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn one_failed_renewal_within_the_deadline_keeps_the_leader() {
        let cluster = Cluster::new();
        let (a, b) = cluster.leader_and_standby().await;
        let exclusive = watch_exclusive(&a, &b);
        tokio::time::sleep(Duration::from_secs(5)).await;

        // The next renewal (a PUT of the Lease by a) fails; the one after it succeeds.
        let renewals = RequestMatch::any().client("a").verb("update").resource("leases");
        cluster.server.faults().fail_nth(renewals, 1, 500);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(a.leads() && !b.leads(), "a retried and kept the lease");
        let failed = cluster
            .server
            .request_counts()
            .into_iter()
            .filter(|(key, _)| key.client == "a" && key.code == 500)
            .map(|(_, count)| count)
            .sum::<u64>();
        assert_eq!(failed, 1, "exactly one renewal failed");
        assert_exclusive(exclusive).await;
    }

    #[tokio::test(start_paused = true)]
    async fn electors_against_the_in_memory_api_server_hand_over_on_release_and_on_expiry() {
        let clock = clock();
        let server = ApiServer::with_crds(Arc::new(clock.clone()), &crate::crd::crds());
        let mut a = Replica::with_client(server.client(), "a", &clock);
        assert!(a.becomes(true, SECOND).await, "a creates the lease and leads");
        let mut b = Replica::with_client(server.client(), "b", &clock);
        let mut c = Replica::with_client(server.client(), "c", &clock);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(a.leads() && !b.leads() && !c.leads(), "only a leads");

        a.stop.take().expect("running").send(()).expect("a still running");
        (&mut a.task).await.expect("a stops");
        let released = Instant::now();
        tokio::time::timeout(Duration::from_secs(3), async {
            tokio::select! {
                _ = b.leading.wait_for(|leading| *leading) => {}
                _ = c.leading.wait_for(|leading| *leading) => {}
            }
        })
        .await
        .expect("a standby takes over the released lease within a retry period");
        assert!(released.elapsed() <= Duration::from_secs(2));
        assert!(b.leads() != c.leads(), "exactly one of b and c leads");

        let (leader, standby) = if b.leads() {
            (&mut b, &mut c)
        } else {
            (&mut c, &mut b)
        };
        leader.task.abort();
        let crashed = Instant::now();
        assert!(
            standby.becomes(true, Duration::from_secs(18)).await,
            "the standby takes over after expiry"
        );
        assert!(
            crashed.elapsed() > Duration::from_secs(13),
            "not before the lease expired"
        );
    }

    #[test]
    fn timings_that_allow_two_leaders_are_rejected() {
        let mut config = LeaderElectionConfig::new(NS, NAME, "a");
        assert!(config.validate().is_ok());
        config.renew_deadline = Duration::from_secs(15);
        assert!(matches!(config.validate(), Err(LeaderError::InvalidConfig(_))));
        config.renew_deadline = Duration::from_secs(10);
        config.retry_period = Duration::from_secs(10);
        assert!(config.validate().is_err());
        config.retry_period = Duration::from_secs(2);
        config.lease_duration = Duration::from_millis(15_500);
        assert!(
            config.validate().is_err(),
            "leaseDurationSeconds holds whole seconds"
        );
    }

    #[test]
    fn identity_prefers_the_pod_name() {
        // Only reads the environment; POD_NAME is not set under cargo test.
        if std::env::var_os("POD_NAME").is_none() {
            let identity = default_identity();
            assert!(
                identity.ends_with(&format!("-{}", std::process::id())),
                "{identity}"
            );
        }
    }
}
