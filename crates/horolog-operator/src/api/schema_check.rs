//! What the API server does to an object before anything else, done offline: it prunes (or,
//! with `fieldValidation=Strict` as `kubectl apply` sends, refuses) every field the CRD's
//! structural schema does not declare, and refuses values of the wrong type. `horolog preview`,
//! local mode and `kubectl horolog lint` run this against the very schemas `horolog crds`
//! generates, so a misspelt `comand` or a string `command` fails there as it fails on a cluster.

use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

/// Fields of every object that CRD schemas do not list (metadata is checked against
/// `ObjectMeta` instead).
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// One field the API server would refuse.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaProblem {
    /// The field path as `kubectl` prints it, e.g. `spec.jobTemplate.spec.template.spec.containers[0].comand`.
    pub field: String,
    /// The value as written.
    pub value: Json,
    /// What is wrong: `unknown field` (with a suggestion when one is close),
    /// `must be of type array`, `may not be longer than 64 characters`.
    pub message: String,
    /// True for a value of the wrong type: the API server stops there, and decoding the
    /// object would only say it again.
    pub mistyped: bool,
}

/// The `openAPIV3Schema` of the horolog kind `kind` (`Schedule`, `JobRun`, `Task`,
/// `Backfill`, `Calendar`), as the generated CRD carries it.
pub fn schema_of(kind: &str) -> Option<&'static Json> {
    static SCHEMAS: OnceLock<Vec<(String, Json)>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            crate::crd::crds()
                .into_iter()
                .map(|crd| {
                    let schema = crd
                        .spec
                        .versions
                        .first()
                        .and_then(|v| v.schema.as_ref())
                        .and_then(|s| serde_json::to_value(&s.open_api_v3_schema).ok())
                        .unwrap_or(Json::Null);
                    (crd.spec.names.kind, schema)
                })
                .collect()
        })
        .iter()
        .find(|(k, _)| k == kind)
        .map(|(_, schema)| schema)
}

/// Checks the whole object `value` of kind `kind` against its CRD schema: unknown fields
/// (also in `metadata`) are removed from `value` and reported, as the API server prunes
/// them; values of the wrong type are reported and left in place. Empty: the API server
/// would take it. A kind that is not horolog's gives no problems.
pub fn check_object(kind: &str, value: &mut Json) -> Vec<SchemaProblem> {
    let Some(schema) = schema_of(kind) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if let Some(metadata) = value.get("metadata").filter(|m| m.is_object()) {
        for (field, value) in dropped::<ObjectMeta>(metadata, "metadata") {
            problems.push(SchemaProblem {
                field,
                value,
                message: "unknown field".into(),
                mistyped: false,
            });
        }
    }
    check(value, schema, "", &mut problems);
    problems
}

/// Checks `value` against the structural `schema`; `path` is where `value` is.
pub fn check(value: &mut Json, schema: &Json, path: &str, out: &mut Vec<SchemaProblem>) {
    if value.is_null() {
        return; // the API server drops nulls of fields that are not nullable
    }
    if let Some(expected) = type_mismatch(value, schema) {
        out.push(SchemaProblem {
            field: path.to_string(),
            value: value.clone(),
            message: format!("must be of type {expected}"),
            mistyped: true,
        });
        return;
    }
    if let Some(message) = too_long(value, schema) {
        out.push(SchemaProblem {
            field: path.to_string(),
            value: value.clone(),
            message,
            mistyped: false,
        });
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true))
        && schema.get("properties").is_none()
    {
        return;
    }
    match value {
        Json::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Json::as_object) {
                let keeps_unknown =
                    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true));
                let unknown: Vec<String> = map
                    .keys()
                    .filter(|key| !properties.contains_key(*key))
                    .filter(|key| !(path.is_empty() && ROOT_FIELDS.contains(&key.as_str())))
                    .cloned()
                    .collect();
                for key in unknown.into_iter().filter(|_| !keeps_unknown) {
                    let removed = map.remove(&key).unwrap_or(Json::Null);
                    let message = match closest_field(&key, properties.keys()) {
                        Some(close) => format!("unknown field; did you mean {close}?"),
                        None => "unknown field".to_string(),
                    };
                    out.push(SchemaProblem {
                        field: join(path, &key),
                        value: removed,
                        message,
                        mistyped: false,
                    });
                }
                for (key, child) in map.iter_mut() {
                    if let Some(child_schema) = properties.get(key) {
                        check(child, child_schema, &join(path, key), out);
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (key, child) in map.iter_mut() {
                    check(child, values, &join(path, key), out);
                }
            } else if !path.is_empty() && schema.get("additionalProperties") != Some(&Json::Bool(true)) {
                // An object schema with neither properties nor additionalProperties keeps
                // nothing: the API server prunes every field of it.
                for (key, removed) in std::mem::take(map) {
                    out.push(SchemaProblem {
                        field: join(path, &key),
                        value: removed,
                        message: "unknown field".into(),
                        mistyped: false,
                    });
                }
            }
        }
        Json::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// What is wrong when `value` is longer than `schema`'s `maxLength` (a string, in characters
