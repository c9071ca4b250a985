//! The Kubernetes objects of the bench: what it creates (Schedules, CronJobs, their trivial
//! pod), and how a watched JobRun, Job or Pod becomes an observation. All pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobStatus, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::mix::PlannedSchedule;
use super::runs::{PodSeen, RunSeen};
use horolog::api::{
    CoalescePolicy, JOBRUN_LABEL, JobRun, JobRunTemplate, JobTemplate, SCHEDULE_LABEL, Schedule,
    ScheduleSpec, TemplateMeta,
};

/// Label on everything the bench creates (and, through templates, on every JobRun, Job and Pod
/// that follows), with the bench's run id. Watches and cleanup select on it.
pub const BENCH_LABEL: &str = "horolog.dev/bench";
/// The annotation the CronJob controller (Kubernetes ≥ 1.28) puts on each Job: its scheduled time.
pub const CRONJOB_SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The label the Job controller puts on its pods (Kubernetes ≥ 1.27).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The older form of [`JOB_NAME_LABEL`], still set beside it.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// The pod every bench run starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchPod {
    /// Container image; it must have a `true` command (busybox does).
    pub image: String,
    /// The run's activeDeadlineSeconds: a pod stuck pulling or pending does not pile up forever.
    pub active_deadline_seconds: i64,
    /// Each Schedule's template gets `BENCH_SCHEDULE=<its name>` (`load --distinct-templates`).
    pub distinct_templates: bool,
}

fn bench_labels(run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(BENCH_LABEL.to_string(), run_id.to_string())])
}

/// The pod template of both horolog's and the CronJob's runs: one container running `true`.
pub fn pod_template(pod: &BenchPod, run_id: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(bench_labels(run_id)),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "bench".to_string(),
                image: Some(pod.image.clone()),
                command: Some(vec!["true".to_string()]),
                ..Default::default()
            }],
            restart_policy: Some("Never".to_string()),
            // Nothing to shut down and no API access needed: spare the kubelet both.
            termination_grace_period_seconds: Some(0),
            automount_service_account_token: Some(false),
            ..Default::default()
        }),
    }
}

/// The pod template of Schedule `name`: [`pod_template`], with `BENCH_SCHEDULE=<name>` in
/// its container's environment when the load asks for distinct templates.
fn schedule_template(pod: &BenchPod, run_id: &str, name: &str) -> PodTemplateSpec {
    let mut template = pod_template(pod, run_id);
    if pod.distinct_templates {
        for container in template
            .spec
            .iter_mut()
            .flat_map(|spec| spec.containers.iter_mut())
        {
            container.env = Some(vec![EnvVar {
                name: "BENCH_SCHEDULE".to_string(),
                value: Some(name.to_string()),
                value_from: None,
            }]);
        }
    }
    template
}

/// The Schedule for one planned entry, in `namespace`.
pub fn schedule_for(planned: &PlannedSchedule, namespace: &str, run_id: &str, pod: &BenchPod) -> Schedule {
    let mut schedule = Schedule::new(
        &planned.name,
        ScheduleSpec {
            trigger: planned.trigger(),
            coalesce: CoalescePolicy::Latest,
            // Keep as few finished runs as possible: the load test measures firing, not storage.
            successful_runs_history_limit: Some(1),
            failed_runs_history_limit: Some(1),
            job_template: Some(JobTemplate {
                metadata: Some(TemplateMeta {
                    labels: bench_labels(run_id),
                    annotations: BTreeMap::new(),
                }),
                spec: JobRunTemplate {
                    template: Some(schedule_template(pod, run_id, &planned.name).into()),
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(pod.active_deadline_seconds),
                    ..JobRunTemplate::default()
                },
            }),
            ..ScheduleSpec::default()
        },
    );
    schedule.metadata.namespace = Some(namespace.to_string());
    schedule.metadata.labels = Some(bench_labels(run_id));
    schedule
}

