//! The live table of local mode: one line per JobRun phase change, as `kubectl get jobruns -w`
//! prints them, plus a line when a Schedule stops being Ready (a bad trigger would otherwise
//! fail silently: nothing fires).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use horolog::api::{Condition, JobRun, Schedule, find_condition};
use horolog_memserver::{ApiServer, Change, ChangeKind};

/// The table's header line.
pub const HEADER: &str = "NAME                                 SCHEDULE             PHASE      FIRE TIME            DURATION  EXIT  RESULT";

/// The longest RESULT shown; the whole value is in the JobRun's status.
const RESULT_WIDTH: usize = 60;

/// One table row for `run` (without newline).
pub fn row(run: &JobRun) -> String {
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    let fire_time = run.fire_time();
    let fire_time = if fire_time == chrono::DateTime::<chrono::Utc>::MIN_UTC {
        String::new()
    } else {
        fire_time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    // A run that ended without a result says why instead (DeadlineExceeded, CommandRequired...).
    let result = match (&status.result, phase.is_finished()) {
        (Some(result), _) => result.clone(),
        (None, true) if phase != horolog::api::JobRunPhase::Succeeded => {
            match (&status.reason, &status.message) {
                (Some(reason), Some(message)) => format!("{reason}: {message}"),
                (Some(reason), None) => reason.clone(),
                (None, Some(message)) => message.clone(),
                (None, None) => String::new(),
            }
        }
        _ => String::new(),
    };
    format!(
        "{:<36} {:<20} {:<10} {:<20} {:<9} {:<5} {}",
        run.metadata.name.as_deref().unwrap_or_default(),
        run.spec.schedule_name.as_deref().unwrap_or("<none>"),
        phase.as_str(),
        fire_time,
        status.duration.unwrap_or_default(),
        status.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        one_line(&result, RESULT_WIDTH),
    )
    .trim_end()
    .to_string()
}

/// `text` on one line, cut to `max` characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Writes table lines to `out` as JobRuns change. Remembers the phase it printed last for each
/// run, so it prints phase changes only, whatever else a write changed.
pub struct Table<W: Write> {
    out: W,
    printed: HashMap<(String, String), String>,
    not_ready: HashMap<(String, String), String>,
}

impl<W: Write> Table<W> {
    /// A table writing to `out`; prints the header.
    pub fn new(mut out: W) -> Self {
        // Output errors (a closed pipe) must not stop the scheduler; the same below.
        let _ = writeln!(out, "{HEADER}");
        let _ = out.flush();
        Table {
            out,
            printed: HashMap::new(),
            not_ready: HashMap::new(),
        }
    }

    /// Prints what is new in `object` (a JobRun or a Schedule as JSON).
    pub fn show(&mut self, object: &Value) {
        let key = |object: &Value| {
            let text = |pointer| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            (
                text("/metadata/namespace").to_string(),
                text("/metadata/name").to_string(),
            )
        };
        match object.get("kind").and_then(Value::as_str) {
            Some("JobRun") => {
                let Ok(run) = serde_json::from_value::<JobRun>(object.clone()) else {
                    return;
                };
                let phase = run
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or_default()
                    .as_str()
                    .to_string();
                if self.printed.get(&key(object)) != Some(&phase) {
                    let _ = writeln!(self.out, "{}", row(&run));
                    let _ = self.out.flush();
                    self.printed.insert(key(object), phase);
                }
            }
            Some("Schedule") => {
                let Ok(schedule) = serde_json::from_value::<Schedule>(object.clone()) else {
                    return;
                };
                let conditions = schedule.status.map(|s| s.conditions).unwrap_or_default();
                // Paused and Finished are Ready=True (the operator does what the spec says) but
                // still worth a line.
                let stopped = |c: &&Condition| {
                    c.status == "False" || matches!(c.reason.as_str(), "Paused" | "Finished")
                };
                match find_condition(&conditions, horolog::api::READY).filter(stopped) {
                    Some(ready) => {
                        let why = format!("{}: {}", ready.reason, ready.message);
                        if self.not_ready.get(&key(object)) != Some(&why) {
                            let name = key(object).1;
                            // Paused and Finished are states a user asked for, not problems.
                            let line = match ready.reason.as_str() {
                                "Paused" | "Finished" => {
                                    format!("Schedule {name} is {}: {}", ready.reason, ready.message)
                                }
                                _ => format!("warning: Schedule {name} is not Ready: {why}"),
                            };
                            let _ = writeln!(self.out, "{line}");
                            let _ = self.out.flush();
                            self.not_ready.insert(key(object), why);
                        }
                    }
                    None => {
                        self.not_ready.remove(&key(object));
                    }
                }
            }
            _ => {}
        }
    }

    /// Forgets a deleted object (a JobRun of the same name later is a new run).
    pub fn forget(&mut self, object: &Value) {
        let text = |pointer| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let key = (
            text("/metadata/namespace").to_string(),
            text("/metadata/name").to_string(),
        );
        self.printed.remove(&key);
        self.not_ready.remove(&key);
    }

    /// Prints every object of `snapshot` that is new to the table.
    pub fn show_all(&mut self, snapshot: &[Value]) {
        let mut runs: Vec<&Value> = snapshot
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("JobRun"))
            .collect();
        // Oldest first, as they happened.
        runs.sort_by_key(|o| {
            o.pointer("/spec/fireTime")
                .or_else(|| o.pointer("/metadata/creationTimestamp"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
        for object in runs {
            self.show(object);
        }
        for object in snapshot {
            if object.get("kind").and_then(Value::as_str) == Some("Schedule") {
                self.show(object);
            }
        }
    }

    /// Prints changes until `stop` turns true; gives the writer back.
    pub async fn follow(
        mut self,
        server: ApiServer,
        mut changes: broadcast::Receiver<Arc<Change>>,
        mut stop: watch::Receiver<bool>,
    ) -> W {
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                change = changes.recv() => match change {
                    Ok(change) if change.kind == ChangeKind::Deleted => self.forget(&change.object),
                    Ok(change) => self.show(&change.object),
                    // Fell behind: what changed meanwhile is in the current state.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.show_all(&server.snapshot()),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        // Whatever came just before the stop.
        while let Ok(change) = changes.try_recv() {
            match change.kind {
                ChangeKind::Deleted => self.forget(&change.object),
                _ => self.show(&change.object),
            }
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(phase: &str, status: Value) -> Value {
        let mut status = status;
        status["phase"] = json!(phase);
        json!({
            "apiVersion": "horolog.dev/v1alpha1", "kind": "JobRun",
            "metadata": {"name": "every-1767254400", "namespace": "default"},
            "spec": {"scheduleName": "every", "fireTime": "2026-01-01T08:00:00Z",
                     "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
            "status": status,
        })
    }

    #[test]
    fn prints_one_line_per_phase_change() {
        let mut table = Table::new(Vec::new());
        table.show(&run("Pending", json!({})));
        table.show(&run("Pending", json!({"podName": "x-1"})));
        table.show(&run(
            "Succeeded",
            json!({"exitCode": 0, "duration": "1s", "result": "ok"}),
        ));
        let text = String::from_utf8(table.out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"));
        let fields: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            fields,
            [
                "every-1767254400",
                "every",
                "Succeeded",
                "2026-01-01T08:00:00Z",
                "1s",
                "0",
                "ok"
            ]
        );
    }

    #[test]
    fn a_failed_run_without_result_shows_why() {
        let mut table = Table::new(Vec::new());
        table.show(&run(
            "Failed",
            json!({"reason": "DeadlineExceeded", "message": "pod x-1 failed"}),
        ));
        let text = String::from_utf8(table.out).unwrap_or_default();
        assert!(text.contains("DeadlineExceeded: pod x-1 failed"), "{text}");
    }
}
