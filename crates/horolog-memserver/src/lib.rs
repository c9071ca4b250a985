//! An in-process Kubernetes API server: the slice of the API the operator uses, served as a tower
//! `Service` to a real [`kube::Client`], so `Controller`, watchers, reflectors, `Api` calls and the
//! event `Recorder` run unchanged against it. Controller tests use it with a manual clock;
//! `horolog run --local` uses it to run the operator without a cluster. It knows the built-in
//! resources it needs ([`ResourceType::defaults`]); custom resources come from their CRDs
//! ([`ApiServer::register_crd`], or by creating the CRD through the API, as on a real server).
//!
//! What it serves, for every registered [`ResourceType`] (see [`ResourceType::defaults`]):
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
//! - the `/status` subresource where the type has one: writes to `/status` change only `.status`,
//!   writes to the object keep `.status`; `metadata.generation` grows only when something other
//!   than metadata and status changes; a write that changes nothing is no change (no new
//!   resourceVersion, no watch event);
//! - delete: objects with finalizers get a deletionTimestamp and go when the last finalizer is
//!   removed; then owner-reference garbage collection deletes dependents whose owners are all
//!   gone (background propagation, done at once), or orphans them with `propagationPolicy=Orphan`;
//!   deleting a Namespace deletes every object in it at once (no `Terminating` phase);
//! - metadata-only responses (`Accept: ...;as=PartialObjectMetadata...`), which
//!   `Controller::owns` asks for.
//!
//! What it does not do: validation against schemas, defaulting, admission, RBAC, discovery,
//! namespaces as a precondition (any namespace name works), managedFields for non-apply writes,
//! pod lifecycle (a new Pod stays `Pending` until someone writes its status), graceful pod
//! deletion (pods go at once).
//! Timestamps come from the [`Clock`]; watch timeouts and bookmarks run on tokio time, so tests
//! under `tokio::time::pause()` see them without waiting.

mod apply;
mod error;
mod patch;
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

pub use error::ApiError;
pub use resource::{ResourceType, StaticScope};

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
        ApiServer {
            store: Arc::new(Mutex::new(Store::new(clock, DEFAULT_HISTORY))),
        }
    }

    /// An empty server that keeps only `history` changes for resuming watches (older
    /// resourceVersions get 410 Gone); for testing relists.
    pub fn with_history_limit(clock: Arc<dyn Clock>, history: usize) -> Self {
        ApiServer {
            store: Arc::new(Mutex::new(Store::new(clock, history))),
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
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
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

    fn lock(&self) -> MutexGuard<'_, Store> {
        // No code path panics while holding the lock on purpose; if one did, the store is still
        // a set of whole objects, so keep serving rather than failing every later request.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The server as an HTTP service: `kube::Client::new` takes it directly ([`ApiServer::client`]),
/// and hyper can serve it on a socket for `kubectl`.
impl<B> tower::Service<http::Request<B>> for ApiServer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.clone();
        Box::pin(async move { Ok(service::handle(server, request).await) })
    }
}
