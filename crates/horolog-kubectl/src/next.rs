//! `next SCHEDULE [--count N]`: the next fire times of a Schedule in the cluster, from where the
//! operator is (its status cursor), computed by the operator's own trigger engine.

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::Args;
use horolog_core::progress::{self, Finished};
use horolog_core::trigger::Trigger;
use kube::{Client, ResourceExt};
use serde::Serialize;

use super::lookup::find;
use super::output::{self, local_time};
use super::{Error, Outcome, Scope};
use horolog::api::{Calendar, Schedule, Task};
use horolog::names::trigger_hash;
use horolog::preview::{SchedulePreview, render_table};

/// The arguments of `next`.
#[derive(Debug, Clone, Args)]
pub struct NextArgs {
    /// The Schedule.
    pub schedule: String,
    /// How many fire times (-n is the namespace, as everywhere).
    #[arg(long = "count", default_value_t = 10, value_name = "N", value_parser = count)]
    pub count: usize,
}

/// `--count` takes a number; say what it is when something else is given.
fn count(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| {
        format!("{text:?} is not a number: --count is how many fire times (the namespace is -n {text})")
    })
}

/// What `next -o json|yaml` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextFireTimes {
    /// The Schedule's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The trigger's IANA time zone.
    pub timezone: String,
    /// The trigger in short.
    pub trigger: String,
    /// True while spec.paused is.
    pub paused: bool,
    /// True when it fires no more (maxRuns reached, or the trigger has no more fire times).
    pub finished: bool,
    /// Why nothing fires now, when something stops it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The next fire times after the operator's cursor, RFC 3339 in the trigger's time zone.
    pub fire_times: Vec<String>,
    /// Those of `fireTimes` that are there because onExcluded (Following / Preceding) moved
    /// an excluded fire time to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shifted: Vec<String>,
}

