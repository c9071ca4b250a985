//! `horolog preview`: the next fire times of every Schedule in a file, computed offline by
//! the same trigger engine the operator uses.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde::Serialize;

use std::sync::Arc;

use crate::api::{Calendar, Schedule, Task, Validate};
use crate::controller::calendar::with_calendars;
use crate::manifest::Manifest;
use horolog_core::exclusion::Fate;
use horolog_core::trigger::Trigger;

/// The fire times of one Schedule, as `horolog preview -o json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePreview {
    /// The Schedule's metadata.name.
    pub name: String,
    /// The trigger's IANA time zone.
    pub timezone: String,
    /// The trigger in short.
    pub trigger: String,
    /// The next fire times, RFC 3339 in the trigger's time zone with its offset.
    pub fire_times: Vec<String>,
    /// With `--show-excluded`: the trigger's own fire times up to the last one shown that a
    /// Calendar or `trigger.exclude` excluded, with what became of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<ExcludedFireTime>,
}

/// One fire time an exclusion covered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludedFireTime {
    /// The trigger's own fire time, in its time zone.
    pub fire_time: String,
    /// The Calendar that excluded it (`trigger.exclude` for the inline one).
    pub calendar: String,
    /// Where Following / Preceding moved it; absent when it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// True when it was moved onto a fire time that runs anyway (one run for both).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merged: bool,
}

/// A Schedule that cannot be previewed, with the reason naming the field and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Schedule {name}: {message}")]
pub struct PreviewError {
    /// The Schedule's metadata.name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// Where a preview starts when no `--from` is given: now, truncated to the whole second, so a
/// Schedule without startTime (whose interval is anchored at its creation time) previews fire
/// times on the second, as a Schedule created now would have them.
pub fn default_from(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0)
}

/// The next `count` fire times at or after `from` of every Schedule among `manifests`
/// (other kinds are skipped). A Schedule without startTime is treated as created at `from`.
pub fn preview(
    manifests: &[Manifest],
    from: DateTime<Utc>,
    count: usize,
) -> Vec<Result<SchedulePreview, PreviewError>> {
    preview_with(manifests, from, count, false)
}

/// [`preview`], with the Calendars and Tasks of `manifests` applied to each Schedule, and with
/// `show_excluded` the excluded fire times listed too.
pub fn preview_with(
    manifests: &[Manifest],
    from: DateTime<Utc>,
    count: usize,
    show_excluded: bool,
) -> Vec<Result<SchedulePreview, PreviewError>> {
    let calendars: Vec<Arc<Calendar>> = manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::Calendar(c) => Some(Arc::new(c.as_ref().clone())),
            _ => None,
        })
        .collect();
    let tasks: Vec<&Task> = manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::Task(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    let known = Known {
        calendars: &calendars,
        tasks: &tasks,
    };
    manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::Schedule(s) => Some(preview_one(s, from, count, &known, show_excluded)),
            _ => None,
        })
        .collect()
}

/// The Calendars and Tasks a preview can see (those in the same files).
struct Known<'a> {
    calendars: &'a [Arc<Calendar>],
    tasks: &'a [&'a Task],
}

fn preview_one(
    schedule: &Schedule,
    from: DateTime<Utc>,
    count: usize,
    known: &Known<'_>,
    show_excluded: bool,
) -> Result<SchedulePreview, PreviewError> {
    let name = schedule.metadata.name.clone().unwrap_or_default();
    let fail = |message: String| PreviewError {
        name: name.clone(),
        message,
    };
    // The same checks as `kubectl horolog lint` and local mode (Validate::problems), with
    // the Schedule taken as created at `from`.
    if let Some(problem) = schedule.problems(from).into_iter().next() {
        return Err(fail(problem.to_string()));
    }
    let trigger = Trigger::compile(&schedule.spec.trigger, from).map_err(|e| fail(e.to_string()))?;
    let task = schedule
        .task_name()
        .and_then(|name| {
            known
                .tasks
                .iter()
                .find(|t| t.metadata.name.as_deref() == Some(name))
        })
        .copied();
    let lookup = |name: &str| {
        known
            .calendars
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .cloned()
    };
    let trigger = with_calendars(trigger, schedule, task, &lookup).map_err(|e| {
        fail(format!(
            "{e} (preview reads Calendars from the same files as the Schedule)"
        ))
    })?;
    let tz = trigger.timezone();
    let show = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    };
    // Fire times at or after `from`: strictly after the instant just before it.
    let just_before = from - TimeDelta::nanoseconds(1);
    let times: Vec<DateTime<Utc>> = trigger.fire_times(Some(just_before)).take(count).collect();
    let mut excluded = Vec::new();
    if show_excluded && let Some(last) = times.last() {
        for own in trigger
            .own_fire_times(Some(just_before))
            .take_while(|t| t <= last)
        {
            let (calendar, moved_to, merged) = match trigger.fate(own) {
                Fate::Kept => continue,
                Fate::Skipped { by } => (by, None, false),
                Fate::Shifted { to, by } => (by, Some(show(to)), false),
                Fate::Merged { into, by } => (by, Some(show(into)), true),
            };
            excluded.push(ExcludedFireTime {
                fire_time: show(own),
                calendar,
                moved_to,
                merged,
            });
        }
    }
    Ok(SchedulePreview {
        name,
        timezone: tz.name().to_string(),
        trigger: trigger.describe(),
        fire_times: times.into_iter().map(show).collect(),
        excluded,
    })
}

