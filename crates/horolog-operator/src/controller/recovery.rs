//! Retries: how many times in a row each object's reconcile failed, how long it then waits
//! ([`retry_delay`]), and the recovery watch that ends an API outage quickly.
//!
//! While the API server is unreachable every reconcile fails, and each object backs off on
//! its own (up to 30 s, see [`retry_delay`]). Waiting out those delays after the server
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

use super::ErrorKind;
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

/// How soon a reconcile that failed for the `failures`-th time in a row is retried.
///
/// - A conflict means the cache was behind and the next watch event usually fixes it:
///   200 ms, doubling to at most 5 s.
/// - An unavailable API server: 500 ms, doubling to at most 30 s. That bounds the load a long
///   outage puts on a server that is starting up again; the recovery watch
///   (below) retries every parked object at once when the server answers again, so
///   firing resumes within a second of the outage's end, whatever this delay is.
/// - A refused create (quota, webhook): 1 s, doubling to at most 1 min: quota frees as soon
///   as another run ends, and a person fixing a webhook or quota should see it work soon.
/// - Anything else (a permission, a rejected request): 1 s, doubling to at most 5 min.
pub fn retry_delay(kind: ErrorKind, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    let (first, cap) = match kind {
        ErrorKind::Conflict => (Duration::from_millis(200), Duration::from_secs(5)),
        ErrorKind::Unavailable => (Duration::from_millis(500), Duration::from_secs(30)),
        ErrorKind::Refused => (Duration::from_secs(1), Duration::from_secs(60)),
        ErrorKind::Forbidden | ErrorKind::Rejected => (Duration::from_secs(1), Duration::from_secs(300)),
    };
    (first * (1u32 << doublings)).min(cap)
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

    #[test]
    fn refused_creates_back_off_to_one_minute() {
        let delays: Vec<u64> = [1, 2, 6, 7, 20]
            .iter()
            .map(|&n| retry_delay(ErrorKind::Refused, n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 32, 60, 60]);
    }

    #[test]
    fn conflicts_retry_fast_and_never_wait_more_than_five_seconds() {
        let delays: Vec<u128> = (1..=8)
            .map(|n| retry_delay(ErrorKind::Conflict, n).as_millis())
            .collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn an_unavailable_server_is_retried_within_thirty_seconds() {
        let delays: Vec<u128> = [1, 2, 3, 6, 7, 20]
            .iter()
            .map(|&n| retry_delay(ErrorKind::Unavailable, n).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 16000, 30000, 30000]);
    }

    #[test]
    fn other_errors_back_off_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = [1, 2, 3, 9, 20]
            .iter()
            .map(|&n| retry_delay(ErrorKind::Rejected, n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 256, 300]);
    }
}
