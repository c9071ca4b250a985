//! Reading horolog objects (Schedules, JobRuns, Tasks, Backfills, Calendars) from YAML manifests
//! (`horolog preview`, local mode, `kubectl horolog lint`, tests), with errors that name the
//! document, the field path and the value. A `kind: List` document (`kubectl get hs -o yaml`)
//! stands for its items.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::api::{Backfill, Calendar, JobRun, Schedule, Task};

/// One object of a manifest file.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A `horolog.dev` Schedule.
    Schedule(Box<Schedule>),
    /// A `horolog.dev` JobRun.
    JobRun(Box<JobRun>),
    /// A `horolog.dev` Task.
    Task(Box<Task>),
    /// A `horolog.dev` Backfill.
    Backfill(Box<Backfill>),
    /// A `horolog.dev` Calendar.
    Calendar(Box<Calendar>),
    /// Anything else (kept by kind, ignored by horolog).
    Other {
        /// `apiVersion` of the document.
        api_version: String,
        /// `kind` of the document.
        kind: String,
    },
}

/// A manifest that could not be read.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// Which file (if any) and which document in it.
    pub location: String,
    /// The field path inside the document, e.g. `spec.trigger.interval` (empty for the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: {}: {}", self.location, self.path, self.message)
        }
    }
}

/// One YAML document of a manifest source (or one item of a `kind: List` document, as
/// `kubectl get -o yaml` prints several objects), before it is read into a type.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from (`<stdin>` for standard input).
    pub source: String,
    /// Where in the file: `document 2`, or `document 1, item 3` inside a List.
    pub place: String,
    /// `apiVersion`, empty when absent.
    pub api_version: String,
    /// `kind`, empty when absent.
    pub kind: String,
    /// `metadata.name`, empty when absent.
    pub name: String,
    /// The document itself.
    pub value: serde_yaml::Value,
}

impl Document {
    /// File and place, e.g. `a.yaml: document 2`.
    pub fn location(&self) -> String {
        format!("{}: {}", self.source, self.place)
    }

    /// True when `apiVersion` is in the `horolog.dev` group.
    pub fn is_horolog(&self) -> bool {
        self.api_version.split('/').next() == Some("horolog.dev")
    }
}

/// Every document of `text`, with the items of `kind: List` documents (and of typed lists
/// such as `ScheduleList`) in place of the list. A document that is not YAML is an error in
/// its place, and the last: the YAML parser cannot go on after it.
pub fn documents(text: &str, source: &str) -> Vec<Result<Document, ManifestError>> {
    let mut out = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let place = format!("document {}", index + 1);
        match <serde_yaml::Value as serde::Deserialize>::deserialize(document) {
            Err(e) => {
                out.push(Err(ManifestError {
                    location: format!("{source}: {place}"),
                    path: String::new(),
                    message: e.to_string(),
                }));
                // The parser cannot find where the next document starts after a syntax
                // error (it would yield the same error again and again).
                break;
            }
            // An empty document, e.g. after a trailing `---`.
            Ok(value) if value.is_null() => {}
            Ok(value) => match list_items(&value) {
                Some((api_version, item_kind, items)) => {
                    for (i, mut item) in items.into_iter().enumerate() {
                        // Items of a typed list (ScheduleList) may leave out apiVersion and kind.
                        if let (Some(kind), Some(map)) = (&item_kind, item.as_mapping_mut()) {
                            map.entry("apiVersion".into())
                                .or_insert_with(|| api_version.clone().into());
                            map.entry("kind".into()).or_insert_with(|| kind.clone().into());
                        }
                        out.push(Ok(document_of(item, source, format!("{place}, item {}", i + 1))));
                    }
                }
                None => out.push(Ok(document_of(value, source, place))),
            },
        }
    }
    out
}

/// The items of a list document: its apiVersion, the kind of its items when the list is
/// typed (`ScheduleList` holds `Schedule`s), and the items.
fn list_items(value: &serde_yaml::Value) -> Option<(String, Option<String>, Vec<serde_yaml::Value>)> {
    let kind = value.get("kind")?.as_str()?;
    let items = value.get("items")?.as_sequence()?;
    let item_kind = kind.strip_suffix("List")?;
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let item_kind = (!item_kind.is_empty()).then(|| item_kind.to_string());
    Some((api_version, item_kind, items.clone()))
}

fn document_of(value: serde_yaml::Value, source: &str, place: String) -> Document {
    let text = |v: Option<&serde_yaml::Value>| v.and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Document {
        source: source.to_string(),
        place,
        api_version: text(value.get("apiVersion")),
        kind: text(value.get("kind")),
        name: text(value.get("metadata").and_then(|m| m.get("name"))),
        value,
    }
}

/// Parses every YAML document of `text` (unpacking `kind: List`). `source` names the file in
/// errors.
pub fn parse_manifests(text: &str, source: &str) -> Result<Vec<Manifest>, ManifestError> {
    documents(text, source)
        .into_iter()
        .map(|document| document.and_then(manifest_of))
        .collect()
}

