//! How subcommands print: aligned tables for people, JSON and YAML for programs.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::Error;

/// `-o`: the output format, as kubectl spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns (YAML where a table makes no sense, as for `convert`).
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// `KIND.GROUP/NAME` of each object, one a line.
    Name,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// `jsonpath=TEMPLATE`: the template filled in from the JSON (a list is `{.items}`).
    JsonPath(String),
}

impl Format {
    /// Parses `-o`: `table`, `wide`, `name`, `json`, `yaml`, `jsonpath=TEMPLATE`.
    pub fn parse(text: &str) -> Result<Format, String> {
        let jsonpath = text
            .strip_prefix("jsonpath=")
            .or_else(|| text.strip_prefix("jsonpath:"));
        if let Some(template) = jsonpath {
            crate::jsonpath::Template::parse(template).map_err(|e| format!("jsonpath={template}: {e}"))?;
            return Ok(Format::JsonPath(template.to_string()));
        }
        match text {
            "table" | "" => Ok(Format::Table),
            "wide" => Ok(Format::Wide),
            "name" => Ok(Format::Name),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            other => Err(format!(
                "unknown output format {other:?}: use table, wide, name, json, yaml or jsonpath=TEMPLATE"
            )),
        }
    }

    /// True for the formats that print a table (`table`, `wide`).
    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table | Format::Wide)
    }
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

/// Writes `value` as `format` asks: JSON, YAML, the JSONPath template filled in from it, the
/// `names` (`-o name`), or, for `table` and `wide`, what `table` writes (told whether wide).
pub fn structured(
    out: &mut dyn Write,
    format: &Format,
    value: &impl Serialize,
    names: &[String],
    table: impl FnOnce(&mut dyn Write, bool) -> Result<(), Error>,
) -> Result<(), Error> {
    match format {
        Format::Table => table(out, false),
        Format::Wide => table(out, true),
        Format::Json => json(out, value),
        Format::Yaml => yaml(out, value),
        Format::Name => {
            for name in names {
                writeln!(out, "{name}")?;
            }
            Ok(())
        }
        Format::JsonPath(template) => json_path(out, template, value),
    }
}

/// Writes the JSONPath `template` filled in from `value` (an array is seen as a kubectl List,
/// `{"kind": "List", "items": [...]}`, so `{.items[*].name}` works as with kubectl).
pub fn json_path(out: &mut dyn Write, template: &str, value: &impl Serialize) -> Result<(), Error> {
    let value = serde_json::to_value(value).map_err(|e| Error::Invalid(format!("cannot write JSON: {e}")))?;
    let value = match value {
        serde_json::Value::Array(items) => {
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
        }
        other => other,
    };
    let template = crate::jsonpath::Template::parse(template)
        .map_err(|e| Error::Invalid(format!("jsonpath={template}: {e}")))?;
    let text = template
        .render(&value)
        .map_err(|e| Error::Invalid(format!("jsonpath: {e}")))?;
    write!(out, "{text}")?;
    Ok(())
}

/// `schedule.horolog.dev/NAME`: how `-o name` names an object of `kind` (lower case).
pub fn kind_name(kind: &str, name: &str) -> String {
    format!("{}.horolog.dev/{name}", kind.to_lowercase())
}

/// The time zone a trigger's wall-clock fields are read in (UTC when absent or unknown).
pub fn zone_of(trigger: &horolog::api::TriggerSpec) -> Tz {
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
