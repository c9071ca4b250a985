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

/// Whether text lines get ANSI colour codes: only when they go to a terminal and `NO_COLOR`
/// (no-color.org) is unset or empty. `kubectl logs`, files and log pipelines get plain text.
pub fn colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The subscriber `init` installs, writing to `writer`, with colour codes only if `ansi`.
pub fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                // Fields at the top level, not under "fields": what Loki/Elastic queries expect.
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// The reconcilers' spans carry `kind`, `namespace` and `object` (the name; JSON's span
/// `name` is the span's own) and a JobRun's `fire_time`,
/// so every line they log can be traced to its object. Text has colour only on a terminal.
pub fn init(level: &str, format: LogFormat) -> Result<(), TelemetryError> {
    use std::io::IsTerminal;
    let filter = filter(level)?;
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // stdout belongs to command output (preview, bench, local mode's table).
    let subscriber = subscriber(filter, format, std::io::stderr, ansi);
    // try_init also routes the `log` records of dependencies to tracing.
    tracing_subscriber::util::SubscriberInitExt::try_init(subscriber)
        .map_err(|error| TelemetryError::AlreadyInitialised(error.to_string()))
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
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(!colour(false, None), "kubectl logs and files get no escape codes");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(colour(true, Some(OsStr::new(""))));
    }

    /// A buffer the subscriber writes to.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, ansi: bool) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(EnvFilter::new("info"), format, move || writer.clone(), ansi);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "reconcile",
                kind = "JobRun",
                namespace = "ns",
                object = "nightly-1",
                fire_time = "2026-01-01T00:00:00+00:00"
            );
            let _entered = span.enter();
            tracing::warn!(pod = "nightly-1-1", "created the run's pod");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_off_a_terminal_has_no_escape_codes_and_names_the_object() {
        let plain = logged(LogFormat::Text, colour(false, None));
        assert!(!plain.contains('\x1b'), "{plain:?}");
        for field in [
            "kind=\"JobRun\"",
            "namespace=\"ns\"",
            "object=\"nightly-1\"",
            "fire_time=",
        ] {
            assert!(plain.contains(field), "{field} missing from {plain:?}");
        }
        assert!(
            logged(LogFormat::Text, true).contains('\x1b'),
            "the terminal case does colour"
        );
    }

    #[test]
    fn json_lines_carry_the_object_in_the_span() {
        let line = logged(LogFormat::Json, false);
        let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(value["span"]["kind"], "JobRun");
        assert_eq!(value["span"]["object"], "nightly-1");
        assert_eq!(value["span"]["namespace"], "ns");
        assert_eq!(value["pod"], "nightly-1-1");
    }

    #[test]
    fn log_format_parses_from_the_cli_spelling() {
        use clap::ValueEnum;
        assert_eq!(LogFormat::from_str("text", false), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_str("json", false), Ok(LogFormat::Json));
        assert!(LogFormat::from_str("yaml", false).is_err());
    }
}