/// The typed object of one document. A horolog object is first checked against its CRD
/// schema as the API server checks it with `fieldValidation=Strict` (what `kubectl apply`
/// sends): an unknown field (`comand`, `calendarRef`) or a value of the wrong type (a string
/// `command`) is an error naming the field, not a field silently dropped.
fn manifest_of(document: Document) -> Result<Manifest, ManifestError> {
    let location = if document.name.is_empty() {
        document.location()
    } else {
        format!("{} ({} {})", document.location(), document.kind, document.name)
    };
    let checked = |document: Document| -> Result<serde_json::Value, ManifestError> {
        let mut value = serde_json::to_value(&document.value).map_err(|e| ManifestError {
            location: location.clone(),
            path: String::new(),
            message: e.to_string(),
        })?;
        let problems = crate::api::schema_check::check_object(&document.kind, &mut value);
        match problems.first() {
            None => Ok(value),
            Some(first) => {
                let more = match problems.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more; `kubectl horolog lint` lists every one)"),
                };
                Err(ManifestError {
                    location: location.clone(),
                    path: first.field.clone(),
                    message: format!("{}: {}{more}", first.value, first.message),
                })
            }
        }
    };
    Ok(match (document.is_horolog(), document.kind.as_str()) {
        (true, "Schedule") => Manifest::Schedule(Box::new(typed(checked(document)?, &location)?)),
        (true, "JobRun") => Manifest::JobRun(Box::new(typed(checked(document)?, &location)?)),
        (true, "Task") => Manifest::Task(Box::new(typed(checked(document)?, &location)?)),
        (true, "Backfill") => Manifest::Backfill(Box::new(typed(checked(document)?, &location)?)),
        (true, "Calendar") => Manifest::Calendar(Box::new(typed(checked(document)?, &location)?)),
        _ => Manifest::Other {
            api_version: document.api_version,
            kind: document.kind,
        },
    })
}

/// Reads a manifest file, every `.yaml`/`.yml` file of a directory (sorted by name), or
/// standard input for `-`.
pub fn read_manifests(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
    read_manifests_from(path, &mut std::io::stdin().lock())
}

/// [`read_manifests`], with `stdin` read for `-`.
pub fn read_manifests_from(path: &Path, stdin: &mut dyn Read) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for (source, text) in read_sources(path, stdin)? {
        out.extend(parse_manifests(&text, &source)?);
    }
    Ok(out)
}

/// The name shown for standard input in messages.
pub const STDIN: &str = "<stdin>";

