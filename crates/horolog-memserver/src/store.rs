//! The object store and its write rules: every object as JSON, one resource version counter,
//! a bounded history of changes for watches, and what create, update, delete and garbage
//! collection do to metadata. No HTTP here; `service.rs` translates requests into these calls.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::counts::RequestCounts;
use super::defaulting::{apply_defaults, declares_defaults};
use super::request::Verb;
use super::selector::{FieldSelector, LabelSelector};
use super::{ApiError, Change, ChangeKind, ResourceType, encode};
use horolog_core::clock::Clock;

/// Where an object lives: its resource type, namespace (`""` for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ObjectKey {
    group: String,
    version: String,
    plural: String,
    namespace: String,
    name: String,
}

impl ObjectKey {
    fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        ObjectKey {
            group: rt.group.clone(),
            version: rt.version.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// The first key of a resource type: every object of the type sorts at or after it.
    fn first_of(rt: &ResourceType) -> Self {
        ObjectKey::new(rt, "", "")
    }

    fn is_of(&self, rt: &ResourceType) -> bool {
        self.group == rt.group && self.version == rt.version && self.plural == rt.plural
    }
}

/// An object as a response sends it: the value, and its JSON encoded at most once. A write's
/// result shares the encoding with the watch event the write made, so the response and every
/// watcher send the same bytes.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub value: Arc<Value>,
    encoded: Arc<OnceLock<Bytes>>,
}

impl Object {
    /// An object not (yet) encoded.
    pub fn new(value: Arc<Value>) -> Self {
        Object {
            value,
            encoded: Arc::default(),
        }
    }

    /// The object a change wrote, sharing the change's encoding.
    pub fn of(change: &Change) -> Self {
        Object {
            value: change.object.clone(),
            encoded: change.encoded.clone(),
        }
    }

    /// The value as JSON.
    pub fn encoded(&self) -> Bytes {
        self.encoded.get_or_init(|| encode(&*self.value)).clone()
    }
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The object itself; `.status` is kept for resources with a status subresource.
    Main,
    /// The `/status` subresource: only `.status` changes.
    Status,
}

/// What a list or watch selects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, object: &Value) -> bool {
        let namespace_matches = self
            .namespace
            .as_deref()
            .is_none_or(|ns| meta_str(object, "namespace") == Some(ns));
        namespace_matches
            && self.labels.matches(object.pointer("/metadata/labels"))
            && self.fields.matches(object)
    }
}

/// The start of a watch, taken atomically with the subscription so no change falls between.
pub(crate) struct WatchStart {
    /// Objects to send as synthetic ADDED events first.
    pub initial: Vec<Arc<Value>>,
    /// Recorded changes after the requested resource version.
    pub replay: Vec<Arc<Change>>,
    /// Every later change.
    pub receiver: broadcast::Receiver<Arc<Change>>,
    /// The resource version the initial state and replay bring the watcher up to.
    pub resource_version: u64,
    /// The requested resource version is older than the history: the watcher must relist.
    pub expired: bool,
}

/// The `DeleteOptions` fields the store honours.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub orphan: bool,
    /// `gracePeriodSeconds`: how long a scheduled Pod is given to stop (see [`grace_period`]).
    pub grace_period_seconds: Option<i64>,
}

/// A Pod's grace period when its delete does not give one (the real server defaults
/// `spec.terminationGracePeriodSeconds` to it).
const DEFAULT_POD_GRACE_SECONDS: i64 = 30;

pub(crate) struct Store {
    clock: Arc<dyn Clock>,
    resources: Vec<Arc<ResourceType>>,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    /// The uids of the stored objects, for telling live owners from dead ones.
    uids: HashSet<String>,
    /// The objects that name each uid in their ownerReferences, for garbage collection.
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
    resource_version: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Changes up to and including this resource version are no longer in `history`.
    compacted_through: u64,
    changes: broadcast::Sender<Arc<Change>>,
    /// Where the deletes and patches the garbage collector would send are counted.
    counts: Arc<RequestCounts>,
    /// While set, the garbage collector lags: the owners removed meanwhile (uid, orphan)
    /// wait here until [`Store::release_garbage`].
    held_garbage: Option<Vec<(String, bool)>>,
}

