//! The `--state FILE` of local mode: the API server's objects as a `v1` `List` in JSON (what
//! [`ApiServer::export`] gives, readable by `kubectl get -f FILE`), loaded at start and saved
//! after changes, so a restart keeps every Schedule's status (`lastFireTime`) and every JobRun.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use horolog::clock::Clock;
use horolog_memserver::{ApiServer, Change};

/// Changes that come within this of each other are saved together.
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(200);

/// A state file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but cannot be read or is not a saved state.
    #[error("cannot load the state file {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot save the state file {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The server saved in `path`, or `None` when there is no such file yet (a first run).
pub fn load(path: &Path, clock: Arc<dyn Clock>) -> Result<Option<ApiServer>, StateError> {
    let load_error = |message: String| StateError::Load {
        path: path.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(load_error(err.to_string())),
    };
    let state: Value = serde_json::from_str(&text).map_err(|e| load_error(e.to_string()))?;
    ApiServer::import(clock, &horolog::crd::crds(), &state)
        .map(Some)
        .map_err(|e| load_error(e.to_string()))
}

/// Writes the server's state to `path` atomically: a temporary file beside it, then a rename,
/// so a crash mid-write leaves the previous state, never half of one.
pub async fn save(server: &ApiServer, path: &Path) -> Result<(), StateError> {
    let save_error = |source| StateError::Save {
        path: path.to_path_buf(),
        source,
    };
    let state = without_events(server.export());
    let text = serde_json::to_vec_pretty(&state).map_err(|e| save_error(std::io::Error::other(e)))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    tokio::fs::write(&temporary, &text).await.map_err(save_error)?;
    tokio::fs::rename(&temporary, path).await.map_err(save_error)?;
    debug!(path = %path.display(), bytes = text.len(), "state saved");
    Ok(())
}

/// Events are a log, not state (a cluster drops them after an hour); leaving them out keeps
/// the file from growing with every run.
fn without_events(mut state: Value) -> Value {
    if let Some(items) = state.get_mut("items").and_then(Value::as_array_mut) {
        items.retain(|item| item.get("kind").and_then(Value::as_str) != Some("Event"));
    }
    state
}

/// Saves the state at most every [`SAVE_DEBOUNCE`] while changes come, until `stop` turns true.
/// Failures are logged and retried with the next change; the caller saves once more at the end.
pub async fn save_on_change(
    server: ApiServer,
    path: PathBuf,
    mut changes: broadcast::Receiver<Arc<Change>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            change = changes.recv() => match change {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(SAVE_DEBOUNCE) => {}
        }
        // Everything that came meanwhile is in the export below.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = changes.try_recv() {}
        if let Err(err) = save(&server, &path).await {
            warn!(error = %err, "state not saved; retrying with the next change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_not_saved() {
        let state = json!({"items": [
            {"kind": "Schedule", "metadata": {"name": "a"}},
            {"kind": "Event", "metadata": {"name": "a.1"}},
        ]});
        let kept = without_events(state);
        assert_eq!(kept["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(kept["items"][0]["kind"], "Schedule");
    }
}
