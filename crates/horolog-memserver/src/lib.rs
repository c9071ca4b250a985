//! An in-process Kubernetes API server: the slice of the API the operator uses, served as a tower
//! `Service` to a real [`kube::Client`], so `Controller`, watchers, reflectors, `Api` calls and the
//! event `Recorder` run unchanged against it. Controller tests use it with a tokio clock under
//! `start_paused`; `horolog run --local` uses it to run the operator without a cluster. It knows
//! the built-in resources it needs ([`ResourceType::defaults`]: core Pods, ConfigMaps, Secrets,
//! Services, ServiceAccounts, Events and Namespaces, `events.k8s.io` Events, Leases, `batch/v1`
//! Jobs and CronJobs, CRDs); custom resources come from their CRDs
//! ([`ApiServer::register_crd`], or by creating the CRD through the API, as on a real server).
//!
//! What it serves, for every registered [`ResourceType`]:
//!
//! - get, list (label selectors `a=b`, `a!=b`, `a`, `!a`, `a in (..)`, `a notin (..)`; field
//!   selectors on any dotted path, e.g. `metadata.name`, `spec.scheduleName`; `limit`/`continue`),
//!   watch (`ADDED`/`MODIFIED`/`DELETED`, `BOOKMARK`s every minute with `allowWatchBookmarks`,
//!   `sendInitialEvents`, `timeoutSeconds`; an `ERROR` 410 in the stream when the requested
//!   resourceVersion is older than the kept history, so watchers relist);
//! - create (uid, resourceVersion, creationTimestamp from the clock, generation 1, `generateName`,
//!   409 `AlreadyExists`), replace (409 `Conflict` on a stale resourceVersion), patch (merge,
//!   JSON patch, strategic merge treated as merge; server-side apply approximated as a merge that
//!   also removes the fields the same manager applied before and leaves out now, creating an absent
//!   object — lists are atomic and conflicts are never reported, see `apply.rs`), `dryRun=All`;
//! - the `/status` subresource where the type has one (Pods, Jobs, CronJobs, custom resources
//!   that declare it): writes to `/status` change only `.status`, writes to the object keep
//!   `.status` (and a create drops it); `metadata.generation` grows only when something other
//!   than metadata and status changes; a write that changes nothing is no change (no new
//!   resourceVersion, no watch event);
//! - structural defaulting of custom resources from their CRD's `openAPIV3Schema`: a missing
//!   property with a `default` gets it (recursing into present objects, `additionalProperties`
//!   and array `items`), on create, update and patch, after a create has dropped `.status` — so
//!   a `status` default shows on a fresh object, as the real server shows it when it reads the
//!   object back. Defaults are applied when an object is written, not when it is read: an object
//!   stored before its CRD gained a default gets it at its next write;
//! - delete: objects with finalizers get a deletionTimestamp and go when the last finalizer is
//!   removed; then owner-reference garbage collection deletes dependents whose owners are all
//!   gone (background propagation, done at once, where a real cluster's garbage collector takes
//!   a second or two), or orphans them with `propagationPolicy=Orphan`; deleting a Namespace
//!   deletes every object in it at once (no `Terminating` phase);
//! - graceful Pod deletion, as the real Pod strategy does it: deleting a Pod bound to a node
//!   (`spec.nodeName` set) that has not finished gives it a grace period — the delete's
//!   `gracePeriodSeconds`, else its `spec.terminationGracePeriodSeconds`, else 30 — by setting
//!   `deletionTimestamp` (now + grace) and `deletionGracePeriodSeconds`; the Pod stays until a
//!   delete with grace 0 (the kubelet's confirmation, or `kubectl delete --force`). A later
//!   delete may only shorten the grace period. A Pod never scheduled, or Succeeded or Failed,
//!   goes at once; garbage collection and Namespace deletion delete Pods the same way;
//! - metadata-only responses (`Accept: ...;as=PartialObjectMetadata...`), which
//!   `Controller::owns` asks for.
//!
//! For tests of what an unreliable API server does to a client, [`ApiServer::faults`] refuses
//! connections (a transport error, as from a server that is down), fails chosen requests with a
//! status code, delays them on tokio time, refuses everything right after a chosen request (a
//! crash between two calls), holds back the events of chosen watches (a client whose cache
//! lags its own writes), and ends open watches; see [`Faults`]. Every request is counted as
//! `apiserver_request_total` counts it, by client (`User-Agent`, set with
//! [`ApiServer::client_as`]), verb, resource, subresource and code ([`ApiServer::request_counts`],
//! [`ApiServer::write_count`], [`ApiServer::metrics_text`]), the server's own garbage collection
//! included as client [`GARBAGE_COLLECTOR`].
//!
//! What it does not do: validation against schemas (nor pruning of unknown fields), defaulting
//! of built-in resources (a Job gets no selector, `backoffLimit` or `completions`; a Pod no
//! `terminationGracePeriodSeconds`), controllers (no Job or CronJob controller, no scheduler, no
//! kubelet: a new Pod stays `Pending` until someone writes its status, a Job makes no Pods),
//! admission, RBAC, discovery, namespaces as a precondition (any namespace name works),
//! managedFields for non-apply writes beyond one `Update` entry (manager, `time`, `f:spec`)
//! per manager for a write that changes `.spec`.
//! Timestamps come from the [`Clock`]; watch timeouts, bookmarks and fault delays run on tokio
//! time, so tests under `tokio::time::pause()` see them without waiting.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod apply;
mod counts;
mod defaulting;
mod error;
mod faults;
mod patch;
mod request;
mod resource;
mod selector;
mod service;
mod store;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{Value, json};
use tokio::sync::broadcast;