/// as the API server counts them) or `maxItems` (a list). Patterns and numeric bounds are the
/// typed checks' (`Duration` parsing, `Validate::problems`).
fn too_long(value: &Json, schema: &Json) -> Option<String> {
    let string_schema = match schema.get("anyOf").and_then(Json::as_array) {
        // Structural anyOf members carry no type: the string one is the one with a length.
        Some(members) if value.is_string() => members.iter().find(|m| m.get("maxLength").is_some())?,
        _ => schema,
    };
    match value {
        Json::String(text) => {
            let max = string_schema.get("maxLength").and_then(Json::as_u64)?;
            (text.chars().count() as u64 > max).then(|| format!("may not be longer than {max} characters"))
        }
        Json::Array(items) => {
            let max = schema.get("maxItems").and_then(Json::as_u64)?;
            (items.len() as u64 > max).then(|| format!("may not have more than {max} items"))
        }
        _ => None,
    }
}

/// The type `schema` wants when `value` is not of it.
fn type_mismatch(value: &Json, schema: &Json) -> Option<String> {
    if schema.get("x-kubernetes-int-or-string") == Some(&Json::Bool(true)) {
        let ok = value.is_string() || value.is_i64() || value.is_u64();
        return (!ok).then(|| "integer or string".to_string());
    }
    let expected = schema.get("type").and_then(Json::as_str)?;
    let ok = match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    (!ok).then(|| expected.to_string())
}

/// The field among `known` that `key` is most likely a slip for: first one that `key` leaves
/// letters out of, then one that `key` adds letters to, then one within 3 edits.
pub fn closest_field<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let subsequence = |short: &str, long: &str| {
        let mut long = long.chars();
        short.chars().all(|c| long.any(|l| l == c))
    };
    known
        .map(|field| {
            let kind = if subsequence(key, field) {
                0
            } else if subsequence(field, key) {
                1
            } else {
                2
            };
            (kind, strsim::levenshtein(key, field), field)
        })
        .filter(|&(kind, distance, _)| distance <= 3 || (kind < 2 && distance <= 6))
        .min()
        .map(|(_, _, field)| field)
}