/// The previews as an aligned table, one row per fire time.
pub fn render_table(previews: &[SchedulePreview]) -> String {
    let rows: Vec<[String; 4]> = previews
        .iter()
        .flat_map(|p| {
            let rows: Vec<[String; 4]> = if p.fire_times.is_empty() {
                vec![[
                    p.name.clone(),
                    p.timezone.clone(),
                    "-".into(),
                    "(no more fire times)".into(),
                ]]
            } else {
                p.fire_times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| [p.name.clone(), p.timezone.clone(), (i + 1).to_string(), t.clone()])
                    .chain(p.excluded.iter().map(|x| {
                        let fate = match (&x.moved_to, x.merged) {
                            (None, _) => "skipped".to_string(),
                            (Some(to), false) => format!("moved to {to}"),
                            (Some(to), true) => format!("moved to {to}, merged"),
                        };
                        [
                            p.name.clone(),
                            p.timezone.clone(),
                            "x".into(),
                            format!("{} excluded by {}: {fate}", x.fire_time, x.calendar),
                        ]
                    }))
                    .collect()
            };
            rows
        })
        .collect();
    let header = [
        "SCHEDULE".to_string(),
        "TIMEZONE".into(),
        "#".into(),
        "FIRE TIME".into(),
    ];
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    std::iter::once(&header)
        .chain(rows.iter())
        .map(|row| {
            let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            line.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;

    const DST: &str = r#"
apiVersion: horolog.dev/v1alpha1
kind: Schedule
metadata: {name: dst-berlin}
spec:
  trigger: {cron: "30 2 * * *", timezone: Europe/Berlin}
  jobTemplate: {spec: {template: {spec: {containers: [{name: main, image: busybox}]}}}}
"#;

    fn from() -> DateTime<Utc> {
        "2026-03-28T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn json_has_name_and_fire_times_in_the_trigger_zone() {
        let manifests = parse_manifests(DST, "dst.yaml").unwrap();
        let previews: Vec<_> = preview(&manifests, from(), 2)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let json = serde_json::to_value(&previews).unwrap();
        assert_eq!(json[0]["name"], "dst-berlin");
        // 02:30 does not exist on 2026-03-29 in Berlin: the first instant after the gap.
        assert_eq!(
            json[0]["fireTimes"],
            serde_json::json!(["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"])
        );
    }

    #[test]
    fn the_table_has_a_header_and_a_row_per_fire_time() {
        let manifests = parse_manifests(DST, "dst.yaml").unwrap();
        let previews: Vec<_> = preview(&manifests, from(), 2)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let table = render_table(&previews);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("SCHEDULE") && lines[0].ends_with("FIRE TIME"),
            "{table}"
        );
        assert!(
            lines[1].contains("dst-berlin") && lines[1].contains("Europe/Berlin"),
            "{table}"
        );
    }

    #[test]
    fn an_invalid_schedule_is_an_error_naming_it_and_the_field() {
        let bad = DST.replace("30 2 * * *", "61 * * * *");
        let manifests = parse_manifests(&bad, "bad.yaml").unwrap();
        let err = preview(&manifests, from(), 2).remove(0).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("Schedule dst-berlin: spec.trigger.cron"),
            "{shown}"
        );
        assert!(shown.contains("61"), "{shown}");
    }

    #[test]
    fn an_interval_without_start_time_previews_from_the_current_second() {
        let every_10s = DST.replace(
            r#"{cron: "30 2 * * *", timezone: Europe/Berlin}"#,
            "{interval: 10s}",
        );
        let manifests = parse_manifests(&every_10s, "interval.yaml").unwrap();
        let now: DateTime<Utc> = "2026-03-28T12:00:00.123456789Z".parse().unwrap();
        let previews = preview(&manifests, default_from(now), 2).remove(0).unwrap();
        assert_eq!(
            previews.fire_times,
            ["2026-03-28T12:00:00+00:00", "2026-03-28T12:00:10+00:00"]
        );
    }
}
