//! Reporting invalid objects: on the object itself (Ready=False `InvalidSpec`, once per
//! generation), in an Event and in `horolog_invalid_objects`; and sifting them out of a watch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, future};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tracing::warn;

use super::{Decoded, INVALID_SPEC, Invalid, Watched};
use crate::api::{Condition, READY, find_condition};
use crate::controller::Context;
use crate::controller::events::Note;

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
pub(super) enum Verdict {
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
    pub(super) fn seen(&self, kind: &'static str, invalid: &Invalid, message: &str) -> (Verdict, usize) {
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
    pub(super) fn relist(&self, kind: &'static str) {
        self.with(kind, |state| state.relisting = Some(HashSet::new()));
    }

    /// A relist ended: objects it did not list as invalid are valid now, or gone.
    pub(super) fn relisted(&self, kind: &'static str) -> usize {
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
