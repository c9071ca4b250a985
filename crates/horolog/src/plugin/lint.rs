//! `lint -f FILE|DIR|-`: every problem the API server (schema, CEL rules, unknown fields) and
//! the operator (trigger expressions, time zones, durations) would find in horolog manifests,
//! offline, one line each.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use horolog_core::trigger::Trigger;
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::Outcome;
use crate::api::{Backfill, Calendar, END_AFTER_START_MESSAGE, FieldError, JobRun, Schedule, Task};
use crate::manifest::{Document, documents, read_sources};

/// The version every horolog.dev kind is served at.
const VERSION: &str = "v1alpha1";
/// Fields of every object that CRD schemas do not list.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];
/// Values longer than this are cut in problem lines.
const VALUE_WIDTH: usize = 60;

/// One problem: `FILE: KIND/NAME: FIELD: VALUE: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (`<stdin>` for standard input).
    pub source: String,
    /// `Kind/name`, or `document N` when the document cannot be read at all.
    pub object: String,
    /// The field path as users write it, e.g. `spec.trigger.cron`; empty for the document.
    pub field: String,
    /// The offending value as written (strings quoted), or `<absent>`.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}: {}", self.source, self.object, self.message)
        } else {
            write!(
                f,
                "{}: {}: {}: {}: {}",
                self.source, self.object, self.field, self.value, self.message
            )
        }
    }
}

