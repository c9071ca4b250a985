//! `status [SCHEDULE] [-A] [-l SELECTOR] [--watch] [--no-color]`: Schedules at a glance.
//!
//! One line per Schedule: its state, next fire (absolute in the trigger's zone, and relative),
//! the last finished run's outcome and duration, the runs running and waiting, and a strip of
//! the last 20 outcomes, oldest first. On a terminal the strip is colour blocks; otherwise (or
//! with `--no-color`, or `NO_COLOR` set) one letter per run:
//!
//! | letter | outcome | colour |
//! |---|---|---|
//! | `S` | Succeeded | green |
//! | `F` | Failed | red |
//! | `M` | Missed | yellow |
//! | `K` | Skipped | grey |
//! | `C` | Cancelled | magenta |
//!
//! The state comes from the conditions the operator writes (kstatus: Ready, Paused, Finished,
//! LastRunSucceeded): `Invalid` (Ready=False because of the spec: invalid trigger, Task or
//! Calendar missing), `Failing` (Ready=False otherwise, e.g. TooManyFailures or
//! CreateRefused, or the last run Failed: not Skipped, Missed or Cancelled), `Finished`,
//! `Paused`, else `Active`.
//!
//! With a name: that line, then the upcoming fire times (Calendars applied, as `next`), the
//! runs newest first with their durations, and the Schedule's recent Warning Events.
//! `--watch` redraws on every change of a Schedule or JobRun (and every few seconds, for the
//! relative times): in place on a terminal, one frame after another otherwise.

use std::collections::BTreeMap;
use std::io::Write;
use std::pin::pin;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use super::lookup::find;
use super::next::next_fire_times_with;
use super::output::{self, zone_of};
use super::{Error, Outcome, Scope};
use horolog::api::{Calendar, JobRun, JobRunPhase, Schedule, Task};

/// How many outcomes the strip shows.
pub const STRIP: usize = 20;
/// How many upcoming fire times and runs the detail view shows.
const DETAIL: usize = 5;
const DETAIL_RUNS: usize = 10;
/// How often `--watch` redraws without a change (the relative times move).
const TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// The arguments of `status`.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// One Schedule, in detail; without it, every Schedule of the namespace (-A: all).
    pub schedule: Option<String>,
    /// Only the Schedules whose labels match.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Redraw on every change until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Letters instead of colour blocks, and no colour (also when NO_COLOR is set or the
    /// output is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Whether the output is a terminal (set by main, not a flag).
    #[arg(skip)]
    pub terminal: bool,
}

impl StatusArgs {
    fn colour(&self) -> bool {
        self.terminal && !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// A Schedule's state, from its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    /// Firing as its spec says.
    Active,
    /// spec.paused.
    Paused,
    /// maxRuns reached or the trigger exhausted.
    Finished,
    /// Ready=False for a reason a person must act on that is not the spec, or the last run
    /// failed.
    Failing,
    /// Ready=False because of the spec (trigger, Task, Calendar).
    Invalid,
}

/// Ready=False reasons that mean the spec (or what it names) is wrong.
const INVALID_REASONS: [&str; 7] = [
    "InvalidSpec",
    "InvalidTrigger",
    "InvalidTimezone",
    "TaskNotFound",
    "CalendarNotFound",
    "InvalidCalendar",
    "CalendarCycle",
];

/// The state of `schedule`, from the conditions Ready, Paused, Finished and LastRunSucceeded.
pub fn state_of(schedule: &Schedule) -> State {
    let is = |type_: &str, status: &str| schedule.condition(type_).is_some_and(|c| c.status == status);
    if let Some(ready) = schedule.condition("Ready").filter(|c| c.status == "False") {
        return match INVALID_REASONS.contains(&ready.reason.as_str()) {
            true => State::Invalid,
            false => State::Failing,
        };
    }
    if is("Finished", "True") {
        State::Finished
    } else if is("Paused", "True") || schedule.spec.paused {
        State::Paused
    } else if schedule
        .condition("LastRunSucceeded")
        .is_some_and(|c| c.status == "False" && c.reason == "Failed")
    {
        // A run skipped, missed or cancelled is not a failure of the Schedule.
        State::Failing
    } else {
        State::Active
    }
}

/// The letter of a finished run's outcome in the strip.
pub fn letter(phase: JobRunPhase) -> Option<char> {
    match phase {
        JobRunPhase::Succeeded => Some('S'),
        JobRunPhase::Failed => Some('F'),
        JobRunPhase::Missed => Some('M'),
        JobRunPhase::Skipped => Some('K'),
        JobRunPhase::Cancelled => Some('C'),
        JobRunPhase::Scheduled | JobRunPhase::Pending | JobRunPhase::Waiting | JobRunPhase::Running => None,
    }
}

fn colour_of(letter: char) -> &'static str {
    match letter {
        'S' => "\x1b[32m",
        'F' => "\x1b[31m",
        'M' => "\x1b[33m",
        'K' => "\x1b[90m",
        _ => "\x1b[35m",
    }
}