/// The CronJob that does what a minute-level Schedule does, as closely as CronJob can: its
/// schedule has no seconds field, so all CronJobs fire at second 0 of each minute.
pub fn cronjob_for(name: &str, namespace: &str, run_id: &str, pod: &BenchPod) -> CronJob {
    CronJob {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(bench_labels(run_id)),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: "* * * * *".to_string(),
            concurrency_policy: Some("Allow".to_string()),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(1),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(bench_labels(run_id)),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    template: pod_template(pod, run_id),
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(pod.active_deadline_seconds),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A metav1 Time (a jiff timestamp since kube 5) as chrono, which the rest of the bench uses.
pub fn chrono_time(t: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.0.as_millisecond())
}

/// A watched JobRun as an observation; `None` for one that is not a scheduled run (no uid,
/// fire time or schedule).
pub fn jobrun_seen(run: &JobRun, seen: DateTime<Utc>) -> Option<RunSeen> {
    let source = run
        .spec
        .schedule_name
        .clone()
        .or_else(|| run.metadata.labels.as_ref()?.get(SCHEDULE_LABEL).cloned())?;
    Some(RunSeen {
        uid: run.metadata.uid.clone()?,
        name: run.metadata.name.clone()?,
        source,
        fire_time: run.spec.fire_time?,
        created: run.metadata.creation_timestamp.as_ref().and_then(chrono_time),
        seen,
        phase: run
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| p.as_str().to_string()),
    })
}

/// The time a CronJob scheduled a Job for: its scheduled-timestamp annotation, or else (before
/// Kubernetes 1.28) the name's suffix, which the CronJob controller makes the scheduled time in
/// minutes since the epoch.
pub fn cronjob_scheduled_time(
    annotations: Option<&BTreeMap<String, String>>,
    name: &str,
) -> Option<DateTime<Utc>> {
    let annotated = annotations
        .and_then(|a| a.get(CRONJOB_SCHEDULED_ANNOTATION))
        .and_then(|value| DateTime::parse_from_rfc3339(value).ok());
    if let Some(t) = annotated {
        return Some(t.to_utc());
    }
    let minutes: i64 = name.rsplit_once('-')?.1.parse().ok()?;
    DateTime::from_timestamp(minutes.checked_mul(60)?, 0)
}

/// A Job's state in JobRun's vocabulary, so both report columns count the same phases.
pub fn job_phase(status: Option<&JobStatus>) -> Option<String> {
    let status = status?;
    let has = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == kind && c.status == "True")
    };
    let phase = if has("Complete") {
        "Succeeded"
    } else if has("Failed") {
        "Failed"
    } else if status.active.unwrap_or(0) > 0 {
        "Running"
    } else {
        "Pending"
    };
    Some(phase.to_string())
}

/// A watched Job of a bench CronJob as an observation; `None` for a Job no CronJob owns.
pub fn job_seen(job: &Job, seen: DateTime<Utc>) -> Option<RunSeen> {
    let name = job.metadata.name.clone()?;
    let source = job
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "CronJob")?
        .name
        .clone();
    Some(RunSeen {
        uid: job.metadata.uid.clone()?,
        fire_time: cronjob_scheduled_time(job.metadata.annotations.as_ref(), &name)?,
        name,
        source,
        created: job.metadata.creation_timestamp.as_ref().and_then(chrono_time),
        seen,
        phase: job_phase(job.status.as_ref()),
    })
}

/// Which controller's run a pod belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodOwner {
    /// A horolog JobRun.
    JobRun,
    /// A Job (of a CronJob).
    Job,
}