/// Prints the next `count` fire times after the Schedule's `status.cursor` (else
/// `lastFireTime`, else from its creation time), as the operator will see them at `now`: an
/// edited trigger counts from now, `maxRuns` caps them. Says when it is paused, stopped or
/// finished.
pub async fn next(
    client: &Client,
    scope: &Scope,
    args: &NextArgs,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> Outcome {
    let schedule: Schedule = find(client, scope, "Schedule", &args.schedule).await?;
    let namespace = schedule.namespace().unwrap_or_else(|| scope.namespace.clone());
    // The Calendars the operator would apply; a missing one makes the Schedule not fire.
    let calendars: Vec<Calendar> = kube::Api::<Calendar>::namespaced(client.clone(), &namespace)
        .list(&Default::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default();
    let task = match schedule.task_name() {
        Some(name) => kube::Api::<Task>::namespaced(client.clone(), &namespace)
            .get_opt(name)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let next = next_fire_times_with(&schedule, args.count, now, Some((&calendars, task.as_ref())))?;
    let names = [output::kind_name("Schedule", &next.name)];
    output::structured(out, &scope.output, &next, &names, |out, _| {
        if let Some(note) = &next.note {
            writeln!(out, "{note}")?;
        }
        let preview = SchedulePreview {
            name: next.name.clone(),
            timezone: next.timezone.clone(),
            trigger: next.trigger.clone(),
            fire_times: next
                .fire_times
                .iter()
                .map(|t| match next.shifted.contains(t) {
                    true => format!("{t} (moved by onExcluded)"),
                    false => t.clone(),
                })
                .collect(),
            excluded: Vec::new(),
        };
        write!(out, "{}", render_table(&[preview]))?;
        Ok(())
    })?;
    Ok(0)
}

/// The next `count` fire times of `schedule` at `now` (see [`next`]).
#[cfg(test)]
pub fn next_fire_times(
    schedule: &Schedule,
    count: usize,
    now: DateTime<Utc>,
) -> Result<NextFireTimes, Error> {
    next_fire_times_with(schedule, count, now, None)
}

/// [`next_fire_times`] with the Calendars of the Schedule's namespace and its Task applied,
/// as the operator applies them.
pub fn next_fire_times_with(
    schedule: &Schedule,
    count: usize,
    now: DateTime<Utc>,
    calendars: Option<(&[Calendar], Option<&Task>)>,
) -> Result<NextFireTimes, Error> {
    let name = schedule.name_any();
    let created = schedule.created_at().unwrap_or(now);
    let trigger = Trigger::compile(&schedule.spec.trigger, created)
        .map_err(|e| Error::Invalid(format!("schedule/{name}: spec.{e}")))?;
    let trigger = match calendars {
        Some((calendars, task)) => {
            let lookup = |wanted: &str| {
                calendars
                    .iter()
                    .find(|c| c.name_any() == wanted)
                    .map(|c| c.spec.def())
            };
            let roots = schedule.calendar_roots(task);
            progress::with_calendars(trigger, &roots, schedule.spec.on_excluded, &lookup)
                .map_err(|e| Error::Invalid(format!("schedule/{name} does not fire: spec.{e}")))?
        }
        None => trigger,
    };
    let status = schedule.status.clone().unwrap_or_default();
    let roots = schedule.calendar_roots(calendars.and_then(|(_, task)| task));
    let hash = progress::plan_hash(
        &trigger_hash(&schedule.spec.trigger),
        &trigger,
        &roots,
        schedule.spec.on_excluded,
    );
    let mut at = schedule.progress();
    // The operator carries an edited trigger on from the moment it sees the edit.
    if let Some(old) = &status.trigger_hash
        && progress::edited(old, &hash).is_some()
    {
        at.cursor = Some(progress::edited_cursor(at.cursor, now));
    }
    let times = at.upcoming(&trigger, count);
    let tz = trigger.timezone();
    let ready = schedule.condition("Ready").filter(|c| c.status == "False");
    let finished = at.finished(&trigger);
    let note = match finished {
        Some(Finished::MaxRuns) => Some(format!(
            "schedule/{name} has finished: it fired maxRuns ({}) times",
            status.fired_count
        )),
        Some(Finished::Exhausted) => Some(format!(
            "schedule/{name} has finished: its trigger has no more fire times"
        )),
        None if schedule.spec.paused => Some(format!(
            "schedule/{name} is paused: nothing fires until it is resumed (kubectl horolog resume {name}); the trigger's next fire times:"
        )),
        None => ready
            .filter(|c| matches!(c.reason.as_str(), "TooManyFailures" | "TaskNotFound"))
            .map(|c| format!("schedule/{name} does not fire ({}): {}", c.reason, c.message)),
    };
    Ok(NextFireTimes {
        name,
        namespace: schedule.namespace().unwrap_or_default(),
        timezone: tz.name().to_string(),
        trigger: trigger.describe(),
        paused: schedule.spec.paused,
        finished: finished.is_some(),
        note,
        shifted: times
            .iter()
            .filter(|t| trigger.is_shifted(**t))
            .map(|t| local_time(*t, tz))
            .collect(),
        fire_times: times.into_iter().map(|t| local_time(t, tz)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use horolog::api::{ScheduleSpec, ScheduleStatus, TriggerSpec};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hourly() -> Schedule {
        let mut schedule = Schedule::new(
            "hourly",
            ScheduleSpec {
                trigger: TriggerSpec {
                    cron: Some("0 * * * *".into()),
                    timezone: Some("Europe/Berlin".into()),
                    ..TriggerSpec::default()
                },
                ..ScheduleSpec::default()
            },
        );
        schedule.metadata.namespace = Some("default".into());
        let created = at("2025-12-01T00:00:00Z").timestamp();
        schedule.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
        ));
        schedule
    }

    #[test]
    fn calendars_apply_and_moved_fire_times_are_marked() {
        let mut schedule = hourly();
        schedule.spec.trigger.cron = Some("0 6 * * *".into());
        schedule.spec.calendar_refs = vec![horolog::api::CalendarRef { name: "h".into() }];
        schedule.spec.on_excluded = horolog::api::OnExcluded::Following;
        let now = at("2025-12-30T12:00:00Z");
        schedule.status = Some(ScheduleStatus {
            cursor: Some(now),
            ..ScheduleStatus::default()
        });
        let missing = next_fire_times_with(&schedule, 3, now, Some((&[], None)));
        assert!(
            matches!(missing, Err(Error::Invalid(m)) if m.contains("CalendarNotFound") || m.contains("does not exist"))
        );
        let calendar = Calendar::new(
            "h",
            serde_json::from_value(serde_json::json!({"days": ["2025-12-31"], "timezone": "Europe/Berlin"}))
                .unwrap(),
        );
        let calendars = [calendar];
        let next = next_fire_times_with(&schedule, 2, now, Some((&calendars, None))).unwrap();
        assert_eq!(
            next.fire_times,
            ["2026-01-01T06:00:00+01:00", "2026-01-02T06:00:00+01:00"]
        );
        assert_eq!(
            next.shifted,
            Vec::<String>::new(),
            "Dec 31 merged into Jan 1's own run"
        );
        schedule.spec.trigger.cron = Some("0 6 31 12 *".into());
        let next = next_fire_times_with(&schedule, 1, now, Some((&calendars, None))).unwrap();
        assert_eq!(next.fire_times, ["2026-01-01T06:00:00+01:00"]);
        assert_eq!(next.shifted, next.fire_times, "moved from Dec 31");
    }

    #[test]
    fn fire_times_start_after_the_cursor_in_the_trigger_zone() {
        let mut schedule = hourly();
        schedule.status = Some(ScheduleStatus {
            cursor: Some(at("2026-01-01T10:00:00Z")),
            last_fire_time: Some(at("2026-01-01T08:00:00Z")),
            ..ScheduleStatus::default()
        });
        let next = next_fire_times(&schedule, 2, at("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(
            next.fire_times,
            ["2026-01-01T12:00:00+01:00", "2026-01-01T13:00:00+01:00"]
        );
    }

    #[test]
    fn max_runs_caps_the_fire_times_and_says_when_it_is_reached() {
        let mut schedule = hourly();
        schedule.spec.max_runs = Some(3);
        schedule.status = Some(ScheduleStatus {
            cursor: Some(at("2026-01-01T10:00:00Z")),
            fired_count: 2,
            ..ScheduleStatus::default()
        });
        let next = next_fire_times(&schedule, 5, at("2026-01-01T10:00:00Z")).unwrap();
        assert_eq!(next.fire_times.len(), 1);
        assert!(!next.finished);
        schedule.status.as_mut().unwrap().fired_count = 3;
        let next = next_fire_times(&schedule, 5, at("2026-01-01T10:00:00Z")).unwrap();
        assert!(next.finished && next.fire_times.is_empty());
        assert_eq!(
            next.note.as_deref(),
            Some("schedule/hourly has finished: it fired maxRuns (3) times")
        );
    }

    #[test]
    fn an_edited_trigger_counts_from_now_as_the_operator_will() {
        let mut schedule = hourly();
        schedule.status = Some(ScheduleStatus {
            cursor: Some(at("2026-01-01T10:00:00Z")),
            trigger_hash: Some("an older trigger".into()),
            ..ScheduleStatus::default()
        });
        let next = next_fire_times(&schedule, 1, at("2026-03-01T10:30:00Z")).unwrap();
        assert_eq!(next.fire_times, ["2026-03-01T12:00:00+01:00"]);
    }

    #[test]
    fn a_namespace_given_as_the_count_is_explained() {
        let err = count("prod").unwrap_err();
        assert!(err.contains("-n prod"), "{err}");
        assert_eq!(count("3"), Ok(3));
    }
}