/// One Schedule's line, as `-o json|yaml` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    /// The Schedule.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Active, Paused, Finished, Failing or Invalid.
    pub state: State,
    /// The Ready condition's reason, when it is False.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The trigger in short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The next fire time, RFC 3339 in the trigger's zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_time: Option<String>,
    /// The last finished run's name, outcome and duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Runs Running.
    pub running: usize,
    /// Runs Pending or Waiting, and runs Scheduled whose fire time has come (not those staged
    /// ahead of it).
    pub waiting: usize,
    /// The last 20 outcomes, oldest first, as letters (S F M K C).
    pub outcomes: String,
    #[serde(skip)]
    next: Option<DateTime<Utc>>,
}

/// The last finished run of a Schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    /// The JobRun.
    pub name: String,
    /// Its phase.
    pub phase: String,
    /// How long it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// The line of `schedule`, from its runs (any order).
pub fn row_of(schedule: &Schedule, runs: &[&JobRun]) -> StatusRow {
    let mut runs: Vec<&JobRun> = runs.to_vec();
    runs.sort_by_key(|run| (run.fire_time(), run.name_any()));
    let finished: Vec<&&JobRun> = runs.iter().filter(|run| run.is_finished()).collect();
    let outcomes: String = finished
        .iter()
        .rev()
        .take(STRIP)
        .rev()
        .filter_map(|run| letter(run.phase()))
        .collect();
    let last_run = finished.last().map(|run| LastRun {
        name: run.name_any(),
        phase: run.phase().as_str().to_string(),
        duration: run.status.as_ref().and_then(|s| s.duration.clone()),
    });
    let status = schedule.status.clone().unwrap_or_default();
    let tz = zone_of(&schedule.spec.trigger);
    let count = |phases: &[JobRunPhase]| runs.iter().filter(|r| phases.contains(&r.phase())).count();
    StatusRow {
        name: schedule.name_any(),
        namespace: schedule.namespace().unwrap_or_default(),
        state: state_of(schedule),
        reason: schedule
            .condition("Ready")
            .filter(|c| c.status == "False")
            .map(|c| c.reason.clone()),
        trigger: status.trigger.clone(),
        next_fire_time: status
            .next_fire_time
            .map(|t| t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false)),
        last_run,
        running: count(&[JobRunPhase::Running]),
        // A run staged ahead of its fire time (beyond the cursor) is not waiting yet.
        waiting: count(&[JobRunPhase::Pending, JobRunPhase::Waiting])
            + runs
                .iter()
                .filter(|r| r.phase() == JobRunPhase::Scheduled)
                .filter(|r| status.cursor.is_some_and(|cursor| r.fire_time() <= cursor))
                .count(),
        outcomes,
        next: status.next_fire_time,
    }
}

/// `in 5m`, `3h ago`: a rough distance from `now`, as kubectl's AGE.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = t - now;
    let (span, future) = match delta >= TimeDelta::zero() {
        true => (delta, true),
        false => (-delta, false),
    };
    let secs = span.num_seconds();
    let text = if secs < 120 {
        format!("{secs}s")
    } else if secs < 2 * 3600 {
        format!("{}m", secs / 60)
    } else if secs < 2 * 86400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    };
    match future {
        true => format!("in {text}"),
        false => format!("{text} ago"),
    }
}

/// The strip: letters, or colour blocks.
fn strip(outcomes: &str, colour: bool) -> String {
    if !colour {
        return outcomes.to_string();
    }
    let mut text: String = outcomes.chars().map(|c| format!("{}■", colour_of(c))).collect();
    if !text.is_empty() {
        text.push_str("\x1b[0m");
    }
    text
}

fn state_text(state: State, colour: bool) -> String {
    let name = format!("{state:?}");
    if !colour {
        return name;
    }
    let code = match state {
        State::Active => "\x1b[32m",
        State::Paused | State::Finished => "\x1b[90m",
        State::Failing => "\x1b[31m",
        State::Invalid => "\x1b[1;31m",
    };
    format!("{code}{name}\x1b[0m")
}

/// Everything `status` reads in one pass.
struct Snapshot {
    schedules: Vec<Schedule>,
    runs: Vec<JobRun>,
}

