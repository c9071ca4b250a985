//! Structural defaulting from a CRD's `openAPIV3Schema`, as the real API server applies it to
//! custom resources (k8s.io/apiextensions-apiserver `structuraldefaulting.Default`).

use serde_json::Value;

/// Fills in the `default`s `schema` declares: a property that is missing (or null where the
/// schema does not allow null) gets its default, then every present property is defaulted by
/// its own schema (or by `additionalProperties`), and every array item by `items`. Defaults
/// that were just filled in are defaulted in turn, as on the real server.
pub(crate) fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, property) in properties.into_iter().flatten() {
                let Some(default) = property.get("default") else {
                    continue;
                };
                let missing = match fields.get(name) {
                    None => true,
                    Some(Value::Null) => !nullable(property),
                    Some(_) => false,
                };
                if missing {
                    fields.insert(name.clone(), default.clone());
                }
            }
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (name, field) in fields.iter_mut() {
                match properties.and_then(|properties| properties.get(name)) {
                    Some(property) => apply_defaults(field, property),
                    None => {
                        if let Some(additional) = additional {
                            apply_defaults(field, additional);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// True when `schema` declares a `default` anywhere, so objects of its type need defaulting.
pub(crate) fn declares_defaults(schema: &Value) -> bool {
    match schema {
        Value::Object(fields) => fields.contains_key("default") || fields.values().any(declares_defaults),
        Value::Array(items) => items.iter().any(declares_defaults),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_properties_get_defaults_in_objects_maps_and_arrays() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "mode": {"type": "string", "default": "Wait"},
                        "limits": {"type": "object", "default": {"cpu": "1"}, "properties": {
                            "memory": {"type": "string", "default": "1Gi"},
                        }},
                        "maybe": {"type": "string", "nullable": true, "default": "x"},
                        "never": {"type": "string", "default": "y"},
                        "ports": {"type": "array", "items": {"type": "object", "properties": {
                            "protocol": {"type": "string", "default": "TCP"},
                        }}},
                        "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                            "weight": {"type": "integer", "default": 1},
                        }}},
                    },
                },
            },
        });
        let mut object = json!({"spec": {
            "maybe": null,
            "never": null,
            "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
            "labels": {"a": {}, "b": {"weight": 5}},
        }});
        apply_defaults(&mut object, &schema);
        assert_eq!(
            object,
            json!({"spec": {
                "mode": "Wait",
                "limits": {"cpu": "1", "memory": "1Gi"},
                "maybe": null,
                "never": "y",
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                "labels": {"a": {"weight": 1}, "b": {"weight": 5}},
            }})
        );
        let mut empty = json!({});
        apply_defaults(&mut empty, &schema);
        assert_eq!(
            empty["spec"]["mode"], "Wait",
            "a defaulted object is defaulted in turn"
        );
        assert!(declares_defaults(&schema));
        assert!(!declares_defaults(
            &json!({"properties": {"a": {"type": "string"}}})
        ));
    }
}
