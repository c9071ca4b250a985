//! The committed CRDs are exactly what `horolog crds` generates, and they are structural.

use horolog::crd::{crd_files, crds_yaml};

#[test]
fn committed_crds_match_the_generated_ones() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds/horolog.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = crds_yaml().expect("CRDs serialize");
    assert!(
        committed == generated,
        "crds/horolog.yaml drifted from the Rust types; regenerate it with `cargo run -- crds > crds/horolog.yaml`"
    );
}

fn schema_of(file: &str) -> serde_json::Value {
    let (_, yaml) = crd_files()
        .unwrap()
        .into_iter()
        .find(|(f, _)| *f == file)
        .unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks a schema and collects what a structural schema forbids: `$ref`, and `anyOf`/`allOf`/
/// `oneOf` members that declare types or properties other than the int-or-string idiom.
fn non_structural(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else { return };
    if obj.contains_key("$ref") {
        out.push(format!("{path}: $ref"));
    }
    if !obj.contains_key("type")
        && !obj.contains_key("x-kubernetes-int-or-string")
        && !obj.contains_key("x-kubernetes-preserve-unknown-fields")
        && !path.is_empty()
    {
        out.push(format!("{path}: no type"));
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        for member in obj.get(key).and_then(|m| m.as_array()).into_iter().flatten() {
            if member.get("properties").is_some() || member.get("items").is_some() {
                out.push(format!("{path}.{key}: member declares structure"));
            }
        }
    }
    for (name, sub) in obj
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
    {
        non_structural(sub, &format!("{path}.{name}"), out);
    }
    if let Some(items) = obj.get("items") {
        non_structural(items, &format!("{path}[]"), out);
    }
}

#[test]
fn schemas_are_structural() {
    let files: Vec<String> = crd_files().unwrap().into_iter().map(|(f, _)| f).collect();
    assert_eq!(files.len(), 5, "{files:?}");
    for file in &files {
        let mut problems = Vec::new();
        non_structural(&schema_of(file), "", &mut problems);
        assert!(problems.is_empty(), "{file}: {problems:#?}");
    }
}

#[test]
fn schedule_trigger_carries_the_cel_rules() {
    let schema = schema_of("schedules.horolog.dev.yaml");
    let trigger = &schema["properties"]["spec"]["properties"]["trigger"];
    let rules: Vec<&str> = trigger["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("has(self.cronFields)") && r.ends_with("== 1")),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("timestamp(self.endTime) > timestamp(self.startTime)")),
        "{rules:?}"
    );
    let member = &trigger["properties"]["anyOf"]["items"];
    assert!(
        member["x-kubernetes-validations"].is_array(),
        "anyOf members carry their own rule"
    );
    assert!(member["properties"].get("anyOf").is_none(), "members cannot nest");
}

#[test]
fn names_columns_and_enums_follow_the_api_contract() {
    let (_, yaml) = crd_files()
        .unwrap()
        .into_iter()
        .find(|(f, _)| *f == "schedules.horolog.dev.yaml")
        .unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "hs");
    assert_eq!(crd["spec"]["names"]["categories"][0], "horolog");
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Trigger",
            "Timezone",
            "Next Fire",
            "Last Fire",
            "Active",
            "Paused",
            "Ready",
            "Reason",
            "Last Run",
            "Age"
        ]
    );
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(
        spec["coalesce"]["enum"],
        serde_json::json!(["Earliest", "Latest", "All"])
    );
    assert_eq!(
        spec["concurrencyPolicy"]["enum"],
        serde_json::json!(["Allow", "Wait", "Skip", "BufferOne", "Replace", "Terminate"])
    );
    assert_eq!(spec["maxRunningJobs"]["minimum"], 1.0);
    assert!(spec["misfireGraceTime"]["pattern"].is_string());
    assert!(crd["spec"]["versions"][0]["subresources"]["status"].is_object());
}

// ---------------------------------------------------------------------------------------
// One validation source: every CEL rule has its Rust check, with the same message.
// ---------------------------------------------------------------------------------------

