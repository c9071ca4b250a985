//! `lint -f FILE|DIR|-`: every problem the API server (schema, CEL rules, unknown fields) and
//! the operator (trigger expressions, time zones, durations) would find in horolog manifests,
//! offline, one line each.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::Outcome;
use horolog::api::schema_check::{check_object, schema_of};
use horolog::api::{Backfill, Calendar, FieldError, JobRun, Schedule, Task, Validate};
use horolog::manifest::{Document, documents, read_sources};

/// The version every horolog.dev kind is served at.
const VERSION: &str = "v1alpha1";
/// The horolog kinds, as `kind` is written.
const KINDS: [&str; 5] = ["Schedule", "JobRun", "Task", "Backfill", "Calendar"];
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
                        problems.extend(lint_document(&document, now));
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

/// Every problem of one horolog.dev document.
fn lint_document(document: &Document, now: DateTime<Utc>) -> Vec<Problem> {
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
    if schema_of(&document.kind).is_none() {
        found.push(
            "kind",
            render(&Json::String(document.kind.clone())),
            &format!("not a horolog.dev kind ({})", KINDS.join(", ")),
        );
        return found.problems;
    }
    let mut value = match serde_json::to_value(&document.value) {
        Ok(value) => value,
        Err(e) => {
            found.push("", String::new(), &e.to_string());
            return found.problems;
        }
    };
    // What the API server prunes (or refuses with --validate=strict) and the values of the
    // wrong type, then the rest as it would see it.
    let schema_problems = check_object(&document.kind, &mut value);
    let mistyped = schema_problems.iter().any(|p| p.mistyped);
    for problem in schema_problems {
        found.push(&problem.field, render(&problem.value), &problem.message);
    }
    check_metadata(&value, &mut found);
    if mistyped {
        // The API server stops at a value of the wrong type; decoding it would say it again.
        return found.problems;
    }
    match document.kind.as_str() {
        "Schedule" => validated::<Schedule>(&value, now, &mut found),
        "JobRun" => validated::<JobRun>(&value, now, &mut found),
        "Task" => validated::<Task>(&value, now, &mut found),
        "Backfill" => validated::<Backfill>(&value, now, &mut found),
        "Calendar" => validated::<Calendar>(&value, now, &mut found),
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

/// Decodes `value` as `K` and records every problem [`Validate::problems`] finds.
fn validated<K: DeserializeOwned + Validate>(value: &Json, now: DateTime<Utc>, found: &mut Found) {
    if let Some(object) = typed::<K>(value, found) {
        found.extend_fields(value, object.problems(now));
    }
}

/// `metadata.name` is required (or generateName); unknown metadata fields are
/// `check_object`'s.
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
    fn long_values_are_cut() {
        let long = Json::String("x".repeat(100));
        assert_eq!(render(&long).chars().count(), VALUE_WIDTH);
        assert!(render(&long).ends_with("..."));
    }
}