pub use counts::{GARBAGE_COLLECTOR, RequestKey};
pub use error::ApiError;
pub use faults::Faults;
pub use request::{RequestMatch, Verb};
pub use resource::{ResourceType, StaticScope};

use counts::RequestCounts;
use faults::FaultState;
use horolog_core::clock::Clock;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use store::Store;

/// How many changes are kept for watches that resume from a resourceVersion.
const DEFAULT_HISTORY: usize = 10_000;

/// The body of every response: a JSON document, or a stream of watch events.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The in-process API server. Cloning is cheap and shares the state.
#[derive(Clone)]
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
    faults: Arc<FaultState>,
    counts: Arc<RequestCounts>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object was created.
    Added,
    /// The object was written (including being marked for deletion).
    Modified,
    /// The object is gone.
    Deleted,
}

/// One write to the store, as watchers and [`ApiServer::subscribe_changes`] see it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resource version the write produced.
    pub resource_version: u64,
    /// Created, modified or deleted.
    pub kind: ChangeKind,
    /// The resource type of the object.
    pub resource: Arc<ResourceType>,
    /// The object after the write (for a delete: as it was, with the delete's resourceVersion).
    /// Shared with the store, the history and every watcher.
    pub object: Arc<Value>,
    /// The object before a modification.
    pub previous: Option<Arc<Value>>,
    /// `object` as JSON, encoded once by the first watcher (or response) that needs it and
    /// reused by the others, outside the store's lock.
    encoded: Arc<std::sync::OnceLock<Bytes>>,
}

