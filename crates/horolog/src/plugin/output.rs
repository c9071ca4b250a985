//! How subcommands print: aligned tables for people, JSON and YAML for programs.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::Error;

/// `-o`: the output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns (YAML where a table makes no sense, as for `convert`).
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Writes `header` and `rows` as columns separated by two spaces, as kubectl does.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<(), Error> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON.
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), Error> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Error::Invalid(format!("cannot write JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// Writes `value` as one YAML document.
pub fn yaml(out: &mut dyn Write, value: &impl Serialize) -> Result<(), Error> {
    let text = serde_yaml::to_string(value).map_err(|e| Error::Invalid(format!("cannot write YAML: {e}")))?;
    write!(out, "{text}")?;
    Ok(())
}

/// Writes `value` as JSON or YAML; for `Table`, calls `table` instead.
pub fn structured(
    out: &mut dyn Write,
    format: Format,
    value: &impl Serialize,
    table: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    match format {
        Format::Table => table(out),
        Format::Json => json(out, value),
        Format::Yaml => yaml(out, value),
    }
}

/// The time zone a trigger's wall-clock fields are read in (UTC when absent or unknown).
pub fn zone_of(trigger: &crate::api::TriggerSpec) -> Tz {
    trigger
        .timezone
        .as_deref()
        .and_then(|name| name.trim().parse().ok())
        .unwrap_or(Tz::UTC)
}

/// `t` in `tz`, RFC 3339 with the zone's offset, as `horolog preview` prints fire times.
pub fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The first line of `text`, cut to `max` characters with `...`.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim_end();
    let more = text.trim_end().lines().nth(1).is_some();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    } else if more {
        format!("{line}...")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_columns_and_trims_line_ends() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "PHASE"],
            &[
                vec!["a".into(), "Succeeded".into()],
                vec!["long-name".into(), "".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME       PHASE\na          Succeeded\nlong-name\n"
        );
    }

    #[test]
    fn first_line_marks_what_it_leaves_out() {
        assert_eq!(first_line("ok\n", 10), "ok");
        assert_eq!(first_line("ok\nmore", 10), "ok...");
        assert_eq!(first_line("0123456789abc", 10), "0123456...");
        assert_eq!(first_line("", 10), "");
    }
}
