//! Objects the operator cannot read. A watch decodes each object on its own ([`Decoded`]): one
//! that does not decode into its kind's type (an older schema's leftover, a write that bypassed
//! validation, a field the CRD keeps free-form, a future field of a wrong type) must not fail
//! the whole LIST, or every object of that kind would go unserved after the next relist
//! (kube-rs issue 774). Instead ([`sift`]) it is left out of the cache, reported on itself —
//! Ready=False `InvalidSpec` with the field path and the decoder's message, written with a merge
//! patch of the status subresource, and a Warning Event — once per generation, and counted on
//! `horolog_invalid_objects`. Once fixed it decodes again and is served as any other object.
//!
//! Why not kube's `DeserializeGuard`: its error has the decoder's message but not the field
//! path (`serde_value` keeps none), and the path is what a user needs to find the mistake.

mod report;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::api::{Backfill, Calendar, Condition, JobRun, JobRunTemplate, READY, Schedule, Task};

pub use report::{Invalids, sift};

/// The reason of the Ready condition and of the Warning Event of an object that cannot be read.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The most of the decoder's message a report quotes.
const ERROR_LIMIT: usize = 512;

/// One object of kind `K` as a watch or a list delivers it: decoded, or why it could not be.
#[derive(Clone, Debug)]
pub struct Decoded<K>(pub Result<K, Invalid>);

/// An object that does not decode into its kind's type.
#[derive(Clone, Debug)]
pub struct Invalid {
    /// Its metadata (which decodes: the API server validates it).
    pub metadata: ObjectMeta,
    /// Where decoding failed, e.g. `spec.jobTemplate.spec.template.spec.containers[0].command`.
    pub path: String,
    /// The decoder's message, e.g. `invalid type: string "echo hi", expected a sequence`.
    pub error: String,
    /// `status.conditions` as stored (unread: the status may not decode either).
    pub conditions: Vec<Value>,
}

impl Invalid {
    /// What the condition and the Event say. The decoder's message quotes the value it could
    /// not read, which may be long: it is cut to [`ERROR_LIMIT`] bytes.
    pub fn message(&self, kind: &str) -> String {
        let mut error = self.error.as_str();
        if error.len() > ERROR_LIMIT {
            let mut end = ERROR_LIMIT;
            while !error.is_char_boundary(end) {
                end -= 1;
            }
            error = &error[..end];
        }
        let cut = if error.len() < self.error.len() { "…" } else { "" };
        format!(
            "the operator cannot read this {kind} at {}: {error}{cut}; it is ignored until fixed",
            self.path
        )
    }

    /// The stored Ready condition, if any.
    fn ready(&self) -> Option<&Value> {
        self.conditions.iter().find(|c| c["type"] == READY)
    }

    /// True when the stored Ready condition already reports `message` for this generation
    /// (written before a restart, or by our own write whose watch event this is).
    fn already_reported(&self, message: &str) -> bool {
        self.ready().is_some_and(|ready| {
            ready["status"] == "False"
                && ready["reason"] == INVALID_SPEC
                && ready["message"] == message
                && ready["observedGeneration"].as_i64() == self.metadata.generation
        })
    }
}

impl<'de, K: Watched> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let error = match serde_path_to_error::deserialize::<_, K>(&value) {
            Ok(object) => return Ok(Decoded(Ok(object))),
            Err(error) => error,
        };
        let metadata = value
            .get("metadata")
            .map(ObjectMeta::deserialize)
            .transpose()
            .map_err(D::Error::custom)?
            .unwrap_or_default();
        let path = error.path().to_string();
        let (path, error) = match K::locate(&path, &value) {
            Some(found) => found,
            None => (path, error.into_inner().to_string()),
        };
        let conditions = value
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(Decoded(Err(Invalid {
            metadata,
            path,
            error,
            conditions,
        })))
    }
}

impl<K: Resource> Resource for Decoded<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(object) => object.meta(),
            Err(invalid) => &invalid.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.0 {
            Ok(object) => object.meta_mut(),
            Err(invalid) => &mut invalid.metadata,
        }
    }
}

/// What [`sift`] needs of a watched kind.
pub trait Watched:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// True when this kind's reconciler writes the Ready condition itself (and so replaces
    /// `InvalidSpec` once the object is fixed); for the other kinds [`sift`] removes it.
    const OWNS_READY: bool;

    /// The object's status conditions.
    fn conditions(&self) -> &[Condition];

    /// A closer `(path, error)` for a decoding error at `path` of `value`, where the decoder
    /// cannot see further (a flattened part is decoded from a buffer that has no path).
    fn locate(_path: &str, _value: &Value) -> Option<(String, String)> {
        None
    }
}

