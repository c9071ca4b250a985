//! `convert cronjob/NAME | -f FILE`: the Schedule equivalent to a CronJob, with every field that
//! cannot be carried over named on stderr.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use horolog_core::trigger::Trigger;
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::ObjectMeta;
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::lookup::find;
use super::output::{self, Format};
use super::{Error, Outcome, Scope};
use horolog::api::{
    ConcurrencyPolicy, DEFAULT_FAILED_HISTORY, DEFAULT_SUCCESSFUL_HISTORY, Duration, JobRunTemplate,
    JobTemplate, LeafTrigger, Schedule, ScheduleSpec, TemplateMeta, TriggerSpec,
};
use horolog::manifest::{documents, read_sources};

/// A Job's backoffLimit when the CronJob's job template leaves it out.
const JOB_DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// The largest backoffLimit a JobRun takes.
const MAX_BACKOFF_LIMIT: i32 = 100;
/// Annotations that describe the CronJob object, not what it runs.
const OWN_ANNOTATIONS: [&str; 1] = ["kubectl.kubernetes.io/last-applied-configuration"];

/// The arguments of `convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// The CronJob in the cluster: cronjob/NAME.
    #[arg(
        value_name = "cronjob/NAME",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub cronjob: Option<String>,
    /// A CronJob manifest instead (- for standard input); every CronJob in it is converted.
    #[arg(short = 'f', long = "filename", value_name = "FILE|-")]
    pub file: Option<PathBuf>,
}

/// Something about a CronJob field the Schedule does not say the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The CronJob field, e.g. `spec.jobTemplate.spec.parallelism`.
    pub field: String,
    /// Its value, as compact JSON (`<absent>` when left out).
    pub value: String,
    /// What became of it.
    pub message: String,
}

/// Prints the Schedule for the CronJob `cronjob/NAME` (from the cluster, with `client`) or for
/// every CronJob in `-f FILE`, as YAML (`-o json`: JSON), and one line per field it cannot
/// carry over on `err`: `cronjob/NAME: FIELD: VALUE: MESSAGE`. Exit code 0; an input that is
/// not a CronJob is an error. From a file, a non-empty `scope.namespace` (given with `-n`)
/// becomes the Schedule's namespace.
pub async fn convert(
    client: Option<&Client>,
    scope: &Scope,
    args: &ConvertArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let cronjobs = match (&args.file, &args.cronjob, client) {
        (Some(file), _, _) => cronjobs_in(file, stdin)?,
        (None, Some(target), Some(client)) => {
            let name = cronjob_name(target)?;
            vec![find::<CronJob>(client, scope, "CronJob", name).await?]
        }
        _ => return Err(Error::Invalid("give cronjob/NAME or -f FILE".into())),
    };
    let mut schedules = Vec::new();
    for cronjob in &cronjobs {
        let (mut schedule, notes) = schedule_for(cronjob)?;
        if args.file.is_some() && !scope.namespace.is_empty() {
            schedule.metadata.namespace = Some(scope.namespace.clone());
        }
        for note in notes {
            writeln!(
                err,
                "cronjob/{}: {}: {}: {}",
                cronjob.name_any(),
                note.field,
                note.value,
                note.message
            )?;
        }
        schedules.push(schedule);
    }
    match (&scope.output, schedules.as_slice()) {
        (Format::Json, [one]) => output::json(out, one)?,
        (Format::Json, many) => {
            output::json(out, &json!({"apiVersion": "v1", "kind": "List", "items": many}))?
        }
        (Format::JsonPath(template), [one]) => output::json_path(out, template, one)?,
        (Format::JsonPath(template), many) => output::json_path(out, template, &many)?,
        (Format::Name, many) => {
            for schedule in many {
                writeln!(out, "{}", output::kind_name("Schedule", &schedule.name_any()))?;
            }
        }
        (Format::Table | Format::Wide | Format::Yaml, many) => {
            for (i, schedule) in many.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                output::yaml(out, schedule)?;
            }
        }
    }
    Ok(0)
}

/// `NAME` of `cronjob/NAME` (also `cronjobs/`, `cj/`, `cronjob.batch/`).
fn cronjob_name(target: &str) -> Result<&str, Error> {
    match target.split_once('/') {
        Some(("cronjob" | "cronjobs" | "cj" | "cronjob.batch" | "cronjobs.batch", name))
            if !name.is_empty() =>
        {
            Ok(name)
        }
        _ => Err(Error::Invalid(format!(
            "{target:?}: expected cronjob/NAME (or -f FILE)"
        ))),
    }
}