async fn read(client: &Client, scope: &Scope, args: &StatusArgs) -> Result<Snapshot, Error> {
    let schedules = match &args.schedule {
        Some(name) => vec![find::<Schedule>(client, scope, "Schedule", name).await?],
        None => {
            let api: Api<Schedule> = match scope.all_namespaces {
                true => Api::all(client.clone()),
                false => Api::namespaced(client.clone(), &scope.namespace),
            };
            let mut params = ListParams::default();
            if let Some(selector) = &args.selector {
                params = params.labels(selector);
            }
            let mut items = api
                .list(&params)
                .await
                .map_err(Error::api("listing schedules"))?
                .items;
            items.sort_by_key(|s| (s.namespace(), s.name_any()));
            items
        }
    };
    let runs_api: Api<JobRun> = match (&args.schedule, scope.all_namespaces) {
        (None, true) => Api::all(client.clone()),
        (Some(_), _) => Api::namespaced(
            client.clone(),
            &schedules
                .first()
                .and_then(|s| s.namespace())
                .unwrap_or_else(|| scope.namespace.clone()),
        ),
        (None, false) => Api::namespaced(client.clone(), &scope.namespace),
    };
    let runs = runs_api
        .list(&ListParams::default())
        .await
        .map_err(Error::api("listing jobruns"))?
        .items;
    Ok(Snapshot { schedules, runs })
}

/// The runs of each Schedule, by (namespace, name).
fn runs_by_schedule(runs: &[JobRun]) -> BTreeMap<(String, String), Vec<&JobRun>> {
    let mut by: BTreeMap<(String, String), Vec<&JobRun>> = BTreeMap::new();
    for run in runs {
        if let Some(schedule) = &run.spec.schedule_name {
            by.entry((run.namespace().unwrap_or_default(), schedule.clone()))
                .or_default()
                .push(run);
        }
    }
    by
}

/// Prints the status of the Schedules the arguments choose, once, or with `--watch` until the
/// watch ends; `now` tells the time for the relative columns.
pub async fn status(client: &Client, scope: &Scope, args: &StatusArgs, out: &mut dyn Write) -> Outcome {
    status_at(client, scope, args, &Utc::now, out).await
}

/// [`status`] with the clock given.
pub async fn status_at(
    client: &Client,
    scope: &Scope,
    args: &StatusArgs,
    now: &dyn Fn() -> DateTime<Utc>,
    out: &mut dyn Write,
) -> Outcome {
    if args.schedule.is_some() && args.selector.is_some() {
        return Err(Error::Invalid(
            "give a Schedule name or -l SELECTOR, not both".into(),
        ));
    }
    draw(client, scope, args, now(), out, false).await?;
    if !args.watch {
        return Ok(0);
    }
    let schedules: Api<Schedule> = Api::all(client.clone());
    let runs: Api<JobRun> = Api::all(client.clone());
    let changes = futures::stream::select(
        watcher(schedules, watcher::Config::default()).map(|_| ()),
        watcher(runs, watcher::Config::default()).map(|_| ()),
    );
    let mut changes = pin!(changes);
    loop {
        // Several events of one change come together: draw once for them.
        match tokio::time::timeout(TICK, changes.next()).await {
            Ok(None) => return Ok(0),
            Ok(Some(())) => {
                while let Ok(Some(())) =
                    tokio::time::timeout(std::time::Duration::from_millis(50), changes.next()).await
                {
                }
            }
            Err(_) => {}
        }
        draw(client, scope, args, now(), out, true).await?;
    }
}