/// How many changes a slow watcher may fall behind before it is told to relist.
const BROADCAST_CAPACITY: usize = 4096;

impl Store {
    pub fn new(clock: Arc<dyn Clock>, history_limit: usize, counts: Arc<RequestCounts>) -> Self {
        Store {
            clock,
            resources: ResourceType::defaults().into_iter().map(Arc::new).collect(),
            objects: BTreeMap::new(),
            uids: HashSet::new(),
            dependents: HashMap::new(),
            resource_version: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_through: 0,
            changes: broadcast::channel(BROADCAST_CAPACITY).0,
            counts,
            held_garbage: None,
        }
    }

    pub fn register(&mut self, mut rt: ResourceType) {
        // A schema without defaults changes nothing: not walking it saves every write the walk.
        if rt
            .schema
            .as_deref()
            .is_some_and(|schema| !declares_defaults(schema))
        {
            rt.schema = None;
        }
        self.resources.retain(|known| {
            !(known.group == rt.group && known.version == rt.version && known.plural == rt.plural)
        });
        self.resources.push(Arc::new(rt));
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    pub(crate) fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
            .cloned()
    }

    fn resource_of(&self, key: &ObjectKey) -> Option<Arc<ResourceType>> {
        self.resource(&key.group, &key.version, &key.plural)
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    pub fn now(&self) -> String {
        timestamp(self.clock.now())
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.objects
            .get(&ObjectKey::new(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The objects of one resource type, ordered by namespace and name.
    fn objects_of<'a>(
        &'a self,
        rt: &'a ResourceType,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)> {
        self.objects
            .range(ObjectKey::first_of(rt)..)
            .take_while(|(key, _)| key.is_of(rt))
    }

    /// The matching objects, ordered by namespace and name, and the resource version they are at.
    pub fn list(&self, rt: &ResourceType, filter: &Filter) -> (Vec<Arc<Value>>, u64) {
        let items = self
            .objects_of(rt)
            .filter(|(_, object)| filter.matches(object))
            .map(|(_, object)| object.clone())
            .collect();
        (items, self.resource_version)
    }

    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        stamp_type(rt, &mut object)?;
        if rt.namespaced && names_other_namespace(&object, namespace) {
            return Err(namespace_mismatch());
        }
        let meta = metadata_mut(&mut object);
        if rt.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        let name = self.name_for_create(rt, namespace, meta)?;
        let key = ObjectKey::new(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        let resource_version = self.resource_version + 1;
        let now = self.now();
        let meta = metadata_mut(&mut object);
        for server_field in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
            meta.remove(server_field);
        }
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uid_for(resource_version)));
        meta.insert("resourceVersion".into(), json!(resource_version.to_string()));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        if let Some(fields) = object.as_object_mut() {
            if rt.status_subresource {
                fields.remove("status");
            }
            // There is no kubelet to report on a Pod: it waits in Pending until a test (or the
            // local executor) writes its status.
            if rt.group.is_empty() && rt.plural == "pods" {
                fields.insert("status".into(), json!({"phase": "Pending"}));
            }
            // Its types are served at once, so it is Established at once, as a real server
            // reports within a second; clients (`kubectl wait --for=condition=Established`)
            // wait for this condition.
            if rt.is_crd() {
                let names = fields
                    .get("spec")
                    .and_then(|spec| spec.get("names"))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let condition = |type_: &str, reason: &str, message: &str| {
                    json!({"type": type_, "status": "True", "reason": reason, "message": message,
                           "lastTransitionTime": now})
                };
                fields.insert(
                    "status".into(),
                    json!({
                        "acceptedNames": names,
                        "conditions": [
                            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                        ],
                    }),
                );
            }
        }
        // After status is dropped, as the real server's defaults show on the object it reads
        // back from etcd: a status default appears on a fresh object.
        if let Some(schema) = &rt.schema {
            apply_defaults(&mut object, schema);
        }
        let object = Arc::new(object);
        if dry_run {
            return Ok(Object::new(object));
        }
        self.resource_version = resource_version;
        if rt.is_crd() {
            for declared in ResourceType::from_crd_value(&object) {
                self.register(declared);
            }
        }
        self.insert(key, object.clone());
        Ok(self.emit(ChangeKind::Added, rt.clone(), object, None))
    }

