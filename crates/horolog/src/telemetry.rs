//! Logging: a `tracing` subscriber writing human-readable text or one JSON object per line.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (`kubectl logs` by a person).
    #[default]
    Text,
    /// One JSON object per line with the event's fields at top level (log collectors).
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `--log-level` is not a level or a filter directive.
    #[error("invalid log level or filter {level:?}: {source}")]
    InvalidFilter {
        /// The rejected value.
        level: String,
        /// What the filter parser said.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was installed already (init called twice).
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// The filter for `level`: `RUST_LOG` when set (a developer's override wins over the
/// chart's flag), else `level`, which is a level (`info`) or a full directive list
/// (`info,kube=debug`).
pub fn filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return Ok(filter);
    }
    EnvFilter::try_new(level).map_err(|source| TelemetryError::InvalidFilter {
        level: level.to_owned(),
        source,
    })
}

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// Spans' fields (`schedule`, `namespace`, set by `#[instrument]` on the reconcilers)
/// are part of every line, so a line can be traced to its object.
pub fn init(level: &str, format: LogFormat) -> Result<(), TelemetryError> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        // stdout belongs to command output (preview, bench, local mode's table).
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            // Fields at the top level, not under "fields": what Loki/Elastic queries expect.
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|error| TelemetryError::AlreadyInitialised(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_accepts_plain_levels_and_directives() {
        // RUST_LOG would override; tests do not set it.
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        assert!(filter("info").is_ok());
        assert!(filter("info,kube=debug,horolog::controller=trace").is_ok());
        assert!(matches!(
            filter("info,kube=loud"),
            Err(TelemetryError::InvalidFilter { .. })
        ));
    }

    #[test]
    fn log_format_parses_from_the_cli_spelling() {
        use clap::ValueEnum;
        assert_eq!(LogFormat::from_str("text", false), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_str("json", false), Ok(LogFormat::Json));
        assert!(LogFormat::from_str("yaml", false).is_err());
    }
}