impl Watched for Schedule {
    const OWNS_READY: bool = true;
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
    }
}

impl Watched for Task {
    const OWNS_READY: bool = true;
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
    }
}

impl Watched for JobRun {
    const OWNS_READY: bool = false;
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
    }
    /// `spec` flattens a [`JobRunTemplate`]: an error inside it is reported at `spec`.
    fn locate(path: &str, value: &Value) -> Option<(String, String)> {
        if path != "spec" {
            return None;
        }
        let error = serde_path_to_error::deserialize::<_, JobRunTemplate>(value.get("spec")?).err()?;
        Some((format!("spec.{}", error.path()), error.into_inner().to_string()))
    }
}

impl Watched for Calendar {
    const OWNS_READY: bool = true;
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
    }
}

impl Watched for Backfill {
    const OWNS_READY: bool = false;
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::report::Verdict;
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn schedule(command: Value) -> Value {
        json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "s", "namespace": "ns", "generation": 3},
            "spec": {"trigger": {"interval": "1m"},
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                         {"name": "m", "image": "b", "command": command}]}}}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled",
                                       "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        })
    }

    #[test]
    fn an_object_that_decodes_is_kept_whole() {
        let decoded: Decoded<Schedule> = serde_json::from_value(schedule(json!(["echo", "hi"]))).unwrap();
        let schedule = decoded.0.unwrap();
        assert_eq!(schedule.name_any(), "s");
    }

    #[test]
    fn an_object_that_does_not_decode_keeps_its_metadata_the_field_path_and_the_error() {
        let decoded: Decoded<Schedule> = serde_json::from_value(schedule(json!("echo hi"))).unwrap();
        assert_eq!(decoded.name_any(), "s");
        assert_eq!(decoded.namespace().as_deref(), Some("ns"));
        let invalid = decoded.0.unwrap_err();
        assert_eq!(
            invalid.path,
            "spec.jobTemplate.spec.template.spec.containers[0].command"
        );
        assert!(invalid.error.contains("expected a sequence"), "{}", invalid.error);
        assert_eq!(invalid.conditions.len(), 1);
        let message = invalid.message("Schedule");
        assert!(message.contains(&invalid.path), "{message}");
    }

    #[test]
    fn an_error_inside_the_flattened_part_of_a_jobrun_spec_names_its_field() {
        let decoded: Decoded<JobRun> = serde_json::from_value(json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "b", "command": "x"}]}}},
        }))
        .unwrap();
        let invalid = decoded.0.unwrap_err();
        assert_eq!(invalid.path, "spec.template.spec.containers[0].command");
        assert!(invalid.error.contains("expected a sequence"), "{}", invalid.error);
    }

    #[test]
    fn a_long_value_is_cut_from_the_message() {
        let long = "é".repeat(2000);
        let decoded: Decoded<Schedule> = serde_json::from_value(schedule(json!(long))).unwrap();
        let message = decoded.0.unwrap_err().message("Schedule");
        assert!(message.len() < 700, "{}", message.len());
        assert!(message.contains("…; it is ignored until fixed"), "{message}");
    }

    #[test]
    fn a_list_with_one_bad_item_still_decodes_the_others() {
        let list: Vec<Decoded<Schedule>> =
            serde_json::from_value(json!([schedule(json!("x")), schedule(json!(["x"]))])).unwrap();
        assert!(list[0].0.is_err());
        assert!(list[1].0.is_ok());
    }

    #[test]
    fn an_object_is_reported_once_per_generation_and_again_when_it_changes() {
        let invalids = Invalids::default();
        let decoded: Decoded<Schedule> = serde_json::from_value(schedule(json!("x"))).unwrap();
        let mut invalid = decoded.0.unwrap_err();
        let message = invalid.message("Schedule");
        assert_eq!(
            invalids.seen("Schedule", &invalid, &message),
            (Verdict::Report, 1)
        );
        assert_eq!(invalids.seen("Schedule", &invalid, &message), (Verdict::Known, 1));
        invalid.metadata.generation = Some(4);
        assert_eq!(
            invalids.seen("Schedule", &invalid, &message),
            (Verdict::Report, 1)
        );

        // After a restart, the condition on the object says it was reported.
        let restarted = Invalids::default();
        invalid.conditions = vec![json!({"type": "Ready", "status": "False", "reason": INVALID_SPEC,
                                         "message": message, "observedGeneration": 4})];
        assert_eq!(
            restarted.seen("Schedule", &invalid, &message),
            (Verdict::Known, 1)
        );

        // A relist that does not list it any more forgets it.
        restarted.relist("Schedule");
        assert_eq!(restarted.relisted("Schedule"), 0);
    }
}