    /// The name a create gives its object: `metadata.name`, else one made from
    /// `metadata.generateName`.
    fn name_for_create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        meta: &Map<String, Value>,
    ) -> Result<String, ApiError> {
        let text = |field: &str| meta.get(field).and_then(Value::as_str).unwrap_or_default();
        match (text("name"), text("generateName")) {
            ("", "") => Err(ApiError::invalid(
                rt,
                "",
                "metadata.name: Required value: name or generateName is required",
            )),
            ("", prefix) => Ok(self.generated_name(rt, namespace, prefix)),
            (name, _) => Ok(name.to_string()),
        }
    }

    /// `generateName` plus five characters from Kubernetes' alphabet, derived from the resource
    /// version so runs are reproducible.
    fn generated_name(&self, rt: &ResourceType, namespace: &str, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut seed = (self.resource_version + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        loop {
            let mut name = prefix.to_string();
            let mut n = seed;
            for _ in 0..5 {
                name.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
                n /= ALPHABET.len() as u64;
            }
            if !self.objects.contains_key(&ObjectKey::new(rt, namespace, &name)) {
                return name;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
    }

    /// PUT: the whole object (or its status), with optimistic concurrency on resourceVersion.
    pub fn replace(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        target: Target,
        object: Value,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        let current = self.get(rt, namespace, name)?;
        self.update(rt, namespace, name, target, current, object, dry_run)
    }

    /// Applies `patch` to the stored object (through `apply`), then writes it as an update.
    /// With `create_if_missing` (server-side apply) an absent object is created from the patch.
    /// Returns the object and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        target: Target,
        apply: impl FnOnce(&Value) -> Result<Value, ApiError>,
        create_if_missing: bool,
        dry_run: bool,
    ) -> Result<(Object, bool), ApiError> {
        let current = match self.get(rt, namespace, name) {
            Ok(current) => current,
            Err(_) if create_if_missing && target == Target::Main => {
                let mut object = apply(&json!({}))?;
                let meta = metadata_mut(&mut object);
                if meta
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n != name)
                {
                    return Err(name_mismatch());
                }
                meta.insert("name".into(), json!(name));
                // An apply that creates carries no resourceVersion precondition.
                meta.remove("resourceVersion");
                return self.create(rt, namespace, object, dry_run).map(|o| (o, true));
            }
            Err(not_found) => return Err(not_found),
        };
        let patched = apply(&current)?;
        self.update(rt, namespace, name, target, current, patched, dry_run)
            .map(|o| (o, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        target: Target,
        current: Arc<Value>,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        stamp_type(rt, &mut object)?;
        let sent_version = meta_str(&object, "resourceVersion").filter(|v| !v.is_empty());
        if sent_version.is_some_and(|v| Some(v) != meta_str(&current, "resourceVersion")) {
            return Err(ApiError::stale(rt, name));
        }
        if meta_str(&object, "name").is_some_and(|n| n != name) {
            return Err(name_mismatch());
        }
        if rt.namespaced && names_other_namespace(&object, namespace) {
            return Err(namespace_mismatch());
        }
        let mut updated = written_part(rt, target, object, &current);
        let empty = Map::new();
        let old_meta = current
            .get("metadata")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        keep_server_fields(metadata_mut(&mut updated), old_meta);
        if let Some(schema) = &rt.schema {
            apply_defaults(&mut updated, schema);
        }
        if spec_changed(rt, &current, &updated) {
            let generation = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            metadata_mut(&mut updated).insert("generation".into(), json!(generation));
        }
        // Like the real server, a write that changes nothing is not a change: no new
        // resourceVersion, no watch event (so reconcilers that re-apply the same status settle).
        if updated == *current {
            return Ok(Object::new(current));
        }
        if dry_run {
            return Ok(Object::new(Arc::new(updated)));
        }
        let key = ObjectKey::new(rt, namespace, name);
        // A Pod's graceful deletion still pending keeps it, finalizers or not.
        let deleting =
            updated.pointer("/metadata/deletionTimestamp").is_some() && pending_grace_seconds(&updated) == 0;
        if deleting && finalizers(&updated).is_empty() {
            return Ok(self
                .remove(&key, false)
                .unwrap_or_else(|| Object::new(Arc::new(updated))));
        }
        Ok(self.commit(rt.clone(), key, updated, current))
    }

    /// Stores a modified object under a new resource version and tells the watchers.
    fn commit(
        &mut self,
        rt: Arc<ResourceType>,
        key: ObjectKey,
        mut object: Value,
        previous: Arc<Value>,
    ) -> Object {
        self.resource_version += 1;
        metadata_mut(&mut object).insert("resourceVersion".into(), json!(self.resource_version.to_string()));
        let object = Arc::new(object);
        self.insert(key, object.clone());
        self.emit(ChangeKind::Modified, rt, object, Some(previous))
    }

    /// DELETE: marks an object with finalizers as deleting, removes any other (then collects
    /// its dependents). Returns the object as it is after the delete.
    pub fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        let current = self.get(rt, namespace, name)?;
        // As the real server's storage checks `DeleteOptions.preconditions`: 409 Conflict.
        let failed = |field: &str, wanted: &str, actual: Option<&str>| {
            ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {}",
                    actual.unwrap_or_default()
                ),
            )
        };
        if let Some(uid) = options.precondition_uid.as_deref()
            && Some(uid) != meta_str(&current, "uid")
        {
            return Err(failed("UID", uid, meta_str(&current, "uid")));
        }
        if let Some(version) = options.precondition_resource_version.as_deref()
            && Some(version) != meta_str(&current, "resourceVersion")
        {
            return Err(failed(
                "ResourceVersion",
                version,
                meta_str(&current, "resourceVersion"),
            ));
        }
        if dry_run {
            return Ok(Object::new(current));
        }
        let key = ObjectKey::new(rt, namespace, name);
        Ok(self
            .delete_key(&key, options.orphan, options.grace_period_seconds)
            .unwrap_or_else(|| Object::new(current)))
    }

    /// Deletes every object `filter` selects (DELETE on a collection).
    pub fn delete_collection(
        &mut self,
        rt: &Arc<ResourceType>,
        filter: &Filter,
        options: &DeleteOptions,
    ) -> Vec<Arc<Value>> {
        let keys: Vec<ObjectKey> = self
            .objects_of(rt)
            .filter(|(_, object)| filter.matches(object))
            .map(|(key, _)| key.clone())
            .collect();
        keys.iter()
            .filter_map(|key| self.delete_key(key, options.orphan, options.grace_period_seconds))
            .map(|object| object.value)
            .collect()
    }

    /// Deletes one object as the real server's `BeforeDelete` and registry do: a scheduled Pod
    /// is marked deleting with a grace period (`deletionTimestamp` = now + grace) and stays
    /// until a delete with grace 0; an object with finalizers is marked deleting and stays
    /// until they are removed; anything else goes at once (then its dependents are collected).
    fn delete_key(&mut self, key: &ObjectKey, orphan: bool, requested_grace: Option<i64>) -> Option<Object> {
        let current = self.objects.get(key)?.clone();
        let grace = grace_period(key, &current, requested_grace);
        let held = !finalizers(&current).is_empty();
        if let Some(marked) = current
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
        {
            let pending = pending_grace_seconds(&current);
            // Already deleting: a delete may only shorten a pending grace period.
            if pending > 0 && grace < pending {
                if grace == 0 && !held {
                    return self.remove(key, orphan);
                }
                let due = DateTime::parse_from_rfc3339(marked)
                    .map(|marked| marked.to_utc() - TimeDelta::seconds(pending))
                    .unwrap_or_else(|_| self.clock.now())
                    + TimeDelta::seconds(grace);
                let mut shortened = Value::clone(&current);
                let meta = metadata_mut(&mut shortened);
                meta.insert("deletionTimestamp".into(), json!(timestamp(due)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                let rt = self.resource_of(key)?;
                return Some(self.commit(rt, key.clone(), shortened, current));
            }
            if pending == 0 && !held {
                return self.remove(key, orphan);
            }
            return Some(Object::new(current));
        }
        if grace == 0 && !held {
            return self.remove(key, orphan);
        }
        let mut deleting = Value::clone(&current);
        let meta = metadata_mut(&mut deleting);
        meta.insert(
            "deletionTimestamp".into(),
            json!(timestamp(self.clock.now() + TimeDelta::seconds(grace))),
        );
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        let rt = self.resource_of(key)?;
        Some(self.commit(rt, key.clone(), deleting, current))
    }

    /// Removes an object for good and collects the garbage it leaves: dependents whose every
    /// owner is gone are deleted (background propagation), or orphaned when `orphan`.
    fn remove(&mut self, key: &ObjectKey, orphan: bool) -> Option<Object> {
        let object = self.take(key)?;
        let uid = meta_str(&object, "uid").unwrap_or_default().to_string();
        let gone = self.emit_deleted(key, object)?;
        match self.held_garbage.as_mut() {
            Some(held) => held.push((uid, orphan)),
            None => self.collect_garbage(uid, orphan),
        }
        if key.group.is_empty() && key.plural == "namespaces" {
            self.delete_contents_of(&key.name);
        }
        Some(gone)
    }

    /// What the namespace controller does when a Namespace goes, done at once: every object in
    /// it is deleted (objects with finalizers are marked deleting and go when those are removed;
    /// scheduled Pods get their grace period), each delete counted as the garbage collector's.
    fn delete_contents_of(&mut self, namespace: &str) {
        let keys: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|key| key.namespace == namespace)
            .cloned()
            .collect();
        for key in keys {
            self.counts
                .count_garbage_collection(Verb::Delete, &key.group, &key.plural);
            self.delete_key(&key, false, None);
        }
    }

    /// From now on, dependents of removed owners are left alone until
    /// [`Store::release_garbage`], as a real cluster's garbage collector acts a moment after
    /// the owner goes.
    pub fn hold_garbage(&mut self) {
        self.held_garbage.get_or_insert_default();
    }

    /// Collects what was held, in the order the owners went, and stops holding.
    pub fn release_garbage(&mut self) {
        for (uid, orphan) in self.held_garbage.take().unwrap_or_default() {
            self.collect_garbage(uid, orphan);
        }
    }

    fn collect_garbage(&mut self, first_dead: String, orphan: bool) {
        let mut dead = vec![first_dead];
        while let Some(uid) = dead.pop() {
            let dependents: Vec<ObjectKey> = self
                .dependents
                .get(&uid)
                .map(|keys| keys.iter().cloned().collect())
                .unwrap_or_default();
            for key in dependents {
                let (Some(object), Some(rt)) = (self.objects.get(&key).cloned(), self.resource_of(&key))
                else {
                    continue;
                };
                let has_live_owner =
                    owner_uids(&object).any(|owner| owner != uid && self.uids.contains(owner));
                // Each branch is one request the real garbage collector sends.
                if orphan || has_live_owner {
                    let mut released = Value::clone(&object);
                    if let Some(Value::Array(owners)) = released.pointer_mut("/metadata/ownerReferences") {
                        owners.retain(|owner| owner.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    }
                    self.counts
                        .count_garbage_collection(Verb::Patch, &key.group, &key.plural);
                    self.commit(rt, key, released, object);
                } else if object.pointer("/metadata/deletionTimestamp").is_some() {
                    // Being deleted already: the collector leaves it to finish.
                } else if finalizers(&object).is_empty() && grace_period(&key, &object, None) == 0 {
                    self.counts
                        .count_garbage_collection(Verb::Delete, &key.group, &key.plural);
                    let dependent_uid = meta_str(&object, "uid").unwrap_or_default().to_string();
                    // Removing directly (not through `remove`) keeps this loop iterative.
                    if let Some(object) = self.take(&key) {
                        self.emit_deleted(&key, object);
                    }
                    dead.push(dependent_uid);
                } else {
                    self.counts
                        .count_garbage_collection(Verb::Delete, &key.group, &key.plural);
                    self.delete_key(&key, false, None);
                }
            }
        }
    }

    /// Tells the watchers an object taken out of the store is gone, under a new resource version.
    fn emit_deleted(&mut self, key: &ObjectKey, object: Arc<Value>) -> Option<Object> {
        self.resource_version += 1;
        let mut gone = Arc::unwrap_or_clone(object);
        metadata_mut(&mut gone).insert("resourceVersion".into(), json!(self.resource_version.to_string()));
        let rt = self.resource_of(key)?;
        Some(self.emit(ChangeKind::Deleted, rt, Arc::new(gone), None))
    }

    fn insert(&mut self, key: ObjectKey, object: Arc<Value>) {
        let previous = match self.objects.get_mut(&key) {
            Some(stored) => Some(std::mem::replace(stored, object.clone())),
            None => self.objects.insert(key.clone(), object.clone()),
        };
        let uid = meta_str(&object, "uid");
        let uid_before = previous.as_deref().and_then(|p| meta_str(p, "uid"));
        if uid != uid_before {
            if let Some(uid) = uid_before {
                self.uids.remove(uid);
            }
            if let Some(uid) = uid {
                self.uids.insert(uid.to_string());
            }
        }
        let owners_before: Vec<&str> = previous
            .as_deref()
            .map(|p| owner_uids(p).collect())
            .unwrap_or_default();
        let owners_now: Vec<&str> = owner_uids(&object).collect();
        if owners_before != owners_now {
            unindex_owners(&mut self.dependents, &key, &owners_before);
            for owner in owners_now {
                self.dependents
                    .entry(owner.to_string())
                    .or_default()
                    .insert(key.clone());
            }
        }
    }

    /// Takes an object out of the store (and out of the uid and owner indexes).
    fn take(&mut self, key: &ObjectKey) -> Option<Arc<Value>> {
        let object = self.objects.remove(key)?;
        if let Some(uid) = meta_str(&object, "uid") {
            self.uids.remove(uid);
        }
        let owners: Vec<&str> = owner_uids(&object).collect();
        unindex_owners(&mut self.dependents, key, &owners);
        Some(object)
    }

    fn emit(
        &mut self,
        kind: ChangeKind,
        resource: Arc<ResourceType>,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) -> Object {
        let change = Arc::new(Change {
            resource_version: self.resource_version,
            kind,
            resource,
            object,
            previous,
            encoded: Arc::default(),
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.resource_version;
            }
        }
        let written = Object::of(&change);
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
        written
    }

    /// Begins a watch: from the current state (`after == None`, i.e. resourceVersion "" or "0",
    /// or when initial events are asked for) or from the changes after `after`.
    pub fn watch(
        &self,
        rt: &ResourceType,
        filter: &Filter,
        after: Option<u64>,
        initial_events: bool,
    ) -> WatchStart {
        let receiver = self.changes.subscribe();
        let resource_version = self.resource_version;
        match after {
            Some(after) if !initial_events => {
                let expired = after < self.compacted_through;
                let replay = if expired {
                    Vec::new()
                } else {
                    self.history
                        .iter()
                        .filter(|c| c.resource_version > after)
                        .cloned()
                        .collect()
                };
                WatchStart {
                    initial: Vec::new(),
                    replay,
                    receiver,
                    resource_version,
                    expired,
                }
            }
            _ => {
                let initial = self.list(rt, filter).0;
                WatchStart {
                    initial,
                    replay: Vec::new(),
                    receiver,
                    resource_version,
                    expired: false,
                }
            }
        }
    }

    /// Every object, ordered by resource type, namespace and name.
    pub fn snapshot(&self) -> Vec<Value> {
        self.objects.values().map(|object| Value::clone(object)).collect()
    }

    /// Loads objects saved by `snapshot` as they are (uid, resourceVersion and timestamps kept).
    pub fn import(&mut self, items: &[Value], resource_version: u64) -> Result<(), String> {
        let mut max_version = resource_version;
        // CRDs first: the objects of the types they declare can only be stored after them.
        let (crds, others): (Vec<&Value>, Vec<&Value>) = items
            .iter()
            .partition(|item| item.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"));
        for crd in &crds {
            for declared in ResourceType::from_crd_value(crd) {
                self.register(declared);
            }
        }
        for item in crds.into_iter().chain(others) {
            let api_version = item.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            let kind = item.get("kind").and_then(Value::as_str).unwrap_or_default();
            let rt = self
                .resource_for_kind(api_version, kind)
                .ok_or_else(|| format!("unknown resource type {api_version}/{kind}"))?;
            let name = meta_str(item, "name")
                .filter(|n| !n.is_empty())
                .ok_or("an object has no metadata.name")?;
            let namespace = meta_str(item, "namespace").unwrap_or("default");
            let version = meta_str(item, "resourceVersion")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            max_version = max_version.max(version);
            let mut object = item.clone();
            if meta_str(&object, "uid").is_none() {
                metadata_mut(&mut object).insert("uid".into(), json!(format!("imported-{name}-{version}")));
            }
            self.insert(ObjectKey::new(&rt, namespace, name), Arc::new(object));
        }
        self.resource_version = self.resource_version.max(max_version);
        self.compacted_through = self.resource_version;
        Ok(())
    }
}

/// A time as metadata timestamps are written: RFC 3339 in UTC, whole seconds.
fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long a delete gives `object` before it goes, as the real Pod strategy decides: for a
/// Pod bound to a node (`spec.nodeName`) that has not finished, the delete's
/// `gracePeriodSeconds`, else its `spec.terminationGracePeriodSeconds`, else 30 (negative
/// means 1). Zero, i.e. at once, for Pods never scheduled or finished, and for every other
/// resource.
fn grace_period(key: &ObjectKey, object: &Value, requested: Option<i64>) -> i64 {
    if !(key.group.is_empty() && key.plural == "pods") {
        return 0;
    }
    let scheduled = object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|node| !node.is_empty());
    let finished = matches!(
        object.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || finished {
        return 0;
    }
    let grace = requested
        .or_else(|| {
            object
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_POD_GRACE_SECONDS);
    if grace < 0 { 1 } else { grace }
}

/// The grace period of a deletion in progress (`metadata.deletionGracePeriodSeconds`), 0 if none.
fn pending_grace_seconds(object: &Value) -> i64 {
    object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// A uid that is unique for the life of a store (and across export/import, since resource
/// versions only grow), shaped like the UUIDs a real server hands out.
fn uid_for(resource_version: u64) -> String {
    format!("00000000-0000-4000-8000-{resource_version:012x}")
}

/// Checks `apiVersion`/`kind` against the resource type and fills them in when absent.
fn stamp_type(rt: &ResourceType, object: &mut Value) -> Result<(), ApiError> {
    let Some(fields) = object.as_object_mut() else {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    };
    let api_version = rt.api_version();
    for (field, expected) in [("apiVersion", api_version.as_str()), ("kind", rt.kind.as_str())] {
        match fields.get(field).and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != expected => {
                return Err(ApiError::bad_request(format!(
                    "{field} {given:?} does not match the resource {} (expected {expected:?})",
                    rt.qualified_name()
                )));
            }
            _ => {
                fields.insert(field.into(), json!(expected));
            }
        }
    }
    if !matches!(
        fields.get("metadata"),
        None | Some(Value::Object(_)) | Some(Value::Null)
    ) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// The object's `metadata`, created if absent. Callers have checked the object is an object
/// (`stamp_type`), so the fallback replacement never discards data.
fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let Value::Object(fields) = object else {
        unreachable!("made an object above")
    };
    let meta = fields.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    match meta {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

/// True when `object` names a namespace other than the request's (an empty one names none).
fn names_other_namespace(object: &Value, namespace: &str) -> bool {
    meta_str(object, "namespace").is_some_and(|ns| !ns.is_empty() && ns != namespace)
}

/// 400 for an object whose namespace is not the request's, worded as the real server words it.
fn namespace_mismatch() -> ApiError {
    ApiError::bad_request(
        "the namespace of the provided object does not match the namespace sent on the request",
    )
}

/// 400 for an object whose name is not the one on the URL, worded as the real server words it.
fn name_mismatch() -> ApiError {
    ApiError::bad_request("the name of the object does not match the name on the URL")
}

/// The object an update of `target` leaves: a status write changes only `.status` (and the
/// managedFields it records), a main write of a resource with a status subresource keeps the
/// current `.status`.
fn written_part(rt: &ResourceType, target: Target, mut object: Value, current: &Value) -> Value {
    match target {
        Target::Status => {
            // Server-side apply to status records its fields in metadata.managedFields.
            let managed = object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .and_then(|meta| meta.remove("managedFields"));
            // The current object with the written status: built from the written object, so
            // the parts a status write leaves as they are (usually all) are not copied.
            restore_all_but_status(&mut object, current);
            if let Some(managed) = managed {
                metadata_mut(&mut object).insert("managedFields".into(), managed);
            }
            object
        }
        Target::Main if rt.status_subresource => {
            set_or_remove(&mut object, "status", current.get("status").cloned());
            object
        }
        Target::Main => object,
    }
}

/// Puts back the metadata fields only the server writes, as they are in `old_meta`, and drops
/// `selfLink`.
fn keep_server_fields(meta: &mut Map<String, Value>, old_meta: &Map<String, Value>) {
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        match old_meta.get(field) {
            Some(value) => meta.insert(field.into(), value.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("selfLink");
}

pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// Makes every top-level field of `object` but `status` equal to `current`'s, copying only the
/// fields that differ.
fn restore_all_but_status(object: &mut Value, current: &Value) {
    let empty = Map::new();
    let current = current.as_object().unwrap_or(&empty);
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    fields.retain(|field, _| field == "status" || current.contains_key(field));
    for (field, value) in current.iter().filter(|(field, _)| *field != "status") {
        match fields.get_mut(field) {
            Some(written) if written == value => {}
            Some(written) => *written = value.clone(),
            None => {
                fields.insert(field.clone(), value.clone());
            }
        }
    }
}

fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    if let Some(fields) = object.as_object_mut() {
        match value {
            Some(value) => fields.insert(field.to_string(), value),
            None => fields.remove(field),
        };
    }
}

fn finalizers(object: &Value) -> Vec<&str> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Drops `key` from the dependents of each of `owners`.
fn unindex_owners(dependents: &mut HashMap<String, BTreeSet<ObjectKey>>, key: &ObjectKey, owners: &[&str]) {
    for owner in owners {
        if let Some(keys) = dependents.get_mut(*owner) {
            keys.remove(key);
            if keys.is_empty() {
                dependents.remove(*owner);
            }
        }
    }
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|owner| owner.get("uid").and_then(Value::as_str))
}

/// True when anything other than metadata (and status, where status is a subresource) differs:
/// the rule for bumping `metadata.generation`.
fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    fn content<'a>(rt: &ResourceType, object: &'a Value) -> impl Iterator<Item = (&'a String, &'a Value)> {
        let is_content =
            move |field: &str| field != "metadata" && !(rt.status_subresource && field == "status");
        let fields = object.as_object().into_iter().flatten();
        fields.filter(move |(field, _)| is_content(field))
    }
    !content(rt, old).eq(content(rt, new))
}
