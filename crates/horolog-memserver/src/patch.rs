//! The patch formats: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

use serde_json::Value;

/// Applies a JSON merge patch to `target` in place: objects merge key by key, `null` removes a
/// key, everything else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies a JSON patch (a list of `add`/`remove`/`replace`/`move`/`copy`/`test` operations)
/// to a copy of `target`; all or nothing.
pub fn json_patch(target: &Value, operations: &Value) -> Result<Value, String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    let mut doc = target.clone();
    for op in operations {
        let field = |name: &str| {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operation {op} has no string {name:?}"))
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {op} has no \"value\""))
        };
        let path = pointer(field("path")?)?;
        match field("op")? {
            "add" => add(&mut doc, &path, value()?)?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                remove(&mut doc, &path)?;
                add(&mut doc, &path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, &pointer(field("from")?)?)?;
                add(&mut doc, &path, moved)?;
            }
            "copy" => {
                let from = pointer(field("from")?)?;
                let copied = get(&doc, &from)
                    .cloned()
                    .ok_or_else(|| format!("no value at {from:?}"))?;
                add(&mut doc, &path, copied)?;
            }
            "test" => {
                if get(&doc, &path) != Some(&value()?) {
                    return Err(format!("test failed at {}", field("path")?));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(doc)
}

/// The reference tokens of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
fn pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let rest = text
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {text:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, token| match v {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in path {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path /{} does not exist", path.join("/")))?;
    }
    Ok(current)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, init)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1)?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add below a scalar at /{}", init.join("/"))),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, init) = path.split_last().ok_or("cannot remove the whole document")?;
    let missing = || format!("no value at /{}", path.join("/"));
    match parent(doc, init)? {
        Value::Object(map) => map.remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = index(last, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

fn index(token: &str, len: usize) -> Result<usize, String> {
    token
        .parse::<usize>()
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| format!("array index {token:?} out of range"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "list": [3], "new": {"x": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}})
        );
    }

    #[test]
    fn json_patch_applies_every_operation_kind() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2, 3]});
        let ops = json!([
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "9"},
            {"op": "remove", "path": "/list/0"},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "copy", "from": "/list/0", "path": "/first"},
            {"op": "move", "from": "/first", "path": "/moved"},
            {"op": "test", "path": "/moved", "value": 2},
        ]);
        let patched = json_patch(&doc, &ops).unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"a": "9", "b/c": "2"}}, "list": [2, 3, 4], "moved": 2})
        );
    }

    #[test]
    fn failing_json_patch_leaves_nothing_applied() {
        let doc = json!({"a": 1});
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/a", "value": 2}])).is_err());
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/missing"}])).is_err());
        assert!(json_patch(&doc, &json!({"op": "add"})).is_err());
    }
}