async fn draw(
    client: &Client,
    scope: &Scope,
    args: &StatusArgs,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    again: bool,
) -> Result<(), Error> {
    let snapshot = read(client, scope, args).await?;
    let mut frame: Vec<u8> = Vec::new();
    let colour = args.colour();
    render(client, scope, args, &snapshot, now, colour, &mut frame).await?;
    if again {
        match args.terminal {
            // Home and clear the screen, then the new frame: a redraw in place.
            true => out.write_all(b"\x1b[H\x1b[2J")?,
            false => writeln!(out)?,
        }
    } else if args.terminal && args.watch {
        out.write_all(b"\x1b[H\x1b[2J")?;
    }
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

async fn render(
    client: &Client,
    scope: &Scope,
    args: &StatusArgs,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
    colour: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let by = runs_by_schedule(&snapshot.runs);
    let empty = Vec::new();
    let rows: Vec<StatusRow> = snapshot
        .schedules
        .iter()
        .map(|s| {
            let key = (s.namespace().unwrap_or_default(), s.name_any());
            row_of(s, by.get(&key).unwrap_or(&empty))
        })
        .collect();
    let names: Vec<String> = rows
        .iter()
        .map(|r| output::kind_name("Schedule", &r.name))
        .collect();
    output::structured(out, &scope.output, &rows, &names, |out, wide| {
        if rows.is_empty() {
            let place = match scope.all_namespaces {
                true => "in any namespace".to_string(),
                false => format!("in namespace {}", scope.namespace),
            };
            writeln!(out, "No Schedules {place}")?;
            return Ok(());
        }
        summary(out, &rows, scope.all_namespaces, wide, now, colour)
    })?;
    if let (Some(schedule), true) = (
        snapshot.schedules.first(),
        args.schedule.is_some() && scope.output.is_table(),
    ) {
        let runs = by
            .get(&(schedule.namespace().unwrap_or_default(), schedule.name_any()))
            .unwrap_or(&empty);
        detail(client, schedule, runs, now, colour, out).await?;
    }
    Ok(())
}

fn summary(
    out: &mut dyn Write,
    rows: &[StatusRow],
    all_namespaces: bool,
    wide: bool,
    now: DateTime<Utc>,
    colour: bool,
) -> Result<(), Error> {
    let mut header = vec![
        "NAME",
        "STATE",
        "NEXT FIRE",
        "LAST RUN",
        "RUNNING",
        "WAITING",
        "LAST 20",
    ];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    if wide {
        header.extend(["REASON", "TRIGGER"]);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let next = match (&row.next_fire_time, row.next) {
                (Some(text), Some(t)) => format!("{text} ({})", relative(t, now)),
                _ => "-".to_string(),
            };
            let last = row
                .last_run
                .as_ref()
                .map_or("-".to_string(), |r| match &r.duration {
                    Some(d) => format!("{} {d}", r.phase),
                    None => r.phase.clone(),
                });
            let mut cells = vec![
                row.name.clone(),
                format!("{:?}", row.state),
                next,
                last,
                row.running.to_string(),
                row.waiting.to_string(),
                row.outcomes.clone(),
            ];
            if all_namespaces {
                cells.insert(0, row.namespace.clone());
            }
            if wide {
                cells.push(row.reason.clone().unwrap_or_else(|| "-".into()));
                cells.push(row.trigger.clone().unwrap_or_default());
            }
            cells
        })
        .collect();
    if !colour {
        return output::table(out, &header, &cells);
    }
    // Align on the plain text, then colour the state and the strip.
    let mut plain = Vec::new();
    output::table(&mut plain, &header, &cells)?;
    let text = String::from_utf8_lossy(&plain);
    let state_at = header.iter().position(|h| *h == "STATE").unwrap_or(1);
    let strip_at = header.iter().position(|h| *h == "LAST 20").unwrap_or(6);
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            writeln!(out, "{line}")?;
            continue;
        }
        let row = &rows[i - 1];
        let cell = &cells[i - 1];
        let mut line = line.to_string();
        let state = &cell[state_at];
        if let Some(at) = find_cell(&line, &cells[i - 1], state_at) {
            line.replace_range(at..at + state.len(), &state_text(row.state, true));
        }
        if !row.outcomes.is_empty()
            && let Some(at) = find_cell(&line, cell, strip_at)
        {
            line.replace_range(at..at + row.outcomes.len(), &strip(&row.outcomes, true));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Where cell `index` of `cells` starts in the aligned `line` (before any colour was added
/// after it: cells are coloured right to left... here, the state first, so later cells are
/// found after the coloured state by their text).
fn find_cell(line: &str, cells: &[String], index: usize) -> Option<usize> {
    let mut from = 0;
    for (i, cell) in cells.iter().enumerate() {
        let at = from + line[from..].find(cell.as_str())?;
        if i == index {
            return Some(at);
        }
        from = at + cell.len();
        // Skip a colour code that the state got.
        if line[from..].starts_with("\x1b[0m") {
            from += "\x1b[0m".len();
        }
    }
    None
}

async fn detail(
    client: &Client,
    schedule: &Schedule,
    runs: &[&JobRun],
    now: DateTime<Utc>,
    colour: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let name = schedule.name_any();
    let calendars: Vec<Calendar> = Api::<Calendar>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let task = match schedule.task_name() {
        Some(task) => Api::<Task>::namespaced(client.clone(), &namespace)
            .get_opt(task)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    writeln!(out)?;
    // Upcoming: after the cursor, and after now (fire times already due are the operator's
    // to run or count as missed, not upcoming).
    let mut ahead = schedule.clone();
    let status = ahead.status.get_or_insert_with(Default::default);
    status.cursor = Some(
        status
            .cursor
            .or(status.last_fire_time)
            .map_or(now, |c| c.max(now)),
    );
    match next_fire_times_with(&ahead, DETAIL, now, Some((&calendars, task.as_ref()))) {
        Ok(next) => {
            writeln!(out, "Upcoming fire times ({}):", next.timezone)?;
            if let Some(note) = &next.note {
                writeln!(out, "  {note}")?;
            }
            if next.fire_times.is_empty() {
                writeln!(out, "  none")?;
            }
            for t in &next.fire_times {
                let moved = match next.shifted.contains(t) {
                    true => " (moved by onExcluded)",
                    false => "",
                };
                let at = DateTime::parse_from_rfc3339(t).map(|t| relative(t.to_utc(), now));
                writeln!(out, "  {t}  {}{moved}", at.unwrap_or_default())?;
            }
        }
        Err(error) => writeln!(out, "Upcoming fire times: none: {error}")?,
    }
    writeln!(out)?;
    let mut runs: Vec<&&JobRun> = runs.iter().collect();
    runs.sort_by_key(|run| std::cmp::Reverse((run.fire_time(), run.name_any())));
    writeln!(out, "Runs (newest first):")?;
    if runs.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let tz = zone_of(&schedule.spec.trigger);
        let cells: Vec<Vec<String>> = runs
            .iter()
            .take(DETAIL_RUNS)
            .map(|run| {
                let status = run.status.clone().unwrap_or_default();
                let phase = run.phase();
                let outcome = match (letter(phase), colour) {
                    (Some(l), true) => format!("{}{}\x1b[0m", colour_of(l), phase.as_str()),
                    _ => phase.as_str().to_string(),
                };
                vec![
                    format!("  {}", run.name_any()),
                    run.fire_time()
                        .with_timezone(&tz)
                        .to_rfc3339_opts(SecondsFormat::Secs, false),
                    outcome,
                    status.duration.unwrap_or_else(|| "-".into()),
                    status.reason.unwrap_or_default(),
                ]
            })
            .collect();
        output::table(
            out,
            &["  NAME", "FIRE TIME", "PHASE", "DURATION", "REASON"],
            &cells,
        )?;
    }
    writeln!(out)?;
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut warnings: Vec<&Event> = events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("Schedule") && r.name.as_deref() == Some(name.as_str())
            })
        })
        .collect();
    warnings.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
    writeln!(out, "Warning Events (newest first):")?;
    if warnings.is_empty() {
        writeln!(out, "  none")?;
    }
    for event in warnings.iter().take(DETAIL_RUNS) {
        let when = event_time(event).map_or("-".to_string(), |t| relative(t, now));
        writeln!(
            out,
            "  {when}  {}  {}",
            event.reason.as_deref().unwrap_or_default(),
            event.note.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}

fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    let time = event
        .event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
    DateTime::from_timestamp(time.as_second(), time.subsec_nanosecond() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_kubectl_ages() {
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(relative(at("2026-01-01T12:00:30Z"), now), "in 30s");
        assert_eq!(relative(at("2026-01-01T12:10:00Z"), now), "in 10m");
        assert_eq!(relative(at("2026-01-01T09:00:00Z"), now), "3h ago");
        assert_eq!(relative(at("2026-01-04T12:00:00Z"), now), "in 3d");
    }

    #[test]
    fn a_run_staged_ahead_of_its_fire_time_is_not_waiting() {
        use horolog::api::{JobRun, JobRunSpec, ScheduleSpec, ScheduleStatus};
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut schedule = Schedule::new("s", ScheduleSpec::default());
        schedule.status = Some(ScheduleStatus {
            cursor: Some(at("2026-01-01T00:01:00Z")),
            ..ScheduleStatus::default()
        });
        let run = |name: &str, fire: &str| {
            JobRun::new(
                name,
                JobRunSpec {
                    fire_time: Some(at(fire)),
                    ..JobRunSpec::default()
                },
            )
        };
        // Both show Scheduled (no status yet): the first is due (covered by the cursor), the
        // second is staged for a fire time still to come.
        let due = run("s-60", "2026-01-01T00:01:00Z");
        let staged = run("s-120", "2026-01-01T00:02:00Z");
        assert_eq!(row_of(&schedule, &[&due, &staged]).waiting, 1);
    }

    #[test]
    fn the_strip_is_letters_without_colour_and_blocks_with_it() {
        assert_eq!(strip("SFM", false), "SFM");
        let blocks = strip("SF", true);
        assert_eq!(blocks, "\x1b[32m■\x1b[31m■\x1b[0m");
        assert_eq!(strip("", true), "");
    }
}
