//! Retries: how many times in a row each object's reconcile failed (for the backoff), and the
//! recovery watch that ends an API outage quickly.
//!
//! While the API server is unreachable every reconcile fails, and each object backs off on
//! its own (up to 30 s, see `error::retry_delay`). Waiting out those delays after the server
//! is back would leave Schedules silent for up to 30 s. Instead, every object whose reconcile
//! failed because the server was unavailable is *parked* here; while anything is parked, a
//! probe asks the server a cheap question every [`PROBE_INTERVAL`], and the first answer
//! re-queues every parked object at once. So firing resumes within about a second of the
//! outage's end, and the backlog is then coalesced as usual.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::api::Schedule;

/// How often the server is probed while objects are parked.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// One parked object: its kind (`Schedule`, `JobRun`, ...), namespace and name.
pub type Parked = (String, String, String);

/// Failure counts and parked objects.
#[derive(Debug, Default)]
pub struct Retries {
    failures: Mutex<HashMap<String, u32>>,
    parked: Mutex<HashSet<Parked>>,
    wake: Notify,
}

impl Retries {
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

    /// True when the last reconcile of the object `key` failed: this one may end an outage.
    pub fn recovering(&self, key: &str) -> bool {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(key)
    }

    /// Forgets the failures of the object `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }

    /// Parks an object whose reconcile failed because the server was unavailable.
    pub fn park(&self, object: Parked) {
        let mut parked = self
            .parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if parked.insert(object) && parked.len() == 1 {
            self.wake.notify_one();
        }
    }

    /// Takes every parked object.
    fn unpark_all(&self) -> Vec<Parked> {
        let mut parked = self
            .parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        parked.drain().collect()
    }

    fn any_parked(&self) -> bool {
        !self
            .parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_empty()
    }

    /// Probes the API server while anything is parked; when it answers, hands every parked
    /// object to `requeue`. Runs until the controllers stop.
    pub async fn watch(&self, client: Client, namespace: Option<String>, requeue: impl Fn(Parked)) {
        let probe: Api<Schedule> = match &namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        loop {
            if !self.any_parked() {
                self.wake.notified().await;
                continue;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
            match probe.list_metadata(&ListParams::default().limit(1)).await {
                Ok(_) => {
                    let parked = self.unpark_all();
                    if !parked.is_empty() {
                        info!(
                            objects = parked.len(),
                            "the API server answers again: retrying at once"
                        );
                    }
                    for object in parked {
                        requeue(object);
                    }
                }
                Err(err) => warn!(error = %err, "the API server is still unavailable"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_in_a_row_until_a_success() {
        let retries = Retries::default();
        assert_eq!(retries.failed("Schedule/ns/a"), 1);
        assert_eq!(retries.failed("Schedule/ns/a"), 2);
        assert_eq!(retries.failed("Schedule/ns/b"), 1);
        retries.succeeded("Schedule/ns/a");
        assert_eq!(retries.failed("Schedule/ns/a"), 1);
    }

    #[test]
    fn parked_objects_are_handed_out_once() {
        let retries = Retries::default();
        retries.park(("Schedule".into(), "ns".into(), "a".into()));
        retries.park(("Schedule".into(), "ns".into(), "a".into()));
        retries.park(("JobRun".into(), "ns".into(), "a-1".into()));
        let mut parked = retries.unpark_all();
        parked.sort();
        assert_eq!(parked.len(), 2);
        assert!(retries.unpark_all().is_empty());
    }
}