/// Every document of the file, each of which must be a CronJob.
fn cronjobs_in(file: &std::path::Path, stdin: &mut dyn Read) -> Result<Vec<CronJob>, Error> {
    let mut cronjobs = Vec::new();
    for (source, text) in read_sources(file, stdin)? {
        for document in documents(&text, &source) {
            let document = document?;
            let group = document.api_version.split('/').next().unwrap_or_default();
            if document.kind != "CronJob" || group != "batch" {
                let what = if document.kind.is_empty() {
                    "no kind".to_string()
                } else {
                    format!("a {} ({})", document.kind, document.api_version)
                };
                return Err(Error::Invalid(format!(
                    "{}: {what}, not a CronJob (batch/v1)",
                    document.location()
                )));
            }
            let cronjob = serde_path_to_error::deserialize(document.value.clone()).map_err(|e| {
                Error::Invalid(format!("{}: {}: {}", document.location(), e.path(), e.inner()))
            })?;
            cronjobs.push(cronjob);
        }
    }
    if cronjobs.is_empty() {
        return Err(Error::Invalid(format!("{}: no CronJob in it", file.display())));
    }
    Ok(cronjobs)
}

/// The Schedule equivalent to `cronjob`, and notes on what it could not carry over (or carried
/// over differently). An error when the CronJob has no spec or no job template spec.
pub fn schedule_for(cronjob: &CronJob) -> Result<(Schedule, Vec<Note>), Error> {
    let name = cronjob.name_any();
    let mut notes = Vec::new();
    let mut note = |field: &str, value: String, message: String| {
        notes.push(Note {
            field: field.to_string(),
            value,
            message,
        });
    };
    let spec = cronjob
        .spec
        .clone()
        .ok_or_else(|| Error::Invalid(format!("cronjob/{name} has no spec")))?;
    let job = spec
        .job_template
        .spec
        .clone()
        .ok_or_else(|| Error::Invalid(format!("cronjob/{name} has no spec.jobTemplate.spec")))?;

    let trigger = trigger_for(&spec.schedule, spec.time_zone.as_deref(), &mut note);
    if let Err(e) = Trigger::compile(&trigger, DateTime::<Utc>::UNIX_EPOCH) {
        let field = if e.field.ends_with("timezone") {
            "spec.timeZone"
        } else {
            "spec.schedule"
        };
        note(
            field,
            quoted(&e.value),
            format!("horolog cannot read it: {}", e.message),
        );
    }

    // CronJob's Allow is no limit: say so explicitly, or an operator-wide
    // --default-max-running-jobs would apply.
    let (max_running_jobs, concurrency_policy) = match spec.concurrency_policy.as_deref() {
        None | Some("Allow") => (None, Some(ConcurrencyPolicy::Allow)),
        Some("Forbid") => (Some(1), Some(ConcurrencyPolicy::Skip)),
        Some("Replace") => (Some(1), Some(ConcurrencyPolicy::Replace)),
        Some(other) => {
            note(
                "spec.concurrencyPolicy",
                quoted(&other),
                "not carried over: CronJob knows Allow, Forbid and Replace".into(),
            );
            (None, None)
        }
    };
    let misfire_grace_time = match spec.starting_deadline_seconds {
        Some(secs) if secs >= 0 => Some(Duration::from_secs(secs.unsigned_abs())),
        Some(secs) => {
            note(
                "spec.startingDeadlineSeconds",
                quoted(&secs),
                "not carried over: negative".into(),
            );
            None
        }
        None => None,
    };

    let mut template = job.template.clone();
    if let Some(pod) = template.spec.as_mut()
        && let Some(policy) = pod.restart_policy.take_if(|p| p != "Never")
    {
        note(
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            quoted(&policy),
            "not carried over: a JobRun's pod runs with Never; retries are new pods (backoffLimit)".into(),
        );
    }
    let backoff_limit = match job.backoff_limit {
        None => {
            note(
                "spec.jobTemplate.spec.backoffLimit",
                "<absent>".into(),
                format!(
                    "set to {JOB_DEFAULT_BACKOFF_LIMIT}, the Job default (a Schedule's default is 0: no retries)"
                ),
            );
            JOB_DEFAULT_BACKOFF_LIMIT
        }
        Some(limit) if limit > MAX_BACKOFF_LIMIT => {
            note(
                "spec.jobTemplate.spec.backoffLimit",
                quoted(&limit),
                format!("set to {MAX_BACKOFF_LIMIT}, the most a JobRun takes"),
            );
            MAX_BACKOFF_LIMIT
        }
        Some(limit) => limit.max(0),
    };
    let result_ttl = job
        .ttl_seconds_after_finished
        .map(|secs| Duration::from_secs(u64::from(secs.unsigned_abs())));

    let one_pod = "not carried over: a JobRun runs one pod at a time";
    let unsupported: [(&str, Option<String>, &str); 12] = [
        (
            "completions",
            job.completions.as_ref().filter(|&&n| n != 1).map(quoted),
            one_pod,
        ),
        (
            "parallelism",
            job.parallelism.as_ref().filter(|&&n| n != 1).map(quoted),
            one_pod,
        ),
        (
            "completionMode",
            job.completion_mode
                .as_ref()
                .filter(|m| *m != "NonIndexed")
                .map(quoted),
            "not carried over: a JobRun's pod is not indexed",
        ),
        (
            "backoffLimitPerIndex",
            job.backoff_limit_per_index.as_ref().map(quoted),
            "not carried over: a JobRun's pod is not indexed",
        ),
        (
            "maxFailedIndexes",
            job.max_failed_indexes.as_ref().map(quoted),
            "not carried over: a JobRun's pod is not indexed",
        ),
        (
            "podFailurePolicy",
            job.pod_failure_policy.as_ref().map(quoted),
            "not carried over: every failed attempt counts against backoffLimit",
        ),
        (
            "successPolicy",
            job.success_policy.as_ref().map(quoted),
            "not carried over: a run succeeds when its pod does",
        ),
        (
            "podReplacementPolicy",
            job.pod_replacement_policy
                .as_ref()
                .filter(|p| *p != "Failed")
                .map(quoted),
            "not carried over: a retry starts once the failed pod has ended (as with Failed)",
        ),
        (
            "manualSelector",
            job.manual_selector.as_ref().filter(|&&m| m).map(quoted),
            "not carried over: a JobRun labels and finds its own pods",
        ),
        (
            "selector",
            job.selector.as_ref().map(quoted),
            "not carried over: a JobRun labels and finds its own pods",
        ),
        (
            "suspend",
            job.suspend.as_ref().filter(|&&s| s).map(quoted),
            "not carried over: a run starts when due; pause the Schedule instead",
        ),
        (
            "managedBy",
            job.managed_by.as_ref().map(quoted),
            "not carried over: horolog's operator manages its JobRuns",
        ),
    ];
    for (field, value, message) in unsupported {
        if let Some(value) = value {
            note(
                &format!("spec.jobTemplate.spec.{field}"),
                value,
                message.to_string(),
            );
        }
    }

    let job_meta = spec.job_template.metadata.clone().unwrap_or_default();
    let template_meta = TemplateMeta {
        labels: job_meta.labels.unwrap_or_default(),
        annotations: job_meta.annotations.unwrap_or_default(),
    };
    let own_annotations: BTreeMap<String, String> = cronjob
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !OWN_ANNOTATIONS.contains(&key.as_str()))
        .collect();
    let schedule = Schedule {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: cronjob.metadata.namespace.clone(),
            labels: cronjob.metadata.labels.clone().filter(|l| !l.is_empty()),
            annotations: (!own_annotations.is_empty()).then_some(own_annotations),
            ..ObjectMeta::default()
        },
        spec: ScheduleSpec {
            trigger,
            paused: spec.suspend.unwrap_or(false),
            misfire_grace_time,
            max_running_jobs,
            concurrency_policy,
            // CronJob's defaults (3 and 1) are a Schedule's too.
            successful_runs_history_limit: spec
                .successful_jobs_history_limit
                .filter(|&n| n != DEFAULT_SUCCESSFUL_HISTORY),
            failed_runs_history_limit: spec
                .failed_jobs_history_limit
                .filter(|&n| n != DEFAULT_FAILED_HISTORY),
            job_template: Some(JobTemplate {
                metadata: (!template_meta.labels.is_empty() || !template_meta.annotations.is_empty())
                    .then_some(template_meta),
                spec: JobRunTemplate {
                    template: Some(template.into()),
                    executor: None,
                    backoff_limit: Some(backoff_limit),
                    active_deadline_seconds: job.active_deadline_seconds,
                    result_ttl,
                },
            }),
            ..ScheduleSpec::default()
        },
        status: None,
    };
    Ok((schedule, notes))
}