/// Checks every horolog object in `files` (`-` reads `stdin`) and prints one line per
/// problem; exit code 1 if there is any, else prints `N objects, no problems` and exits 0.
/// Other kinds are skipped. Needs no cluster.
pub fn lint(files: &[PathBuf], stdin: &mut dyn Read, out: &mut dyn Write) -> Outcome {
    let now = Utc::now();
    let schemas = Schemas::new();
    let mut objects = 0;
    let mut problems = Vec::new();
    let mut calendars = std::collections::HashSet::new();
    let mut refs = Vec::new();
    for path in files {
        for (source, text) in read_sources(path, stdin)? {
            for document in documents(&text, &source) {
                match document {
                    Err(e) => problems.push(Problem {
                        object: e
                            .location
                            .strip_prefix(&format!("{source}: "))
                            .unwrap_or(&e.location)
                            .to_string(),
                        source: source.clone(),
                        field: String::new(),
                        value: String::new(),
                        message: e.message,
                    }),
                    Ok(document) if document.is_horolog() => {
                        objects += 1;
                        problems.extend(lint_document(&document, &schemas, now));
                        if document.kind == "Calendar" {
                            calendars.insert(document.name.clone());
                        }
                        refs.extend(calendar_refs(&document));
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    // A Schedule, Task or Calendar that names a Calendar the files do not hold would not fire.
    problems.extend(
        refs.into_iter()
            .filter(|(_, name)| !calendars.contains(&name.value))
            .map(|(mut problem, name)| {
                problem.message = format!(
                    "no Calendar {:?} in the files linted: a Schedule using it is Ready=False (CalendarNotFound) and fires nothing until it exists",
                    name.value
                );
                problem
            }),
    );
    for problem in &problems {
        writeln!(out, "{problem}")?;
    }
    if problems.is_empty() {
        let noun = if objects == 1 { "object" } else { "objects" };
        writeln!(out, "{objects} {noun}, no problems")?;
        Ok(0)
    } else {
        Ok(1)
    }
}

/// The OpenAPI schema of each horolog kind, from the CRDs the operator installs.
struct Schemas(Vec<(String, Json)>);

impl Schemas {
    fn new() -> Schemas {
        Schemas(
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
                .collect(),
        )
    }

    fn of(&self, kind: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == kind).map(|(_, schema)| schema)
    }

    fn kinds(&self) -> Vec<&str> {
        self.0.iter().map(|(kind, _)| kind.as_str()).collect()
    }
}

/// Every problem of one horolog.dev document.
fn lint_document(document: &Document, schemas: &Schemas, now: DateTime<Utc>) -> Vec<Problem> {
    let name = if document.name.is_empty() {
        format!("({})", document.place)
    } else {
        document.name.clone()
    };
    let kind = if document.kind.is_empty() {
        "?"
    } else {
        &document.kind
    };
    let mut found = Found {
        source: document.source.clone(),
        object: format!("{kind}/{name}"),
        problems: Vec::new(),
    };
    let version = document.api_version.split_once('/').map(|(_, v)| v);
    if version != Some(VERSION) {
        found.push(
            "apiVersion",
            render(&Json::String(document.api_version.clone())),
            &format!("horolog.dev serves {VERSION}: write apiVersion: horolog.dev/{VERSION}"),
        );
    }
    let Some(schema) = schemas.of(&document.kind) else {
        found.push(
            "kind",
            render(&Json::String(document.kind.clone())),
            &format!("not a horolog.dev kind ({})", schemas.kinds().join(", ")),
        );
        return found.problems;
    };
    let mut value = match serde_json::to_value(&document.value) {
        Ok(value) => value,
        Err(e) => {
            found.push("", String::new(), &e.to_string());
            return found.problems;
        }
    };
    // What the API server prunes (or refuses with --validate=strict), then the rest as it
    // would see it.
    prune(&mut value, schema, "", &mut found);
    check_metadata(&value, &mut found);
    match document.kind.as_str() {
        "Schedule" => {
            if let Some(schedule) = typed::<Schedule>(&value, &mut found) {
                found.extend_fields(&value, schedule.spec.problems());
                check_trigger(&schedule, &value, now, &mut found);
            }
        }
        "JobRun" => {
            if let Some(run) = typed::<JobRun>(&value, &mut found) {
                found.extend_fields(&value, run.spec.problems());
            }
        }
        "Task" => {
            if let Some(task) = typed::<Task>(&value, &mut found) {
                found.extend_fields(&value, task.spec.problems());
            }
        }
        "Backfill" => {
            if let Some(backfill) = typed::<Backfill>(&value, &mut found) {
                found.extend_fields(&value, backfill.spec.problems());
            }
        }
        "Calendar" => {
            if let Some(calendar) = typed::<Calendar>(&value, &mut found) {
                let def = crate::controller::calendar::def_of(&calendar);
                if let Err(e) =
                    horolog_core::exclusion::Exclusions::compile("", "spec", &def.spec, chrono_tz::Tz::UTC)
                {
                    let value = written(&value, &e.field).unwrap_or_else(|| format!("{:?}", e.value));
                    found.push(&e.field, value, &e.message);
                }
            }
        }
        _ => {}
    }
    found.problems
}

/// A name a document's `spec.calendarRefs` gives.
struct RefName {
    value: String,
}

/// Each `spec.calendarRefs[i].name` of a Schedule, Task or Calendar, with the problem line it
/// would make.
fn calendar_refs(document: &Document) -> Vec<(Problem, RefName)> {
    let Ok(value) = serde_json::to_value(&document.value) else {
        return Vec::new();
    };
    let Some(list) = lookup(&value, "spec.calendarRefs").and_then(Json::as_array) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let name = r.get("name")?.as_str()?.to_string();
            Some((
                Problem {
                    source: document.source.clone(),
                    object: format!("{}/{}", document.kind, document.name),
                    field: format!("spec.calendarRefs[{i}].name"),
                    value: render(&Json::String(name.clone())),
                    message: String::new(),
                },
                RefName { value: name },
            ))
        })
        .collect()
}

/// The problems of one object so far.
struct Found {
    source: String,
    object: String,
    problems: Vec<Problem>,
}

impl Found {
    fn push(&mut self, field: &str, value: String, message: &str) {
        self.problems.push(Problem {
            source: self.source.clone(),
            object: self.object.clone(),
            field: if field.is_empty() {
                "(document)".to_string()
            } else {
                field.to_string()
            },
            value,
            message: message.to_string(),
        });
    }

    /// The problems of `problems()`, each with the value as written in `document`.
    fn extend_fields(&mut self, document: &Json, problems: Vec<FieldError>) {
        for problem in problems {
            let value = written(document, &problem.field).unwrap_or(problem.value);
            self.push(&problem.field, value, &problem.message);
        }
    }
}

/// The value at `field` in `document`, rendered, when it is a plain value.
fn written(document: &Json, field: &str) -> Option<String> {
    lookup(document, field)
        .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
        .map(render)
}

/// Compiles the trigger as the operator does (cron syntax, time zones, the window).
fn check_trigger(schedule: &Schedule, document: &Json, now: DateTime<Utc>, found: &mut Found) {
    let trigger = &schedule.spec.trigger;
    let created = schedule.created_at().unwrap_or(now);
    match Trigger::compile(trigger, created) {
        Err(e) => {
            let field = format!("spec.{}", e.field);
            let value = written(document, &field).unwrap_or_else(|| format!("{:?}", e.value));
            found.push(&field, value, &e.message);
        }
        // The CEL rule wants endTime strictly after startTime; the engine takes equal ones.
        Ok(_) if trigger.start_time.is_some() && trigger.start_time == trigger.end_time => {
            let field = "spec.trigger.endTime";
            let value = written(document, field).unwrap_or_default();
            found.push(field, value, END_AFTER_START_MESSAGE);
        }
        Ok(_) => {}
    }
}

/// `metadata.name` is required (or generateName), and metadata has no unknown fields.
fn check_metadata(document: &Json, found: &mut Found) {
    let metadata = document.get("metadata").cloned().unwrap_or(Json::Null);
    let named = ["name", "generateName"].iter().any(|key| {
        metadata
            .get(key)
            .and_then(Json::as_str)
            .is_some_and(|s| !s.is_empty())
    });
    if !named {
        found.push("metadata.name", "<absent>".into(), "is required");
    }
    if metadata.is_object() {
        for (field, value) in dropped::<ObjectMeta>(&metadata, "metadata") {
            found.push(&field, render(&value), "unknown field");
        }
    }
}

/// Deserializes `document` into `T`, or records where and why it cannot.
fn typed<T: DeserializeOwned>(document: &Json, found: &mut Found) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(document) {
        Ok(object) => Some(object),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.inner().to_string();
            // serde says "missing field `trigger`"; users read "spec.trigger: <absent>: is required".
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            match missing {
                Some(field) => {
                    let field = join(&path, field);
                    found.push(&field, "<absent>".into(), "is required");
                }
                None => {
                    let value = lookup(document, &path).map(render).unwrap_or_default();
                    found.push(&path, value, &message);
                }
            }
            None
        }
    }
}