/// The text of a manifest file, of every `.yaml`/`.yml` file of a directory (sorted by name),
/// or of `stdin` for `-`; each with the name messages show for it.
pub fn read_sources(path: &Path, stdin: &mut dyn Read) -> Result<Vec<(String, String)>, ManifestError> {
    if path == Path::new("-") {
        let mut text = String::new();
        stdin.read_to_string(&mut text).map_err(|e| ManifestError {
            location: STDIN.to_string(),
            path: String::new(),
            message: e.to_string(),
        })?;
        return Ok(vec![(STDIN.to_string(), text)]);
    }
    manifest_files(path)?
        .into_iter()
        .map(|file| {
            let source = file.display().to_string();
            std::fs::read_to_string(&file)
                .map(|text| (source.clone(), text))
                .map_err(|e| ManifestError {
                    location: source,
                    path: String::new(),
                    message: e.to_string(),
                })
        })
        .collect()
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let io_error = |e: std::io::Error| ManifestError {
        location: path.display().to_string(),
        path: String::new(),
        message: e.to_string(),
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

fn typed<T: DeserializeOwned>(value: serde_json::Value, location: &str) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| ManifestError {
        location: location.to_string(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {name: every-minute}
spec:
  trigger: {cron: "* * * * *"}
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: main, image: busybox}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
"#;

    #[test]
    fn reads_schedules_and_keeps_other_kinds_apart() {
        let docs = parse_manifests(GOOD, "good.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(
            matches!(&docs[0], Manifest::Schedule(s) if s.spec.trigger.cron.as_deref() == Some("* * * * *"))
        );
        assert!(matches!(&docs[1], Manifest::Other { kind, .. } if kind == "ConfigMap"));
    }

    #[test]
    fn reads_backfills_and_tasks() {
        let text = r#"
apiVersion: horolog.dev/v1alpha1
kind: Backfill
metadata: {name: january}
spec: {scheduleName: every-minute, from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", dryRun: true}
---
apiVersion: horolog.dev/v1alpha1
kind: Task
metadata: {name: report}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: main, image: busybox}]
"#;
        let docs = parse_manifests(text, "more.yaml").unwrap();
        assert!(
            matches!(&docs[0], Manifest::Backfill(b) if b.spec.dry_run && b.spec.schedule_name == "every-minute")
        );
        assert!(matches!(&docs[1], Manifest::Task(t) if t.metadata.name.as_deref() == Some("report")));
    }

    #[test]
    fn a_bad_duration_names_the_field_path_and_the_value() {
        let text = GOOD.replace(r#"{cron: "* * * * *"}"#, r#"{interval: "5x"}"#);
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert_eq!(err.path, "spec.trigger.interval");
        let shown = err.to_string();
        assert!(
            shown.contains("bad.yaml: document 1 (Schedule every-minute)"),
            "{shown}"
        );
        assert!(shown.contains("\"5x\""), "{shown}");
    }

    #[test]
    fn an_unknown_enum_value_names_the_field_and_the_value() {
        let text = GOOD.replace("  jobTemplate:", "  coalesce: Sometimes\n  jobTemplate:");
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert_eq!(err.path, "spec.coalesce");
        assert!(err.message.contains("Sometimes"), "{err}");
    }

    #[test]
    fn an_unknown_trigger_field_is_an_error_not_ignored() {
        let text = GOOD.replace(r#"{cron: "* * * * *"}"#, r#"{cron: "* * * * *", timezon: UTC}"#);
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert!(err.message.contains("timezon"), "{err}");
    }

    #[test]
    fn a_field_the_crd_does_not_declare_is_refused_with_its_path() {
        // serde would drop `comand` silently and the run would execute the image's default
        // entrypoint; the API server (fieldValidation=Strict) refuses it, and so do we.
        let text = GOOD.replace(
            "{name: main, image: busybox}",
            "{name: main, image: busybox, comand: [sh]}",
        );
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert_eq!(
            err.path,
            "spec.jobTemplate.spec.template.spec.containers[0].comand"
        );
        assert!(err.message.contains("did you mean command?"), "{err}");
        let text = GOOD.replace("  jobTemplate:", "  calendarRef: x\n  jobTemplate:");
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert_eq!(err.path, "spec.calendarRef");
    }

    #[test]
    fn a_string_command_is_refused_not_read_as_a_list() {
        let text = GOOD.replace(
            "{name: main, image: busybox}",
            "{name: main, image: busybox, command: echo hi}",
        );
        let err = parse_manifests(&text, "bad.yaml").unwrap_err();
        assert_eq!(
            err.path,
            "spec.jobTemplate.spec.template.spec.containers[0].command"
        );
        assert!(err.message.contains("must be of type array"), "{err}");
    }

    #[test]
    fn broken_yaml_is_an_error_and_never_a_panic() {
        for text in [
            "kind: Schedule\n  bad: [indent",
            "{",
            "apiVersion: horolog.dev/v1alpha1\nkind: Schedule\nspec: 7",
        ] {
            assert!(parse_manifests(text, "x.yaml").is_err(), "{text}");
        }
    }

    #[test]
    fn a_list_document_stands_for_its_items() {
        // What `kubectl get hs -o yaml` prints.
        let list = r#"
apiVersion: v1
kind: List
items:
- apiVersion: horolog.dev/v1alpha1
  kind: Schedule
  metadata: {name: every-minute, namespace: default, resourceVersion: "7"}
  spec:
    trigger: {cron: "* * * * *"}
    taskRef: {name: report}
  status: {firedCount: 3}
metadata: {resourceVersion: ""}
"#;
        let docs = parse_manifests(list, "list.yaml").unwrap();
        assert_eq!(docs.len(), 1);
        assert!(
            matches!(&docs[0], Manifest::Schedule(s) if s.metadata.name.as_deref() == Some("every-minute"))
        );
        let places: Vec<String> = documents(list, "list.yaml")
            .into_iter()
            .map(|d| d.unwrap().location())
            .collect();
        assert_eq!(places, ["list.yaml: document 1, item 1"]);
    }

    #[test]
    fn items_of_a_typed_list_get_its_kind_when_they_leave_it_out() {
        let text = "apiVersion: horolog.dev/v1alpha1\nkind: ScheduleList\nitems:\n- metadata: {name: a}\n  spec:\n    trigger: {interval: 1m}\n    taskRef: {name: t}\n";
        let docs = parse_manifests(text, "list.yaml").unwrap();
        assert!(matches!(&docs[0], Manifest::Schedule(s) if s.metadata.name.as_deref() == Some("a")));
    }

    #[test]
    fn a_dash_reads_standard_input() {
        let mut stdin = GOOD.as_bytes();
        let docs = read_manifests_from(Path::new("-"), &mut stdin).unwrap();
        assert_eq!(docs.len(), 2);
        let mut stdin = "kind: [".as_bytes();
        let err = read_manifests_from(Path::new("-"), &mut stdin).unwrap_err();
        assert!(err.to_string().starts_with("<stdin>: document 1"), "{err}");
    }
}