/// A value as compact JSON, as `Value::to_string` writes it.
pub(crate) fn encode(value: &impl serde::Serialize) -> Bytes {
    // Serializing a `Value` (or a struct of them) cannot fail: every map key is a string.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A saved state that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot import API server state: {0}")]
pub struct ImportError(String);

impl ApiServer {
    /// An empty server serving [`ResourceType::defaults`], stamping times from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ApiServer::with_history_limit(clock, DEFAULT_HISTORY)
    }

    /// An empty server that keeps only `history` changes for resuming watches (older
    /// resourceVersions get 410 Gone); for testing relists.
    pub fn with_history_limit(clock: Arc<dyn Clock>, history: usize) -> Self {
        let counts = Arc::new(RequestCounts::default());
        ApiServer {
            store: Arc::new(Mutex::new(Store::new(clock, history, counts.clone()))),
            faults: Arc::new(FaultState::default()),
            counts,
        }
    }

    /// Serves one more resource type (or replaces the one with the same group, version and plural).
    pub fn register(&self, resource: ResourceType) {
        self.lock().register(resource);
    }

    /// Serves the custom resources `crd` declares, as a real API server does once the CRD is
    /// created (creating the CRD object through the API does the same and also stores it).
    pub fn register_crd(&self, crd: &CustomResourceDefinition) {
        let mut store = self.lock();
        for resource in ResourceType::from_crd(crd) {
            store.register(resource);
        }
    }

    /// A server at `clock` that serves the built-in resources and every CRD in `crds`.
    pub fn with_crds(clock: Arc<dyn Clock>, crds: &[CustomResourceDefinition]) -> Self {
        let server = ApiServer::new(clock);
        for crd in crds {
            server.register_crd(crd);
        }
        server
    }

    /// A real `kube::Client` whose requests this server answers, with default namespace `default`.
    /// Its requests carry no `User-Agent`: they are counted under client `unknown`.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// A client like [`ApiServer::client`] whose requests carry `user_agent` as their
    /// `User-Agent`, so counts ([`ApiServer::request_counts`]) and faults
    /// ([`RequestMatch::client`]) can tell, say, the operator, the test and a kubelet stand-in
    /// apart. Characters a header cannot hold become `_`.
    pub fn client_as(&self, user_agent: &str) -> kube::Client {
        let header = user_agent_header(user_agent);
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: http::Request<kube::client::Body>| {
                request
                    .headers_mut()
                    .insert(http::header::USER_AGENT, header.clone());
                request
            })
            .service(self.clone());
        kube::Client::new(service, "default")
    }

    /// The faults this server injects into the requests it serves; none until set.
    pub fn faults(&self) -> Faults {
        Faults::new(self.faults.clone())
    }

    /// How many requests the server answered, by client, verb, resource, subresource and code,
    /// as `apiserver_request_total` counts them, ordered by key. Refused requests are not
    /// counted (they never reached the server); failed ones are, with their code. A watch is
    /// counted when it starts (the real server counts it when it ends). Deletes the server does
    /// itself, as kube-controller-manager would on a real cluster (garbage collection of
    /// dependents, emptying a deleted Namespace), are counted as `DELETE`s (and the owner
    /// references it drops as `PATCH`es) by client [`GARBAGE_COLLECTOR`], one per object.
    pub fn request_counts(&self) -> Vec<(RequestKey, u64)> {
        self.counts.snapshot()
    }

    /// Sets every request count back to zero, e.g. after a test's setup.
    pub fn reset_request_counts(&self) {
        self.counts.reset();
    }

    /// The number of writes (create, update, patch including apply, delete, deletecollection;
    /// any response code) counted for `client` and `resource` (a plural such as `pods`);
    /// `None` counts every client or every resource.
    pub fn write_count(&self, client: Option<&str>, resource: Option<&str>) -> u64 {
        counts::write_count(&self.counts.snapshot(), client, resource)
    }

    /// The request counts as `apiserver_request_total` in the Prometheus text format, as a
    /// `/metrics` endpoint serves them:
    /// `apiserver_request_total{verb="POST",group="",resource="pods",subresource="",code="201",client="horolog"} 3`.
    /// Verbs are the real server's labels ([`Verb::metric_label`]): GET, LIST, WATCH, POST (create),
    /// PUT (update), PATCH, APPLY (server-side apply), DELETE, DELETECOLLECTION.
    pub fn metrics_text(&self) -> String {
        counts::metrics_text(&self.counts.snapshot())
    }

    /// Creates `object` (it names its `apiVersion`, `kind` and, if namespaced,
    /// `metadata.namespace`) as a create request would, but without reading it through any
    /// type or schema: whatever JSON it holds is stored and served as is. For tests of objects
    /// a real API server holds despite the operator's types (an older schema's leftover, a
    /// field the CRD kept free-form, a write that bypassed validation). Returns the stored
    /// object.
    pub fn create_unchecked(&self, object: Value) -> Result<Value, ApiError> {
        let text = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut store = self.lock();
        let rt = store
            .resource_for_kind(&api_version, &kind)
            .ok_or_else(|| ApiError::bad_request(format!("no resource serves {api_version} {kind}")))?;
        let created = store.create(&rt, &namespace, object, false)?;
        Ok((*created.value).clone())
    }

    /// Makes garbage collection lag, as on a real cluster, where kube-controller-manager
    /// deletes (or, with `propagationPolicy: Orphan`, releases) the dependents of a deleted
    /// owner a moment after it goes: until [`ApiServer::release_garbage_collection`], they stay
    /// as they are. Without it, dependents are collected in the same request that removes
    /// their owner.
    pub fn hold_garbage_collection(&self) {
        self.lock().hold_garbage();
    }

    /// Collects every dependent held since [`ApiServer::hold_garbage_collection`], and
    /// collects at once again from now on.
    pub fn release_garbage_collection(&self) {
        self.lock().release_garbage();
    }

    /// The resource version of the latest change.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version()
    }

    /// Every stored object, ordered by resource type, namespace and name.
    pub fn snapshot(&self) -> Vec<Value> {
        self.lock().snapshot()
    }

    /// The whole state as a `v1` `List` (readable by `kubectl get -f`), for [`ApiServer::import`].
    pub fn export(&self) -> Value {
        let store = self.lock();
        json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": store.snapshot(),
        })
    }

    /// A server serving `crds` and holding the state [`ApiServer::export`] saved: objects keep
    /// their uid, resourceVersion and timestamps; resourceVersions continue from the saved one.
    /// Watches cannot resume from before the import (410), so watchers relist.
    pub fn import(
        clock: Arc<dyn Clock>,
        crds: &[CustomResourceDefinition],
        state: &Value,
    ) -> Result<Self, ImportError> {
        let items = state
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| ImportError("expected a List with items".into()))?;
        let version = state
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let server = ApiServer::with_crds(clock, crds);
        server.lock().import(items, version).map_err(ImportError)?;
        Ok(server)
    }

    /// Every change from now on, in resourceVersion order (for persisting state, or for a local
    /// executor to notice new Pods). A receiver that falls more than a few thousand changes
    /// behind gets `RecvError::Lagged` and should reread [`ApiServer::snapshot`].
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.lock().subscribe()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // No code path panics while holding the lock on purpose; if one did, the store is still
        // a set of whole objects, so keep serving rather than failing every later request.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `User-Agent` value holding `user_agent`, with the characters a header cannot hold as `_`.
fn user_agent_header(user_agent: &str) -> http::HeaderValue {
    let printable: String = user_agent
        .chars()
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '_' })
        .collect();
    http::HeaderValue::from_str(&printable).unwrap_or_else(|_| http::HeaderValue::from_static("_"))
}

/// The server as an HTTP service: `kube::Client::new` takes it directly ([`ApiServer::client`]),
/// and hyper can serve it on a socket for `kubectl`. Its error is a refused connection
/// (`std::io::ErrorKind::ConnectionRefused`), returned only while [`Faults`] refuse requests;
/// `kube::Client` reports it as `kube::Error::Service`, a transport error, as it reports an API
/// server that is down. Served over a socket, answer it by closing the connection.
impl<B> tower::Service<http::Request<B>> for ApiServer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.clone();
        Box::pin(service::handle(server, request))
    }
}
