//! Server-side apply, approximated: the applied configuration is merged like a JSON merge patch,
//! and the fields a manager applied last time but leaves out now are removed, unless another
//! apply manager also applied them. Each manager's field set is kept in `metadata.managedFields`
//! (`fieldsV1` format), so it survives export and import.
//!
//! Simplifications: lists are atomic (no merging by key), `Update` operations record no
//! ownership (a field a manager applied is removed when it stops applying it, even if a plain
//! patch wrote it since), and conflicts between managers are never reported (`force` is moot).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::patch::merge_patch;

/// A field path, e.g. `["status", "message"]`.
type Path = Vec<String>;

/// Fields the server owns, which an apply never removes.
const NEVER_REMOVED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "resourceVersion"],
    &["metadata", "managedFields"],
];

/// The object after `manager` applies `config` to `current` (through `subresource`, `""` for the
/// object itself), with the manager's entry in `metadata.managedFields` stamped `now` if its
/// field set changed.
pub fn apply(current: &Value, config: &Value, manager: &str, subresource: &str, now: &str) -> Value {
    let mut config = config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let applied = field_paths(&config);
    let entries: Vec<Value> = current
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_ours = |entry: &Value| {
        entry.get("manager").and_then(Value::as_str) == Some(manager)
            && entry.get("operation").and_then(Value::as_str) == Some("Apply")
            && entry
                .get("subresource")
                .and_then(Value::as_str)
                .unwrap_or_default()
                == subresource
    };
    let fields_of = |entry: &Value| paths_of_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null));
    let previous: BTreeSet<Path> = entries
        .iter()
        .filter(|e| is_ours(e))
        .flat_map(fields_of)
        .collect();
    let others: BTreeSet<Path> = entries
        .iter()
        .filter(|e| !is_ours(e) && e.get("operation").and_then(Value::as_str) == Some("Apply"))
        .flat_map(fields_of)
        .collect();

    let dropped: BTreeSet<&Path> = previous
        .iter()
        .filter(|path| !applied.contains(*path) && !others.contains(*path))
        .filter(|path| !NEVER_REMOVED.iter().any(|fixed| fixed.iter().eq(path.iter())))
        .collect();
    let mut result = current.clone();
    for path in &dropped {
        // Removing an ancestor removes the path too.
        let ancestor_dropped = (1..path.len()).any(|len| dropped.contains(&path[..len].to_vec()));
        if !ancestor_dropped {
            remove_path(&mut result, path);
        }
    }
    merge_patch(&mut result, &config);

    // As the real server does: the entry's `time` moves when the manager adds or removes a
    // field or changes the value of one it owns (an edited cron is a new time, the same
    // field set), not on an apply that changes nothing.
    if previous != applied || result != *current || !entries.iter().any(is_ours) {
        let mut entry = json!({
            "manager": manager,
            "operation": "Apply",
            "apiVersion": config.get("apiVersion").or_else(|| current.get("apiVersion")).cloned().unwrap_or(Value::Null),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(&applied),
        });
        if !subresource.is_empty() {
            entry["subresource"] = json!(subresource);
        }
        let mut entries: Vec<Value> = entries.into_iter().filter(|e| !is_ours(e)).collect();
        entries.push(entry);
        if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
    result
}

