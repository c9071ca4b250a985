//! The thin layer that talks to the cluster: namespace, creates (timed), watches, cleanup.
//! Everything it learns is handed to the pure modules as plain values.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::LoadTestError;
use super::objects::BENCH_LABEL;
use super::runs::Observation;
use horolog::api::{JobRun, Schedule};

/// Fails with a clear message when the horolog CRDs are not installed: without them every
/// create would fail with a bare 404.
pub async fn check_crds(client: &Client, namespace: &str) -> Result<(), LoadTestError> {
    // Namespaced, so a user allowed only the bench namespace can run it; listing in a namespace
    // that does not exist yet is an empty list, while a missing CRD is a 404.
    let probe = ListParams::default().limit(1);
    let schedules = Api::<Schedule>::namespaced(client.clone(), namespace)
        .list(&probe)
        .await;
    let jobruns = Api::<JobRun>::namespaced(client.clone(), namespace)
        .list(&probe)
        .await;
    let (schedules, jobruns) = (schedules.map(|_| ()), jobruns.map(|_| ()));
    match schedules.and(jobruns) {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Err(LoadTestError::CrdsMissing),
        Err(source) => Err(LoadTestError::Cluster {
            what: "listing Schedules".into(),
            source,
        }),
    }
}

/// Creates `name` unless it exists; true when this call created it (so cleanup may delete it).
pub async fn ensure_namespace(client: &Client, name: &str, run_id: &str) -> Result<bool, LoadTestError> {
    let api = Api::<Namespace>::all(client.clone());
    let failed = |source| LoadTestError::Cluster {
        what: format!("creating namespace {name}"),
        source,
    };
    if api.get_opt(name).await.map_err(failed)?.is_some() {
        return Ok(false);
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([(BENCH_LABEL.to_string(), run_id.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(true),
        // Someone else created it meanwhile: it is theirs, not ours to delete.
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(source) => Err(failed(source)),
    }
}

/// What a batch of creates did.
#[derive(Debug, Default)]
pub struct Created {
    /// Names of the objects that exist now.
    pub names: Vec<String>,
    /// Seconds each create call took, successful or not.
    pub latencies: Vec<f64>,
    /// One line per failed create.
    pub errors: Vec<String>,
    /// Wall-clock seconds for the whole batch.
    pub seconds: f64,
}

/// Creates `objects` through `api`, `concurrency` calls at a time, timing each call. A failed
/// create is recorded, not fatal: the bench goes on with what exists and says so.
pub async fn create_all<K>(api: &Api<K>, objects: Vec<K>, concurrency: usize) -> Created
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let started = Instant::now();
    let params = PostParams::default();
    let results: Vec<(String, f64, Result<(), kube::Error>)> = stream::iter(objects)
        .map(|object| {
            let params = &params;
            async move {
                let name = object.name_any();
                let call = Instant::now();
                let result = api.create(params, &object).await.map(|_| ());
                (name, call.elapsed().as_secs_f64(), result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut created = Created {
        seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    };
    for (name, latency, result) in results {
        created.latencies.push(latency);
        match result {
            Ok(()) => created.names.push(name),
            Err(e) => created
                .errors
                .push(format!("{} {name}: {e}", K::kind(&Default::default()))),
        }
    }
    created
}

/// Aborts a spawned task when dropped, so an early return (an error, Ctrl-C) leaves no watch
/// running behind.
#[derive(Debug)]
pub struct TaskGuard<T>(Option<JoinHandle<T>>);

impl<T> TaskGuard<T> {
    /// Waits for the task's result; `None` if it panicked or was aborted.
    pub async fn join(mut self) -> Option<T> {
        self.0.take()?.await.ok()
    }
}

impl<T> Drop for TaskGuard<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// What one watch recorded, by uid.
#[derive(Debug)]
pub struct Recorded<T> {
    /// Observations by metadata.uid.
    pub seen: HashMap<String, T>,
    /// Watch errors (each followed by a backed-off restart).
    pub errors: usize,
}

/// Watches `api` for objects labelled `selector` until `stop` turns true, turning each event
/// into an observation with `observe` (given the event's arrival time) and merging sightings
/// of the same object.
pub fn record<K, T, F>(
    api: Api<K>,
    selector: String,
    mut stop: watch::Receiver<bool>,
    observe: F,
) -> TaskGuard<Recorded<T>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    T: Observation + Send + 'static,
    F: Fn(&K, DateTime<Utc>) -> Option<T> + Send + 'static,
{
    TaskGuard(Some(tokio::spawn(async move {
        let mut recorded: Recorded<T> = Recorded {
            seen: HashMap::new(),
            errors: 0,
        };
        let events = watcher(api, watcher::Config::default().labels(&selector)).default_backoff();
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                event = events.next() => event,
            };
            // The arrival time is taken before anything else, so it measures the watch alone.
            let now = Utc::now();
            let object = match event {
                Some(Ok(
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o),
                )) => o,
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => continue,
                Some(Err(e)) => {
                    recorded.errors += 1;
                    tracing::warn!(error = %e, selector, "bench watch failed; it restarts with backoff");
                    continue;
                }
                None => break,
            };
            if let Some(observation) = observe(&object, now) {
                match recorded.seen.get_mut(observation.key()) {
                    Some(earlier) => earlier.merge(observation),
                    None => {
                        recorded.seen.insert(observation.key().to_string(), observation);
                    }
                }
            }
        }
        recorded
    })))
}

/// The API server's `/metrics` (Prometheus text): `apiserver_request_total` counts every
/// client's requests. Reading it needs `get` on the non-resource URL `/metrics` (cluster-admin
/// has it; `horolog-dev sandbox` serves it too).
pub async fn api_server_metrics(client: &Client) -> Result<String, kube::Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request_text(request).await
}

/// Deletes what the bench created: the namespace if it created it (everything inside goes
/// with it), else every object labelled with the run id. Returns what it could not delete.
pub async fn cleanup(client: &Client, namespace: &str, namespace_created: bool, run_id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let background = DeleteParams::background();
    if namespace_created {
        let api = Api::<Namespace>::all(client.clone());
        if let Err(e) = api.delete(namespace, &background).await {
            problems.push(format!("deleting namespace {namespace}: {e}"));
        }
        return problems;
    }
    let selector = ListParams::default().labels(&format!("{BENCH_LABEL}={run_id}"));
    // Parents first, so their controllers stop creating children while the children go.
    macro_rules! delete_all {
        ($kind:ty) => {
            let api = Api::<$kind>::namespaced(client.clone(), namespace);
            if let Err(e) = api.delete_collection(&background, &selector).await {
                // A cluster without the CronJob comparison has nothing to delete; 404 is fine.
                if !matches!(&e, kube::Error::Api(s) if s.is_not_found()) {
                    problems.push(format!("deleting {} labelled {BENCH_LABEL}={run_id}: {e}", stringify!($kind)));
                }
            }
        };
    }
    delete_all!(Schedule);
    delete_all!(CronJob);
    delete_all!(JobRun);
    delete_all!(Job);
    delete_all!(Pod);
    problems
}
