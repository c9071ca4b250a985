//! Reading horolog objects (Schedules, JobRuns, Tasks, Backfills) from YAML manifests (`horolog preview`, local mode, tests),
//! with errors that name the document, the field path and the value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::api::{Backfill, JobRun, Schedule, Task};

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

/// Parses every YAML document of `text`. `source` names the file in errors.
pub fn parse_manifests(text: &str, source: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let location = format!("{source}: document {}", index + 1);
        let value =
            <serde_yaml::Value as serde::Deserialize>::deserialize(document).map_err(|e| ManifestError {
                location: location.clone(),
                path: String::new(),
                message: e.to_string(),
            })?;
        if value.is_null() {
            continue; // an empty document, e.g. after a trailing `---`
        }
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind, name) = (field("apiVersion"), field("kind"), {
            value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string()
        });
        let location = if name.is_empty() {
            location
        } else {
            format!("{location} ({kind} {name})")
        };
        let manifest = match (api_version.split('/').next(), kind.as_str()) {
            (Some("horolog.dev"), "Schedule") => Manifest::Schedule(Box::new(typed(value, &location)?)),
            (Some("horolog.dev"), "JobRun") => Manifest::JobRun(Box::new(typed(value, &location)?)),
            (Some("horolog.dev"), "Task") => Manifest::Task(Box::new(typed(value, &location)?)),
            (Some("horolog.dev"), "Backfill") => Manifest::Backfill(Box::new(typed(value, &location)?)),
            _ => Manifest::Other { api_version, kind },
        };
        out.push(manifest);
    }
    Ok(out)
}

/// Reads a manifest file, or every `.yaml`/`.yml` file of a directory (sorted by name).
pub fn read_manifests(path: &Path) -> Result<Vec<Manifest>, ManifestError> {
    let files = manifest_files(path)?;
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            location: file.display().to_string(),
            path: String::new(),
            message: e.to_string(),
        })?;
        out.extend(parse_manifests(&text, &file.display().to_string())?);
    }
    Ok(out)
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

fn typed<T: DeserializeOwned>(value: serde_yaml::Value, location: &str) -> Result<T, ManifestError> {
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
    fn broken_yaml_is_an_error_and_never_a_panic() {
        for text in [
            "kind: Schedule\n  bad: [indent",
            "{",
            "apiVersion: horolog.dev/v1alpha1\nkind: Schedule\nspec: 7",
        ] {
            assert!(parse_manifests(text, "x.yaml").is_err(), "{text}");
        }
    }
}
