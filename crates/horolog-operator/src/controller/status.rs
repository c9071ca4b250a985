//! Writing status: a merge patch of the status subresource carrying the resourceVersion that
//! was read, sent only when something changed, and the memory that lets a reconcile skip an
//! object whose cached version is the one our own write just replaced.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::Error;

/// The most objects [`StatusWriter::behind_own_write`] remembers; past it the memory is
/// cleared, which loses only a shortcut (a reconcile may then repeat work and meet a 409),
/// never a write.
const WRITTEN_LIMIT: usize = 100_000;

/// Writes status, and remembers which versions its writes replaced.
#[derive(Debug, Default)]
pub struct StatusWriter {
    /// For each object whose status this process wrote last: the resourceVersion that write
    /// replaced.
    written: Mutex<HashMap<String, String>>,
}

impl StatusWriter {
    /// True when the cached `object` is the very version our own last status write replaced:
    /// the cache has not caught up yet. Reconciling it could only repeat that work and end in
    /// a 409 Conflict and a retry; and there is no need, since the write's watch event is on
    /// its way and reconciles the new version. Any other version (newer, or rewritten by
    /// someone else) is reconciled as usual.
    pub fn behind_own_write<K: Resource<DynamicType = ()>>(&self, object: &K) -> bool {
        let key = key_of(object);
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match written.get(&key) {
            Some(replaced) if object.meta().resource_version.as_deref() == Some(replaced.as_str()) => true,
            Some(_) => {
                written.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remembers that our write turned `before` into `after`. A write that changed nothing
    /// keeps the resourceVersion and sends no watch event, so it is not remembered.
    fn wrote<K: Resource<DynamicType = ()>>(&self, before: &K, after: &K) {
        let (Some(replaced), Some(now)) = (&before.meta().resource_version, &after.meta().resource_version)
        else {
            return;
        };
        if replaced == now {
            return;
        }
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if written.len() >= WRITTEN_LIMIT {
            written.clear();
        }
        written.insert(key_of(before), replaced.clone());
    }

    /// Writes `new` as the status of `object` with a merge patch of the status subresource,
    /// only when it differs from `old`; true when it wrote. The patch carries the
    /// resourceVersion that was read, so a write based on a stale cache fails with 409 and is
    /// retried, never lost.
    pub async fn patch<K, S>(&self, client: &Client, object: &K, old: &S, new: &S) -> Result<bool, Error>
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
        let api: Api<K> = Api::namespaced(client.clone(), &namespace);
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
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
        self.wrote(object, &written);
        Ok(true)
    }
}

/// `Kind/namespace/name` of an object.
pub(crate) fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
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
    use crate::api::{JobRun, JobRunSpec};

    fn at_version(name: &str, version: &str) -> JobRun {
        let mut run = JobRun::new(name, JobRunSpec::default());
        run.metadata.namespace = Some("default".into());
        run.metadata.resource_version = Some(version.into());
        run
    }

    #[test]
    fn a_cached_object_is_behind_only_while_it_is_the_version_our_write_replaced() {
        let writer = StatusWriter::default();
        let v1 = at_version("a-1", "1");
        assert!(!writer.behind_own_write(&v1), "nothing written yet");

        writer.wrote(&v1, &at_version("a-1", "2"));
        assert!(
            writer.behind_own_write(&v1),
            "the cache still shows what we replaced"
        );
        assert!(writer.behind_own_write(&v1), "and stays behind until it moves");
        assert!(
            !writer.behind_own_write(&at_version("b-1", "1")),
            "other objects are not"
        );

        assert!(!writer.behind_own_write(&at_version("a-1", "2")), "caught up");
        assert!(!writer.behind_own_write(&v1), "forgotten once caught up");
    }

    #[test]
    fn a_write_that_changed_nothing_is_not_waited_for() {
        let writer = StatusWriter::default();
        let v1 = at_version("a-1", "1");
        // The server kept the version: no watch event will come, so nothing may wait for one.
        writer.wrote(&v1, &v1.clone());
        assert!(!writer.behind_own_write(&v1));
    }

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
