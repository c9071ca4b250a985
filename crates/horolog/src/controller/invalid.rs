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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, future};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tracing::warn;

use super::Context;
use super::events::Note;
use crate::api::{Backfill, Calendar, Condition, JobRun, JobRunTemplate, Schedule, Task, find_condition};

/// The reason of the Ready condition and of the Warning Event of an object that cannot be read.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The condition type it is reported in.
const READY: &str = "Ready";
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

/// `(namespace, name)`.
type Key = (String, String);

/// What was reported about one invalid object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reported {
    uid: Option<String>,
    generation: Option<i64>,
    message: String,
}

/// The invalid objects of one kind.
#[derive(Debug, Default)]
struct KindState {
    objects: HashMap<Key, Reported>,
    /// During a relist: the invalid objects it listed so far.
    relisting: Option<HashSet<Key>>,
}

/// The objects every watch found invalid, by kind: what was reported about each, so each is
/// reported once per generation, and how many there are (`horolog_invalid_objects`).
#[derive(Debug, Default)]
pub struct Invalids {
    kinds: Mutex<HashMap<&'static str, KindState>>,
}

/// What to do about one invalid object.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Reported already (by this process, or on the object by an earlier one).
    Known,
    /// Report it.
    Report,
}

impl Invalids {
    fn with<T>(&self, kind: &'static str, f: impl FnOnce(&mut KindState) -> T) -> (T, usize) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let state = kinds.entry(kind).or_default();
        let result = f(state);
        (result, state.objects.len())
    }

    /// An invalid object was listed or changed.
    fn seen(&self, kind: &'static str, invalid: &Invalid, message: &str) -> (Verdict, usize) {
        let key = key_of(&invalid.metadata);
        let reported = Reported {
            uid: invalid.metadata.uid.clone(),
            generation: invalid.metadata.generation,
            message: message.to_string(),
        };
        let on_object = invalid.already_reported(message);
        self.with(kind, |state| {
            if let Some(relisting) = state.relisting.as_mut() {
                relisting.insert(key.clone());
            }
            let known = state.objects.get(&key) == Some(&reported);
            state.objects.insert(key, reported);
            if known || on_object {
                Verdict::Known
            } else {
                Verdict::Report
            }
        })
    }

    /// The object `key` decodes again, or is gone.
    fn gone(&self, kind: &'static str, key: &Key) -> usize {
        self.with(kind, |state| {
            state.objects.remove(key);
        })
        .1
    }

    /// A report failed: forget it, so the object's next event tries again.
    fn failed(&self, kind: &'static str, invalid: &Invalid, message: &str) -> usize {
        let key = key_of(&invalid.metadata);
        self.with(kind, |state| {
            if state.objects.get(&key).is_some_and(|r| r.message == message) {
                state.objects.remove(&key);
            }
        })
        .1
    }

    /// A relist starts.
    fn relist(&self, kind: &'static str) {
        self.with(kind, |state| state.relisting = Some(HashSet::new()));
    }

    /// A relist ended: objects it did not list as invalid are valid now, or gone.
    fn relisted(&self, kind: &'static str) -> usize {
        self.with(kind, |state| {
            if let Some(listed) = state.relisting.take() {
                state.objects.retain(|key, _| listed.contains(key));
            }
        })
        .1
    }

    /// How many objects of `kind` are invalid now.
    pub fn count(&self, kind: &'static str) -> usize {
        self.with(kind, |_| ()).1
    }
}

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A watch of `Decoded<K>` as a watch of the `K`s that decode. An object that does not decode
/// is reported (see the module doc) and leaves the cache `store` if it was in it (a Delete
/// event of the cached version), so no reconciler acts on a spec that is no longer the
/// object's; a relist simply does not list it.
pub fn sift<K: Watched>(
    ctx: &Arc<Context>,
    invalids: &Arc<Invalids>,
    store: Store<K>,
    watch: impl Stream<Item = Result<watcher::Event<Decoded<K>>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    let (ctx, invalids) = (ctx.clone(), invalids.clone());
    watch.filter_map(move |event| {
        let event = event.map(|event| sort(&ctx, &invalids, &store, event));
        future::ready(event.transpose())
    })
}

