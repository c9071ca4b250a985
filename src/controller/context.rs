//! What every reconcile gets: the client, the stores, the clock, the event recorder, the
//! configuration and the slots this process has just handed out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::{ControllerConfig, Error};
use crate::api::{JobRun, Schedule};
use crate::clock::Clock;

/// Hooks for metrics (src/metrics.rs implements them); every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A reconcile of `controller` (`schedule` or `jobrun`) finished.
    fn reconciled(&self, _controller: &'static str, _elapsed: std::time::Duration, _ok: bool) {}
    /// A Schedule fired `runs` JobRuns.
    fn fired(&self, _namespace: &str, _schedule: &str, _runs: usize) {}
    /// A JobRun reached a final phase.
    fn finished(&self, _namespace: &str, _phase: &'static str) {}
    /// A JobRun's Pod was created `delay` after the run's fire time plus jitter.
    fn pod_created(&self, _delay: chrono::TimeDelta) {}
    /// A Schedule pass recorded `missed` fire times as missed and merged `coalesced` away.
    fn planned(&self, _missed: usize, _coalesced: usize) {}
}

/// The state shared by both reconcilers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events on Schedules and JobRuns.
    pub recorder: Recorder,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How the controllers were started.
    pub config: ControllerConfig,
    /// Every Schedule, as the watch cache sees it.
    pub schedules: Store<Schedule>,
    /// Every JobRun, as the watch cache sees it.
    pub jobruns: Store<JobRun>,
    /// Every Pod with a `horolog.dev/jobrun` label, as the watch cache sees it.
    pub pods: Store<Pod>,
    /// Slots of `maxRunningJobs` given out by this process that the JobRun store may not show
    /// yet (the watch event of the write can arrive after the next reconcile of a sibling).
    claims: Mutex<HashMap<(String, String), HashSet<String>>>,
    /// Consecutive failures per object, for error_policy's backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context over the given client, clock, config and watch caches.
    pub fn new(
        client: Client,
        recorder: Recorder,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
        stores: (Store<Schedule>, Store<JobRun>, Store<Pod>),
    ) -> Self {
        let (schedules, jobruns, pods) = stores;
        Context {
            client,
            recorder,
            clock,
            config,
            schedules,
            jobruns,
            pods,
            claims: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The JobRuns owned by `schedule` (matched by owner uid, so a Schedule deleted and
    /// re-created under the same name does not adopt the old one's runs).
    pub fn runs_of(&self, schedule: &Schedule) -> Vec<Arc<JobRun>> {
        let uid = schedule.uid();
        let namespace = schedule.namespace();
        self.jobruns.state_filter(|run| {
            run.namespace() == namespace
                && run
                    .owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid.as_ref())
        })
    }

    /// The JobRuns of the Schedule named `schedule` in `namespace`.
    pub fn runs_named(&self, namespace: &str, schedule: &str) -> Vec<Arc<JobRun>> {
        self.jobruns.state_filter(|run| {
            run.namespace().as_deref() == Some(namespace)
                && run.spec.schedule_name.as_deref() == Some(schedule)
        })
    }

    /// The Schedule named `name` in `namespace`, from the watch cache.
    pub fn schedule(&self, namespace: &str, name: &str) -> Option<Arc<Schedule>> {
        self.schedules.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Pod named `name` in `namespace`, from the watch cache.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(namespace))
    }

    /// Runs `f` on the set of runs of `schedule` that this process let start, while holding
    /// the lock, so that checking for a free slot and taking it is one step.
    pub fn with_claims<T>(
        &self,
        namespace: &str,
        schedule: &str,
        f: impl FnOnce(&mut HashSet<String>) -> T,
    ) -> T {
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (namespace.to_string(), schedule.to_string());
        let result = f(claims.entry(key.clone()).or_default());
        if claims.get(&key).is_some_and(HashSet::is_empty) {
            claims.remove(&key);
        }
        result
    }

    /// Publishes an Event on `object`. Events are best effort: a failure is logged, never
    /// fails the reconcile (the status holds the same facts).
    pub async fn event<K>(&self, object: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &object.object_ref(&())).await {
            warn!(reason, error = %err, "could not publish event");
        }
    }

    /// Writes `new` as the status of `object` with a merge patch of the status subresource,
    /// only when it differs from `old`. The patch carries the resourceVersion that was read,
    /// so a write based on a stale cache fails with 409 and is retried, never lost.
    pub async fn patch_status<K, S>(&self, object: &K, old: &S, new: &S) -> Result<bool, Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let Some(diff) = status_diff(old, new) else {
            return Ok(false);
        };
        let name = object.name_any();
        let namespace = object.namespace().unwrap_or_default();
        let body = json!({
            "metadata": {"resourceVersion": object.resource_version()},
            "status": diff,
        });
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|source| {
                Error::api(
                    "patch status of",
                    K::kind(&()).to_string(),
                    &namespace,
                    &name,
                    source,
                )
            })?;
        Ok(true)
    }

    /// Counts a failure of the object `key`; returns how many in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_string()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of the object `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }
}

/// The merge patch that turns status `old` into `new`: changed top-level fields, and `null`
/// for fields `new` leaves out (a merge patch would keep them otherwise). `None` if equal.
pub fn status_diff<S: Serialize>(old: &S, new: &S) -> Option<Value> {
    let as_map = |s: &S| match serde_json::to_value(s) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let mut diff = Map::new();
    for (key, value) in &new {
        if old.get(key) != Some(value) {
            diff.insert(key.clone(), value.clone());
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            diff.insert(key.clone(), Value::Null);
        }
    }
    (!diff.is_empty()).then_some(Value::Object(diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_diff_sets_changed_fields_and_nulls_removed_ones() {
        let old = json!({"phase": "Running", "podName": "a-1", "attempts": 1});
        let new = json!({"phase": "Succeeded", "attempts": 1});
        assert_eq!(
            status_diff(&old, &new),
            Some(json!({"phase": "Succeeded", "podName": null}))
        );
        assert_eq!(status_diff(&new, &new), None);
    }
}