/// A watched pod as an observation, with whose run it is; `None` for a pod of neither.
pub fn pod_seen(pod: &Pod, seen: DateTime<Utc>) -> Option<(PodOwner, PodSeen)> {
    let labels = pod.metadata.labels.as_ref()?;
    let (owner, run) = if let Some(run) = labels.get(JOBRUN_LABEL) {
        (PodOwner::JobRun, run)
    } else {
        let job = labels
            .get(JOB_NAME_LABEL)
            .or_else(|| labels.get(LEGACY_JOB_NAME_LABEL))?;
        (PodOwner::Job, job)
    };
    Some((
        owner,
        PodSeen {
            uid: pod.metadata.uid.clone()?,
            run: run.clone(),
            created: pod.metadata.creation_timestamp.as_ref().and_then(chrono_time),
            seen,
        },
    ))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use k8s_openapi::api::batch::v1::JobCondition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;
    use crate::load::fires::FirePattern;
    use crate::load::mix::ScheduleKind;
    use horolog::api::{JobRunPhase, JobRunSpec, JobRunStatus};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .expect("test time parses")
    }

    fn pod() -> BenchPod {
        BenchPod {
            image: "busybox:1.36".into(),
            active_deadline_seconds: 60,
            distinct_templates: false,
        }
    }

    fn time(s: &str) -> Time {
        Time(s.parse().expect("test timestamp parses"))
    }

    #[test]
    fn schedule_carries_the_bench_label_down_to_its_pods() {
        let planned = PlannedSchedule {
            name: "bx-c3".into(),
            kind: ScheduleKind::EveryMinuteCron,
            pattern: FirePattern::MinutelyAt {
                second: 3,
                start: at("2026-01-01T00:00:00Z"),
            },
        };
        let s = schedule_for(&planned, "bench", "x1", &pod());
        let label = |m: Option<&BTreeMap<String, String>>| m.and_then(|l| l.get(BENCH_LABEL)).cloned();
        assert_eq!(label(s.metadata.labels.as_ref()), Some("x1".into()));
        let job_template = s.spec.job_template.clone().unwrap_or_default();
        assert_eq!(
            label(job_template.metadata.as_ref().map(|m| &m.labels)),
            Some("x1".into())
        );
        let template = job_template.spec.template.clone().unwrap_or_default();
        assert_eq!(
            label(template.metadata.as_ref().and_then(|m| m.labels.as_ref())),
            Some("x1".into())
        );
        assert_eq!(s.metadata.namespace.as_deref(), Some("bench"));
        assert_eq!(s.spec.trigger.cron.as_deref(), Some("3 * * * * *"));
        assert_eq!(job_template.spec.active_deadline_seconds, Some(60));
    }

    #[test]
    fn distinct_templates_differ_by_the_schedule_name_only() {
        let planned = |name: &str| PlannedSchedule {
            name: name.into(),
            kind: ScheduleKind::EveryMinuteCron,
            pattern: FirePattern::MinutelyAt {
                second: 3,
                start: at("2026-01-01T00:00:00Z"),
            },
        };
        let template = |name: &str, distinct: bool| {
            let pod = BenchPod {
                distinct_templates: distinct,
                ..pod()
            };
            let schedule = schedule_for(&planned(name), "bench", "x1", &pod);
            schedule.spec.job_template.and_then(|t| t.spec.template)
        };
        assert_eq!(template("bx-c1", false), template("bx-c2", false));
        assert_ne!(template("bx-c1", true), template("bx-c2", true));
        let env = template("bx-c1", true)
            .and_then(|t| t.spec.clone())
            .and_then(|s| s.containers.first().and_then(|c| c.env.clone()));
        assert_eq!(
            env.unwrap_or_default().first().and_then(|v| v.value.clone()),
            Some("bx-c1".to_string())
        );
    }

    #[test]
    fn cronjob_fires_every_minute_with_the_same_pod() {
        let c = cronjob_for("bx-cj1", "bench", "x1", &pod());
        let spec = c.spec.expect("cronjob has a spec");
        assert_eq!(spec.schedule, "* * * * *");
        let job = spec.job_template.spec.expect("job template has a spec");
        assert_eq!(job.template, pod_template(&pod(), "x1"));
    }

    #[test]
    fn cronjob_scheduled_time_prefers_the_annotation_and_falls_back_to_the_name() {
        let annotated = BTreeMap::from([(
            CRONJOB_SCHEDULED_ANNOTATION.to_string(),
            "2026-01-01T00:01:00Z".to_string(),
        )]);
        let garbled = BTreeMap::from([(CRONJOB_SCHEDULED_ANNOTATION.to_string(), "soon".to_string())]);
        let cases = [
            (Some(&annotated), "bx-cj1-999", Some(at("2026-01-01T00:01:00Z"))),
            // 29453780 minutes since the epoch = 2026-01-01T00:20:00Z.
            (None, "bx-cj1-29453780", Some(at("2026-01-01T00:20:00Z"))),
            (
                Some(&garbled),
                "bx-cj1-29453780",
                Some(at("2026-01-01T00:20:00Z")),
            ),
            (None, "handmade", None),
            (None, "bx-cj1-x", None),
        ];
        for (annotations, name, want) in cases {
            assert_eq!(cronjob_scheduled_time(annotations, name), want, "{name}");
        }
    }

    #[test]
    fn job_phase_maps_job_conditions_to_jobrun_phases() {
        let condition = |kind: &str, status: &str| JobCondition {
            type_: kind.into(),
            status: status.into(),
            ..Default::default()
        };
        let cases = [
            (None, None),
            (Some(JobStatus::default()), Some("Pending")),
            (
                Some(JobStatus {
                    active: Some(1),
                    ..Default::default()
                }),
                Some("Running"),
            ),
            (
                Some(JobStatus {
                    conditions: Some(vec![condition("Complete", "True")]),
                    ..Default::default()
                }),
                Some("Succeeded"),
            ),
            (
                Some(JobStatus {
                    conditions: Some(vec![condition("Complete", "False"), condition("Failed", "True")]),
                    ..Default::default()
                }),
                Some("Failed"),
            ),
        ];
        for (status, want) in cases {
            assert_eq!(job_phase(status.as_ref()).as_deref(), want, "{status:?}");
        }
    }

    fn jobrun(uid: Option<&str>, fire_time: Option<&str>) -> JobRun {
        let mut run = JobRun::new(
            "bx-c3-1767225603",
            JobRunSpec {
                schedule_name: Some("bx-c3".into()),
                fire_time: fire_time.map(at),
                ..JobRunSpec::default()
            },
        );
        run.metadata.uid = uid.map(str::to_string);
        run.metadata.creation_timestamp = Some(time("2026-01-01T00:00:04Z"));
        run.status = Some(JobRunStatus {
            phase: Some(JobRunPhase::Running),
            ..Default::default()
        });
        run
    }

    #[test]
    fn jobrun_becomes_an_observation_only_with_uid_and_fire_time() {
        let seen = at("2026-01-01T00:00:04.250Z");
        let observed =
            jobrun_seen(&jobrun(Some("u1"), Some("2026-01-01T00:00:03Z")), seen).expect("complete run");
        assert_eq!(observed.source, "bx-c3");
        assert_eq!(observed.fire_time, at("2026-01-01T00:00:03Z"));
        assert_eq!(observed.created, Some(at("2026-01-01T00:00:04Z")));
        assert_eq!(observed.seen - observed.fire_time, TimeDelta::milliseconds(1250));
        assert_eq!(observed.phase.as_deref(), Some("Running"));
        assert_eq!(
            jobrun_seen(&jobrun(None, Some("2026-01-01T00:00:03Z")), seen),
            None
        );
        assert_eq!(jobrun_seen(&jobrun(Some("u1"), None), seen), None);
    }

    #[test]
    fn job_without_a_cronjob_owner_is_not_an_observation() {
        let mut job = Job {
            metadata: ObjectMeta {
                name: Some("bx-cj0-29453780".into()),
                uid: Some("j1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(job_seen(&job, at("2026-01-01T00:20:01Z")), None);
        job.metadata.owner_references = Some(vec![OwnerReference {
            kind: "CronJob".into(),
            name: "bx-cj0".into(),
            ..Default::default()
        }]);
        let observed = job_seen(&job, at("2026-01-01T00:20:01Z")).expect("owned job");
        assert_eq!(observed.source, "bx-cj0");
        assert_eq!(observed.fire_time, at("2026-01-01T00:20:00Z"));
    }

    #[test]
    fn pod_is_attributed_to_its_jobrun_or_job_by_label() {
        let pod_with = |labels: &[(&str, &str)]| Pod {
            metadata: ObjectMeta {
                uid: Some("p".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                creation_timestamp: Some(time("2026-01-01T00:00:05Z")),
                ..Default::default()
            },
            ..Default::default()
        };
        let seen = at("2026-01-01T00:00:05.5Z");
        let cases = [
            (
                vec![(JOBRUN_LABEL, "r1"), (SCHEDULE_LABEL, "s")],
                Some((PodOwner::JobRun, "r1")),
            ),
            (vec![(JOB_NAME_LABEL, "j1")], Some((PodOwner::Job, "j1"))),
            (vec![(LEGACY_JOB_NAME_LABEL, "j2")], Some((PodOwner::Job, "j2"))),
            (vec![(BENCH_LABEL, "x1")], None),
        ];
        for (labels, want) in cases {
            let got = pod_seen(&pod_with(&labels), seen);
            assert_eq!(
                got.as_ref().map(|(o, p)| (*o, p.run.as_str())),
                want,
                "{labels:?}"
            );
            if let Some((_, p)) = got {
                assert_eq!(p.created, Some(at("2026-01-01T00:00:05Z")));
            }
        }
    }
}