/// The fields of `value` that the Kubernetes type `T` does not know: those its own
/// deserializer drops (it ignores unknown fields), found by reading `value` into `T` and
/// writing it back.
fn dropped<T: DeserializeOwned + Serialize>(value: &Json, path: &str) -> Vec<(String, Json)> {
    let Ok(object) = serde_json::from_value::<T>(value.clone()) else {
        return Vec::new(); // a type error; the typed read of the whole object reports it
    };
    let Ok(kept) = serde_json::to_value(&object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    missing_in(value, &kept, path, &mut out);
    out
}

fn missing_in(given: &Json, kept: &Json, path: &str, out: &mut Vec<(String, Json)>) {
    match (given, kept) {
        (Json::Object(given), Json::Object(kept)) => {
            for (key, value) in given.iter().filter(|(_, v)| !v.is_null()) {
                match kept.get(key) {
                    Some(kept) => missing_in(value, kept, &join(path, key), out),
                    None => out.push((join(path, key), value.clone())),
                }
            }
        }
        (Json::Array(given), Json::Array(kept)) => {
            for (i, (value, kept)) in given.iter().zip(kept).enumerate() {
                missing_in(value, kept, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule(template_spec: Json) -> Json {
        json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"trigger": {"interval": "1m"},
                     "jobTemplate": {"spec": {"template": {"spec": template_spec}}}}
        })
    }

    fn problems(kind: &str, mut value: Json) -> Vec<(String, String)> {
        check_object(kind, &mut value)
            .into_iter()
            .map(|p| (p.field, p.message))
            .collect()
    }

    #[test]
    fn a_valid_schedule_has_no_problems() {
        let value = schedule(json!({"containers": [{"name": "m", "image": "busybox",
            "command": ["sh", "-c", "echo hi"], "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
            "ports": [{"containerPort": 80}]}], "nodeSelector": {"a": "b"}}));
        assert_eq!(problems("Schedule", value), []);
    }

    #[test]
    fn a_misspelt_pod_field_is_named_with_its_path_and_a_suggestion() {
        let value = schedule(json!({"containers": [{"name": "m", "image": "busybox", "comand": ["sh"]}]}));
        assert_eq!(
            problems("Schedule", value),
            [(
                "spec.jobTemplate.spec.template.spec.containers[0].comand".to_string(),
                "unknown field; did you mean command?".to_string()
            )]
        );
    }

    #[test]
    fn a_string_command_is_the_wrong_type() {
        let value =
            schedule(json!({"containers": [{"name": "m", "image": "busybox", "command": "echo hi"}]}));
        assert_eq!(
            problems("Schedule", value),
            [(
                "spec.jobTemplate.spec.template.spec.containers[0].command".to_string(),
                "must be of type array".to_string()
            )]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_from_the_value_and_metadata_is_checked() {
        let mut value = json!({"kind": "Task", "metadata": {"name": "t", "labes": {}},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}, "calendarRef": "x"}});
        let found = check_object("Task", &mut value);
        let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["metadata.labes", "spec.calendarRef"]);
        assert!(value["spec"].get("calendarRef").is_none());
    }

    #[test]
    fn int_or_string_and_maps_follow_their_value_schema() {
        let value = schedule(json!({"containers": [{"name": "m", "image": "i",
            "resources": {"limits": {"cpu": true}}}], "nodeSelector": {"a": 1}}));
        let found = problems("Schedule", value);
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.jobTemplate.spec.template.spec.containers[0].resources.limits.cpu",
                "spec.jobTemplate.spec.template.spec.nodeSelector.a"
            ]
        );
    }

    #[test]
    fn a_left_out_word_points_to_the_field_it_was_left_out_of() {
        let known: Vec<String> = ["maxRuns", "maxRunningJobs", "paused"].map(String::from).to_vec();
        assert_eq!(
            closest_field("maxRunJobs", known.iter()).map(String::as_str),
            Some("maxRunningJobs")
        );
        assert_eq!(
            closest_field("pasued", known.iter()).map(String::as_str),
            Some("paused")
        );
        assert_eq!(closest_field("schedule", known.iter()), None);
    }

    #[test]
    fn strings_and_lists_longer_than_the_schema_allows_are_refused() {
        let mut value = schedule(json!({"containers": [{"name": "m", "image": "i"}]}));
        value["spec"]["trigger"] = json!({"timezone": "x".repeat(65), "anyOf": vec![json!({"interval": "1m"}); 17],
            "cronFields": {"hour": "9".repeat(129)}});
        let found = problems("Schedule", value);
        assert_eq!(
            found,
            [
                (
                    "spec.trigger.anyOf".to_string(),
                    "may not have more than 16 items".to_string()
                ),
                (
                    "spec.trigger.cronFields.hour".to_string(),
                    "may not be longer than 128 characters".to_string()
                ),
                (
                    "spec.trigger.timezone".to_string(),
                    "may not be longer than 64 characters".to_string()
                ),
            ]
        );
    }

    #[test]
    fn other_kinds_are_not_checked() {
        assert_eq!(problems("ConfigMap", json!({"data": {"a": 1}})), []);
    }
}