/// Removes the fields `schema` does not know from `value`, recording each, as the API server
/// prunes them. Where the schema keeps unknown fields (the embedded pod template and env),
/// the Kubernetes type's own fields are checked instead.
fn prune(value: &mut Json, schema: &Json, path: &str, found: &mut Found) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true)) {
        let dropped = match path.rsplit('.').next().unwrap_or_default() {
            "template" => dropped::<PodTemplateSpec>(value, path),
            last if last.starts_with("env[") => dropped::<EnvVar>(value, path),
            _ => Vec::new(),
        };
        for (field, value) in dropped {
            found.push(&field, render(&value), "unknown field");
        }
        return;
    }
    match value {
        Json::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Json::as_object) {
                let unknown: Vec<String> = map
                    .keys()
                    .filter(|key| !properties.contains_key(*key))
                    // The CRD schema leaves out what every object has.
                    .filter(|key| !(path.is_empty() && ROOT_FIELDS.contains(&key.as_str())))
                    .cloned()
                    .collect();
                for key in unknown {
                    let removed = map.remove(&key).unwrap_or(Json::Null);
                    let message = match closest_field(&key, properties.keys()) {
                        Some(close) => format!("unknown field; did you mean {close}?"),
                        None => "unknown field".to_string(),
                    };
                    found.push(&join(path, &key), render(&removed), &message);
                }
                for (key, child) in map.iter_mut() {
                    if let Some(child_schema) = properties.get(key) {
                        prune(child, child_schema, &join(path, key), found);
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (key, child) in map.iter_mut() {
                    prune(child, values, &join(path, key), found);
                }
            }
        }
        Json::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, item_schema, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// The field among `known` that `key` is most likely a slip for: first one that `key` leaves
/// letters out of, then one that `key` adds letters to, then one within 3 edits.
fn closest_field<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
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

/// The value at a path such as `spec.jobTemplate.spec.template.spec.containers[0].image`.
fn lookup<'a>(value: &'a Json, path: &str) -> Option<&'a Json> {
    let mut current = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            current = match current {
                Json::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => current.get(key)?,
            };
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

/// A value as compact JSON (strings quoted), cut to a readable length.
fn render(value: &Json) -> String {
    let text = value.to_string();
    if text.chars().count() > VALUE_WIDTH {
        let cut: String = text.chars().take(VALUE_WIDTH - 3).collect();
        format!("{cut}...")
    } else {
        text
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

    #[test]
    fn calendars_are_linted_and_an_unknown_calendar_is_named() {
        let manifests = r#"
apiVersion: horolog.dev/v1alpha1
kind: Calendar
metadata: {name: holidays}
spec:
  days: ["2027-01-01", "2027-02-30"]
  recurring: [{dayOfWeek: "funday"}]
---
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {name: s}
spec:
  trigger: {cron: "0 6 * * *"}
  calendarRefs: [{name: holidays}, {name: nyse-2072}]
  jobTemplate: {spec: {template: {spec: {containers: [{name: m, image: busybox}]}}}}
"#;
        let mut out = Vec::new();
        let code = lint(&[PathBuf::from("-")], &mut manifests.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("Calendar/holidays: spec.days[1]: \"2027-02-30\""),
            "{out}"
        );
        assert!(
            out.contains("Schedule/s: spec.calendarRefs[1].name: \"nyse-2072\": no Calendar"),
            "{out}"
        );
        assert!(!out.contains("calendarRefs[0]"), "{out}");
    }

    #[test]
    fn lookup_follows_keys_and_indexes() {
        let doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(lookup(&doc, "spec.containers[1].name"), Some(&json!("b")));
        assert_eq!(lookup(&doc, "spec.containers.0.name"), Some(&json!("a")));
        assert_eq!(lookup(&doc, "spec.nothing"), None);
        assert_eq!(lookup(&doc, ""), Some(&doc));
    }

    #[test]
    fn a_kubernetes_type_drops_only_what_it_does_not_know() {
        let template = json!({
            "metadata": {"labels": {"a": "b"}, "creationTimestamp": null},
            "spec": {"containers": [{"name": "main", "image": "busybox", "comand": ["sh"],
                "resources": {"limits": {"cpu": 1}}, "ports": [{"containerPort": 80}]}],
                "restartPolicy": "Never", "nodeSelectr": {}}
        });
        let dropped = dropped::<PodTemplateSpec>(&template, "template");
        let fields: Vec<&str> = dropped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["template.spec.containers[0].comand", "template.spec.nodeSelectr"]
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
    fn long_values_are_cut() {
        let long = Json::String("x".repeat(100));
        assert_eq!(render(&long).chars().count(), VALUE_WIDTH);
        assert!(render(&long).ends_with("..."));
    }
}