/// The trigger for a CronJob's `schedule` and `timeZone`: a `CRON_TZ=`/`TZ=` prefix becomes
/// the timezone, `@every D` an interval, `?` a `*`; and when both day fields are restricted,
/// two crons in anyOf, because CronJob fires when either day matches where horolog's cron (as
/// APScheduler's) needs both.
fn trigger_for(
    schedule: &str,
    time_zone: Option<&str>,
    note: &mut dyn FnMut(&str, String, String),
) -> TriggerSpec {
    let text = schedule.trim();
    let (prefix_zone, expression) = match text
        .strip_prefix("CRON_TZ=")
        .or_else(|| text.strip_prefix("TZ="))
        .and_then(|rest| rest.split_once(char::is_whitespace))
    {
        Some((zone, rest)) => (Some(zone.to_string()), rest.trim().to_string()),
        None => (None, text.to_string()),
    };
    let timezone = match (time_zone, prefix_zone) {
        (Some(field), Some(prefix)) if field != prefix => {
            note(
                "spec.schedule",
                quoted(&schedule),
                format!("the time zone prefix {prefix} is left out: spec.timeZone {field} applies"),
            );
            Some(field.to_string())
        }
        (Some(field), _) => Some(field.to_string()),
        (None, prefix) => prefix,
    };
    let mut trigger = TriggerSpec {
        timezone,
        ..TriggerSpec::default()
    };
    if let Some(every) = expression.strip_prefix("@every ") {
        match every.trim().parse::<Duration>() {
            Ok(interval) => {
                trigger.interval = Some(interval);
                return trigger;
            }
            Err(e) => note("spec.schedule", quoted(&schedule), format!("@every: {e}")),
        }
    }
    let fields: Vec<String> = expression
        .split_whitespace()
        .map(|f| if f == "?" { "*".to_string() } else { f.to_string() })
        .collect();
    let restricted = |field: &str| !field.starts_with('*');
    match fields.as_slice() {
        [minute, hour, dom, month, dow] if restricted(dom) && restricted(dow) => {
            note(
                "spec.schedule",
                quoted(&schedule),
                "day of month and day of week are both set: CronJob fires when either matches, horolog's cron when both do, so the Schedule has anyOf two crons".into(),
            );
            trigger.any_of = Some(vec![
                LeafTrigger {
                    cron: Some(format!("{minute} {hour} {dom} {month} *")),
                    ..LeafTrigger::default()
                },
                LeafTrigger {
                    cron: Some(format!("{minute} {hour} * {month} {dow}")),
                    ..LeafTrigger::default()
                },
            ]);
        }
        _ if expression.starts_with('@') => trigger.cron = Some(expression),
        _ => trigger.cron = Some(fields.join(" ")),
    }
    trigger
}