/// Every `x-kubernetes-validations` rule under `schema`, as (path, rule, message).
fn cel_rules(schema: &serde_json::Value, path: &str, out: &mut Vec<(String, String, String)>) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push((
            path.to_string(),
            rule["rule"].as_str().unwrap_or_default().to_string(),
            rule["message"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (name, sub) in schema["properties"].as_object().into_iter().flatten() {
        cel_rules(sub, &format!("{path}.{name}"), out);
    }
    if schema.get("items").is_some() {
        cel_rules(&schema["items"], &format!("{path}[]"), out);
    }
}

const CONTAINERS: &str = "{spec: {containers: [{name: main, image: busybox}]}}";

/// For each CEL message: the kind, and a manifest that breaks that rule and no other.
fn rule_breakers() -> Vec<(&'static str, String)> {
    let schedule = |spec: &str| {
        format!("apiVersion: horolog.dev/v1alpha1\nkind: Schedule\nmetadata: {{name: s}}\nspec: {spec}\n")
    };
    let with_template = format!("jobTemplate: {{spec: {{template: {CONTAINERS}}}}}");
    vec![
        ("exactly one of cron, cronFields, interval, date, calendarInterval, anyOf, allOf must be set",
            schedule(&format!("{{trigger: {{cron: '* * * * *', interval: 1m}}, {with_template}}}"))),
        ("endTime must be after startTime",
            schedule(&format!("{{trigger: {{interval: 1m, startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:00:00Z'}}, {with_template}}}"))),
        ("each anyOf/allOf member sets exactly one of cron, cronFields, interval, date, calendarInterval",
            schedule(&format!("{{trigger: {{anyOf: [{{cron: '* * * * *', interval: 1m}}]}}, {with_template}}}"))),
        ("calendarInterval needs at least one of years, months, weeks, days greater than 0",
            schedule(&format!("{{trigger: {{calendarInterval: {{hour: 9}}}}, {with_template}}}"))),
        ("exactly one of jobTemplate and taskRef must be set",
            schedule(&format!("{{trigger: {{interval: 1m}}, taskRef: {{name: t}}, {with_template}}}"))),
        ("env and args apply only with taskRef; with jobTemplate, set them in the pod template",
            schedule(&format!("{{trigger: {{interval: 1m}}, args: [a], {with_template}}}"))),
        ("concurrencyPolicy Allow means no limit: leave maxRunningJobs out",
            schedule(&format!("{{trigger: {{interval: 1m}}, maxRunningJobs: 2, concurrencyPolicy: Allow, {with_template}}}"))),
        ("exactly one of template and taskRef must be set",
            "apiVersion: horolog.dev/v1alpha1\nkind: JobRun\nmetadata: {name: r}\nspec: {backoffLimit: 1}\n".to_string()),
        ("env and args apply only with taskRef; with template, set them in the pod template",
            format!("apiVersion: horolog.dev/v1alpha1\nkind: JobRun\nmetadata: {{name: r}}\nspec: {{template: {CONTAINERS}, args: [a]}}\n")),
        ("jobTemplate.spec.template is required",
            "apiVersion: horolog.dev/v1alpha1\nkind: Task\nmetadata: {name: t}\nspec: {jobTemplate: {spec: {}}}\n".to_string()),
        ("to must be after from",
            "apiVersion: horolog.dev/v1alpha1\nkind: Backfill\nmetadata: {name: b}\nspec: {scheduleName: s, from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z'}\n".to_string()),
    ]
}

/// The messages of every problem the offline validation (`Validate::problems`, the one
/// function lint, preview and local mode call) finds in `manifest`.
fn rust_messages(manifest: &str) -> Vec<String> {
    use horolog::api::Validate;
    use horolog::manifest::{Manifest, parse_manifests};
    let now = chrono::Utc::now();
    let manifests = parse_manifests(manifest, "rule.yaml").unwrap_or_else(|e| panic!("{e}"));
    let problems = match &manifests[0] {
        Manifest::Schedule(s) => s.problems(now),
        Manifest::JobRun(r) => r.problems(now),
        Manifest::Task(t) => t.problems(now),
        Manifest::Backfill(b) => b.problems(now),
        Manifest::Calendar(c) => c.problems(now),
        Manifest::Other { .. } => Vec::new(),
    };
    problems.into_iter().map(|p| p.message).collect()
}

#[test]
fn every_cel_rule_has_a_rust_check_with_the_same_message() {
    let breakers = rule_breakers();
    let mut missing = Vec::new();
    for (file, _) in crd_files().unwrap() {
        let mut rules = Vec::new();
        cel_rules(&schema_of(&file), "", &mut rules);
        for (path, rule, message) in rules {
            if rule.contains("oldSelf") {
                // A transition rule compares with the stored object, which offline tools do
                // not have; its Rust counterpart is BackfillSpec::change_problems.
                let spec: horolog::api::BackfillSpec = serde_json::from_value(serde_json::json!(
                    {"scheduleName": "s", "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}))
                .unwrap();
                let mut changed = spec.clone();
                changed.dry_run = true;
                let messages: Vec<String> = changed
                    .change_problems(&spec)
                    .into_iter()
                    .map(|p| p.message)
                    .collect();
                assert_eq!(messages, std::slice::from_ref(&message), "{file}{path}: {rule}");
                continue;
            }
            match breakers.iter().find(|(m, _)| *m == message) {
                None => missing.push(format!("{file}{path}: {rule}: {message}")),
                Some((_, manifest)) => {
                    let messages = rust_messages(manifest);
                    assert!(
                        messages.contains(&message),
                        "{file}{path}: the Rust checks of a manifest breaking `{rule}` say {messages:?}, not {message:?}"
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "CEL rules without a Rust check in rule_breakers(): {missing:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Every value the schema accepts, the operator can read.
// ---------------------------------------------------------------------------------------

/// Every bounded field of `schema` (a string with maxLength or a pattern, an integer with a
/// minimum or maximum, a date-time), with its path and schema. The embedded Kubernetes types
/// (pod template, env, metadata) are the kubelet's to read, not the operator's.
fn bounded_fields(
    schema: &serde_json::Value,
    path: &[String],
    out: &mut Vec<(Vec<String>, serde_json::Value)>,
) {
    let last = path.last().map(String::as_str).unwrap_or_default();
    if ["template", "env", "metadata", "status"].contains(&last) {
        return;
    }
    let bounded = ["maxLength", "pattern", "maximum", "minimum", "format"]
        .iter()
        .any(|k| schema.get(k).is_some())
        || schema.get("x-kubernetes-int-or-string").is_some();
    if bounded && !path.is_empty() {
        out.push((path.to_vec(), schema.clone()));
    }
    for (name, sub) in schema["properties"].as_object().into_iter().flatten() {
        let mut next = path.to_vec();
        next.push(name.clone());
        bounded_fields(sub, &next, out);
    }
    if schema.get("items").is_some() {
        let mut next = path.to_vec();
        next.push("[]".into());
        bounded_fields(&schema["items"], &next, out);
    }
}

/// The boundary values the schema accepts for a field with this schema.
fn boundary_values(schema: &serde_json::Value) -> Vec<serde_json::Value> {
    use serde_json::json;
    let mut values = Vec::new();
    let int_or_string = schema.get("x-kubernetes-int-or-string").is_some();
    // Structural anyOf members carry no type: the integer one has the bounds, the string one a length.
    let integer_schema = if int_or_string {
        schema["anyOf"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m.get("maximum").is_some()))
            .cloned()
    } else if schema["type"] == "integer" {
        Some(schema.clone())
    } else {
        None
    };
    if let Some(int) = integer_schema {
        let max = int["maximum"].as_f64().map_or(i64::MAX, |m| m as i64);
        let min = int["minimum"].as_f64().map_or(i64::MIN, |m| m as i64);
        values.extend([json!(max), json!(min)]);
    }
    let string_schema = if int_or_string {
        schema["anyOf"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m.get("maxLength").is_some()))
            .cloned()
    } else if schema["type"] == "string" {
        Some(schema.clone())
    } else {
        None
    };
    if let Some(string) = string_schema {
        let max = string["maxLength"].as_u64().unwrap_or(1024) as usize;
        if string["pattern"] == horolog::api::DURATION_PATTERN {
            values.extend([
                json!(format!("{}w", "9".repeat(max - 1))),
                json!(format!("{}ms", "9".repeat(max - 2))),
                json!("1w".repeat(max / 2)),
                json!("36600d"),
            ]);
        } else if string["format"] == "date-time" {
            values.extend([json!("9999-12-31T23:59:59Z"), json!("0000-01-01T00:00:00Z")]);
        } else if let Some(choices) = string["enum"].as_array() {
            values.extend(choices.iter().cloned());
        } else {
            values.extend([
                json!("9".repeat(max)),
                json!("a".repeat(max)),
                json!("*/".repeat(max / 2)),
            ]);
        }
    }
    values
}

/// A minimal valid object of each kind.
fn minimal(kind: &str) -> serde_json::Value {
    let template = serde_json::json!({"spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    let spec = match kind {
        "Schedule" => {
            serde_json::json!({"trigger": {"interval": "1m"}, "jobTemplate": {"spec": {"template": template}}})
        }
        "JobRun" => serde_json::json!({"template": template}),
        "Task" => serde_json::json!({"jobTemplate": {"spec": {"template": template}}}),
        "Calendar" => serde_json::json!({}),
        _ => {
            serde_json::json!({"scheduleName": "s", "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})
        }
    };
    serde_json::json!({"apiVersion": "horolog.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})
}

/// `object` with `value` at `path` (`[]` = the first item), creating what is missing.
fn set(object: &mut serde_json::Value, path: &[String], value: serde_json::Value) {
    let Some((step, rest)) = path.split_first() else {
        *object = value;
        return;
    };
    let child = if step == "[]" {
        if !object.is_array() || object.as_array().is_some_and(Vec::is_empty) {
            *object = serde_json::json!([{}]);
        }
        &mut object[0]
    } else {
        if !object.is_object() {
            *object = serde_json::json!({});
        }
        object
            .as_object_mut()
            .unwrap()
            .entry(step.clone())
            .or_insert(serde_json::json!({}))
    };
    set(child, rest, value);
}

/// Adds, with a plain sample value, every property the schema requires that `object` lacks
/// (the walk above sets one field; a list item it creates needs its other required fields, as
/// the API server would insist).
fn fill_required(object: &mut serde_json::Value, schema: &serde_json::Value) {
    fn sample(schema: &serde_json::Value) -> serde_json::Value {
        use serde_json::json;
        match schema["type"].as_str() {
            Some("integer") | Some("number") if !schema["minimum"].is_null() => schema["minimum"].clone(),
            Some("integer") | Some("number") => json!(1),
            Some("boolean") => json!(false),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ if schema["format"] == "date-time" => json!("2026-01-01T00:00:00Z"),
            _ => json!("2026-01-01T00:00:00"),
        }
    }
    match object {
        serde_json::Value::Object(map) => {
            if let Some(required) = schema["required"].as_array() {
                for name in required.iter().filter_map(|n| n.as_str()) {
                    if !map.contains_key(name) {
                        map.insert(name.to_owned(), sample(&schema["properties"][name]));
                    }
                }
            }
            for (key, value) in map.iter_mut() {
                let child = &schema["properties"][key.as_str()];
                if !child.is_null() {
                    fill_required(value, child);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                fill_required(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

#[test]
fn every_boundary_value_the_schema_accepts_decodes_and_validates_without_panic() {
    use horolog::manifest::parse_manifests;
    let mut checked = 0;
    for (file, _) in crd_files().unwrap() {
        let schema = schema_of(&file);
        let kind = match file.split('.').next() {
            Some("schedules") => "Schedule",
            Some("jobruns") => "JobRun",
            Some("tasks") => "Task",
            Some("calendars") => "Calendar",
            _ => "Backfill",
        };
        let mut fields = Vec::new();
        bounded_fields(&schema, &[], &mut fields);
        assert!(!fields.is_empty(), "{file}");
        for (path, field_schema) in fields {
            for value in boundary_values(&field_schema) {
                let mut object = minimal(kind);
                // A trigger kind replaces the minimal interval, so the engine compiles it
                // (two kinds would stop at the exactly-one check).
                const KINDS: [&str; 7] = [
                    "cron",
                    "cronFields",
                    "interval",
                    "date",
                    "calendarInterval",
                    "anyOf",
                    "allOf",
                ];
                if path.len() > 2 && path[1] == "trigger" && KINDS.contains(&path[2].as_str()) {
                    object["spec"]["trigger"] = serde_json::json!({});
                }
                set(&mut object, &path, value.clone());
                fill_required(&mut object, &schema);
                let text = serde_json::to_string(&object).unwrap();
                let outcome = std::panic::catch_unwind(|| {
                    let manifests = parse_manifests(&text, "boundary.json");
                    let decoded = manifests.as_ref().map(|_| ()).map_err(|e| e.to_string());
                    let messages = decoded.as_ref().ok().map(|_| rust_messages(&text));
                    (decoded, messages)
                });
                let where_ = format!("{kind} {}: {value}", path.join("."));
                let (decoded, _) = outcome.unwrap_or_else(|_| panic!("{where_}: panicked"));
                // What the schema accepts, the operator's types read; the checks after that
                // may refuse it (a 36600d interval, a year-9999 date), but cleanly.
                // The one clean refusal at decoding: a duration beyond the documented maximum,
                // with an error that names the value.
                if let Err(e) = decoded {
                    let named = value.as_str().is_some_and(|v| e.contains(&format!("{v:?}")));
                    assert!(
                        named && e.contains("longer than 100 years"),
                        "{where_}: the schema accepts it but the operator cannot read it: {e}"
                    );
                }
                checked += 1;
                if std::env::var_os("HOROLOG_SHOW_BOUNDARIES").is_some() {
                    println!("{where_}");
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} boundary values");
}

/// `kubectl explain` reads the embedded pod template down to `containers.command`, with
/// Kubernetes' own descriptions, in every kind that embeds one.
#[test]
fn the_pod_template_is_typed_and_explained_down_to_the_command() {
    for (file, template) in [
        (
            "schedules.horolog.dev.yaml",
            "/properties/spec/properties/jobTemplate/properties/spec/properties/template",
        ),
        ("jobruns.horolog.dev.yaml", "/properties/spec/properties/template"),
        (
            "tasks.horolog.dev.yaml",
            "/properties/spec/properties/jobTemplate/properties/spec/properties/template",
        ),
    ] {
        let schema = schema_of(file);
        let template = schema
            .pointer(template)
            .unwrap_or_else(|| panic!("{file}: no template"));
        assert!(
            template.get("x-kubernetes-preserve-unknown-fields").is_none(),
            "{file}: the pod template is free-form"
        );
        let container = &template["properties"]["spec"]["properties"]["containers"]["items"];
        let command = &container["properties"]["command"];
        assert_eq!(command["type"], "array", "{file}");
        assert_eq!(command["items"]["type"], "string", "{file}");
        assert!(
            command["description"]
                .as_str()
                .is_some_and(|d| d.contains("Not executed within a shell")),
            "{file}: {command}"
        );
        assert_eq!(
            container["required"],
            serde_json::json!(["image", "name"]),
            "{file}"
        );
        assert!(
            template["properties"]["spec"]["properties"]
                .get("ephemeralContainers")
                .is_none(),
            "{file}"
        );
    }
}