/// Every path in `config`, objects and leaves alike (lists are leaves).
fn field_paths(config: &Value) -> BTreeSet<Path> {
    fn walk(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        if let Value::Object(fields) = value {
            for (key, child) in fields {
                prefix.push(key.clone());
                out.insert(prefix.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(config, &mut Vec::new(), &mut out);
    out
}

/// Paths as a `fieldsV1` tree: `{"f:status": {".": {}, "f:phase": {}}}`.
fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for segment in path {
            let child = node.entry(format!("f:{segment}")).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            let Value::Object(child) = child else { break };
            node = child;
        }
    }
    // Mark objects that are themselves set, as the real server does.
    fn mark(node: &mut Map<String, Value>) {
        for child in node.values_mut() {
            if let Value::Object(grandchildren) = child
                && !grandchildren.is_empty()
            {
                mark(grandchildren);
                grandchildren.insert(".".into(), json!({}));
            }
        }
    }
    mark(&mut root);
    Value::Object(root)
}

/// The paths a `fieldsV1` tree names (keys other than `f:` ones, such as `k:` list keys, are skipped).
fn paths_of_fields_v1(fields: &Value) -> BTreeSet<Path> {
    fn walk(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        let Value::Object(fields) = value else { return };
        for (key, child) in fields {
            if let Some(name) = key.strip_prefix("f:") {
                prefix.push(name.to_string());
                out.insert(prefix.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn remove_path(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(object, |node, segment| node.get_mut(segment));
    if let Some(Value::Object(fields)) = parent {
        fields.remove(last);
    }
}

/// Records, as the real server does for every write that is not an apply, an `Update` entry of
/// `manager` stamped `now` in `written`'s `metadata.managedFields` when the write changes
/// `.spec` (replacing that manager's earlier Update entry of the object itself). Its `time` is
/// when the spec last changed, which controllers read (horolog: when a trigger was edited).
/// The field set is reduced to `f:spec`.
pub fn record_update(current: &Value, written: &mut Value, manager: &str, now: &str) {
    if current.get("spec") == written.get("spec") {
        return;
    }
    let mut entries: Vec<Value> = current
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries.retain(|entry| {
        !(entry.get("manager").and_then(Value::as_str) == Some(manager)
            && entry.get("operation").and_then(Value::as_str) == Some("Update")
            && entry.get("subresource").is_none())
    });
    entries.push(json!({
        "manager": manager,
        "operation": "Update",
        "apiVersion": written.get("apiVersion").or_else(|| current.get("apiVersion")).cloned().unwrap_or(Value::Null),
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {}},
    }));
    if let Some(meta) = written.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn fields_a_manager_stops_applying_are_removed() {
        let current = json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}});
        let first = apply(
            &current,
            &json!({"status": {"phase": "Waiting", "message": "no slot"}}),
            "op",
            "status",
            NOW,
        );
        assert_eq!(first["status"], json!({"phase": "Waiting", "message": "no slot"}));
        let second = apply(
            &first,
            &json!({"status": {"phase": "Running"}}),
            "op",
            "status",
            NOW,
        );
        assert_eq!(second["status"], json!({"phase": "Running"}));
    }

    #[test]
    fn fields_another_manager_applied_stay() {
        let current = json!({"metadata": {"name": "a"}});
        let by_a = apply(&current, &json!({"data": {"x": "1"}}), "a", "", NOW);
        let by_b = apply(&by_a, &json!({"data": {"x": "1", "y": "2"}}), "b", "", NOW);
        let a_again = apply(&by_b, &json!({"data": {}}), "a", "", NOW);
        assert_eq!(a_again["data"], json!({"x": "1", "y": "2"}));
    }

    #[test]
    fn reapplying_the_same_config_changes_nothing() {
        let config = json!({"spec": {"x": [1, 2]}, "metadata": {"labels": {"a": "b"}}});
        let once = apply(&json!({"metadata": {"name": "a"}}), &config, "op", "", NOW);
        let twice = apply(&once, &config, "op", "", "2030-01-01T00:00:00Z");
        assert_eq!(once, twice);
        assert_eq!(
            once.pointer("/metadata/managedFields/0/fieldsV1").unwrap(),
            &json!({"f:metadata": {".": {}, "f:labels": {".": {}, "f:a": {}}}, "f:spec": {".": {}, "f:x": {}}})
        );
    }

    #[test]
    fn applying_a_new_value_of_an_owned_field_moves_the_entry_time() {
        let once = apply(
            &json!({"metadata": {"name": "a"}}),
            &json!({"spec": {"cron": "0 0 1 1 *"}}),
            "op",
            "",
            NOW,
        );
        let later = "2030-01-01T00:00:00Z";
        let edited = apply(&once, &json!({"spec": {"cron": "5 4 * * *"}}), "op", "", later);
        assert_eq!(
            edited.pointer("/metadata/managedFields/0/time"),
            Some(&json!(later))
        );
        assert_eq!(
            edited
                .pointer("/metadata/managedFields")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_write_that_changes_the_spec_records_an_update_entry_with_its_time() {
        let current = json!({"apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"x": 1}});
        let mut same = current.clone();
        record_update(&current, &mut same, "kubectl-edit", "2026-01-01T00:00:00Z");
        assert_eq!(same, current, "no spec change, no entry");
        let mut edited = json!({"apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"x": 2}});
        record_update(&current, &mut edited, "kubectl-edit", "2026-01-01T00:02:30Z");
        let entry = edited.pointer("/metadata/managedFields/0").cloned().unwrap();
        assert_eq!(entry["manager"], "kubectl-edit");
        assert_eq!(entry["operation"], "Update");
        assert_eq!(entry["time"], "2026-01-01T00:02:30Z");
        let mut again = json!({"apiVersion": "v1", "metadata": edited["metadata"].clone(), "spec": {"x": 3}});
        record_update(&edited, &mut again, "kubectl-edit", "2026-01-01T00:03:00Z");
        let entries = again
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(entries.len(), 1, "one Update entry per manager");
        assert_eq!(entries[0]["time"], "2026-01-01T00:03:00Z");
    }
}