/// A value as a note quotes it: compact JSON.
fn quoted<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(schedule: &str, zone: Option<&str>) -> (TriggerSpec, Vec<String>) {
        let mut notes = Vec::new();
        let trigger = trigger_for(schedule, zone, &mut |field: &str, _: String, message: String| {
            notes.push(format!("{field}: {message}"))
        });
        (trigger, notes)
    }

    #[test]
    fn a_cron_tz_prefix_becomes_the_timezone() {
        let (t, notes) = trigger("CRON_TZ=Europe/Berlin 0 9 * * 1-5", None);
        assert_eq!(t.cron.as_deref(), Some("0 9 * * 1-5"));
        assert_eq!(t.timezone.as_deref(), Some("Europe/Berlin"));
        assert!(notes.is_empty());
        let (t, _) = trigger("TZ=UTC @hourly", None);
        assert_eq!(
            (t.cron.as_deref(), t.timezone.as_deref()),
            (Some("@hourly"), Some("UTC"))
        );
    }

    #[test]
    fn both_day_fields_become_any_of_two_crons() {
        let (t, notes) = trigger("0 0 1 * mon", None);
        let crons: Vec<String> = t
            .any_of
            .unwrap_or_default()
            .into_iter()
            .filter_map(|leaf| leaf.cron)
            .collect();
        assert_eq!(crons, ["0 0 1 * *", "0 0 * * mon"]);
        assert_eq!(notes.len(), 1);
        let (t, notes) = trigger("0 0 */2 * mon", None);
        assert_eq!(t.cron.as_deref(), Some("0 0 */2 * mon"));
        assert!(notes.is_empty());
    }

    #[test]
    fn every_becomes_an_interval_and_a_question_mark_a_star() {
        let (t, _) = trigger("@every 1h30m", None);
        assert_eq!(t.interval.map(|d| d.to_string()).as_deref(), Some("1h30m"));
        let (t, _) = trigger("0 12 ? * *", None);
        assert_eq!(t.cron.as_deref(), Some("0 12 * * *"));
    }

    #[test]
    fn cronjob_names_are_accepted_in_their_kubectl_forms() {
        assert_eq!(cronjob_name("cronjob/a").ok(), Some("a"));
        assert_eq!(cronjob_name("cj/a").ok(), Some("a"));
        assert!(cronjob_name("a").is_err());
        assert!(cronjob_name("job/a").is_err());
    }
}
