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
    assert_eq!(files.len(), 4, "{files:?}");
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