/// One event of a watch of `Decoded<K>`: the event of the cache, if any.
fn sort<K: Watched>(
    ctx: &Arc<Context>,
    invalids: &Arc<Invalids>,
    store: &Store<K>,
    event: watcher::Event<Decoded<K>>,
) -> Option<watcher::Event<K>> {
    use watcher::Event;
    let kind = kind_name::<K>();
    let cached = |invalid: &Invalid| {
        let (namespace, name) = key_of(&invalid.metadata);
        store
            .get(&ObjectRef::new(&name).within(&namespace))
            .map(|object| Event::Delete(K::clone(&object)))
    };
    match event {
        Event::Init => {
            invalids.relist(kind);
            Some(Event::Init)
        }
        Event::InitDone => {
            let count = invalids.relisted(kind);
            observe(ctx, kind, count);
            Some(Event::InitDone)
        }
        Event::InitApply(Decoded(Ok(object))) => {
            valid(ctx, invalids, &object);
            Some(Event::InitApply(object))
        }
        Event::Apply(Decoded(Ok(object))) => {
            valid(ctx, invalids, &object);
            Some(Event::Apply(object))
        }
        Event::Delete(Decoded(Ok(object))) => {
            let count = invalids.gone(kind, &key_of(object.meta()));
            observe(ctx, kind, count);
            Some(Event::Delete(object))
        }
        Event::InitApply(Decoded(Err(invalid))) => {
            found::<K>(ctx, invalids, invalid);
            None
        }
        Event::Apply(Decoded(Err(invalid))) => {
            let delete = cached(&invalid);
            found::<K>(ctx, invalids, invalid);
            delete
        }
        Event::Delete(Decoded(Err(invalid))) => {
            let count = invalids.gone(kind, &key_of(&invalid.metadata));
            observe(ctx, kind, count);
            cached(&invalid)
        }
    }
}

fn kind_name<K: Watched>() -> &'static str {
    match K::kind(&()).as_ref() {
        "Schedule" => "Schedule",
        "JobRun" => "JobRun",
        "Task" => "Task",
        "Backfill" => "Backfill",
        "Calendar" => "Calendar",
        _ => "other",
    }
}

fn observe(ctx: &Context, kind: &'static str, count: usize) {
    if let Some(observer) = ctx.observer() {
        observer.invalid_objects(kind, count);
    }
}

/// An object decodes: it is not invalid (any more). A kind whose reconciler does not write
/// Ready loses the `InvalidSpec` condition here.
fn valid<K: Watched>(ctx: &Arc<Context>, invalids: &Arc<Invalids>, object: &K) {
    let kind = kind_name::<K>();
    let count = invalids.gone(kind, &key_of(object.meta()));
    observe(ctx, kind, count);
    if K::OWNS_READY {
        return;
    }
    let stale = find_condition(object.conditions(), READY).is_some_and(|c| c.reason == INVALID_SPEC);
    if !stale {
        return;
    }
    let conditions: Vec<&Condition> = object.conditions().iter().filter(|c| c.type_ != READY).collect();
    let body = json!({
        "metadata": {"resourceVersion": object.resource_version()},
        "status": {"conditions": conditions},
    });
    let (ctx, meta) = (ctx.clone(), object.meta().clone());
    tokio::spawn(async move {
        if let Err(err) = patch_status::<K>(&ctx, &meta, &body).await {
            warn!(kind, name = ?meta.name, error = %err, "could not clear the InvalidSpec condition");
        }
    });
}

/// An object does not decode: report it unless it was reported for this generation.
fn found<K: Watched>(ctx: &Arc<Context>, invalids: &Arc<Invalids>, invalid: Invalid) {
    let kind = kind_name::<K>();
    let message = invalid.message(kind);
    let (verdict, count) = invalids.seen(kind, &invalid, &message);
    observe(ctx, kind, count);
    if verdict == Verdict::Known {
        return;
    }
    warn!(
        kind,
        namespace = ?invalid.metadata.namespace,
        name = ?invalid.metadata.name,
        path = %invalid.path,
        error = %invalid.error,
        "object cannot be read; ignored until fixed"
    );
    let (ctx, invalids) = (ctx.clone(), invalids.clone());
    tokio::spawn(async move {
        if let Err(err) = report::<K>(&ctx, &invalid, &message).await {
            warn!(kind, name = ?invalid.metadata.name, error = %err, "could not report an object that cannot be read");
            let count = invalids.failed(kind, &invalid, &message);
            observe(&ctx, kind, count);
        }
    });
}

/// Writes Ready=False `InvalidSpec` on the object (its other conditions kept), then the
/// Warning Event.
async fn report<K: Watched>(ctx: &Context, invalid: &Invalid, message: &str) -> Result<(), kube::Error> {
    let now = ctx.now();
    let since = invalid
        .ready()
        .filter(|ready| ready["status"] == "False")
        .and_then(|ready| ready["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut conditions: Vec<Value> = invalid
        .conditions
        .iter()
        .filter(|c| c["type"] != READY)
        .cloned()
        .collect();
    conditions.push(json!({
        "type": READY,
        "status": "False",
        "reason": INVALID_SPEC,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": invalid.metadata.generation,
    }));
    let body = json!({
        "metadata": {"resourceVersion": invalid.metadata.resource_version},
        "status": {"conditions": conditions},
    });
    patch_status::<K>(ctx, &invalid.metadata, &body).await?;
    let object = Decoded::<K>(Err(invalid.clone()));
    ctx.publish(&object, Note::warning(INVALID_SPEC, message.to_string()))
        .await;
    Ok(())
}

/// A merge patch of the status subresource of the object `meta` names, whatever its content
/// (the answer is read as [`Decoded`], so an object that still does not decode is no error).
async fn patch_status<K: Watched>(ctx: &Context, meta: &ObjectMeta, body: &Value) -> Result<(), kube::Error> {
    let (namespace, name) = key_of(meta);
    let api: Api<Decoded<K>> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

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
