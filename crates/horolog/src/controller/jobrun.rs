//! The JobRun reconciler: hold a run until its fire time + jitter, check its start deadline
//! and its Schedule's maxRunningJobs, create its Pod, retry up to backoffLimit, follow the
//! Pod into the run's status, and delete the run `resultTTL` after it finished.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::{Context, Error, is_already_exists, is_not_found};
use crate::api::{ConcurrencyPolicy, JobRun, JobRunPhase, JobRunStatus, Schedule};
use crate::pod::{PodProgress, PodReport, pod_for, pod_report};

/// The phase of a run; a run without status is Pending.
pub fn phase_of(run: &JobRun) -> JobRunPhase {
    run.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// The scheduled fire time of a run; one-off runs fire at their creation time.
pub fn fire_time_of(run: &JobRun) -> DateTime<Utc> {
    run.spec
        .fire_time
        .or_else(|| {
            run.meta()
                .creation_timestamp
                .as_ref()
                .and_then(crate::pod::chrono_time)
        })
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The earliest instant the run's Pod may start: fire time + jitter.
pub fn not_before(run: &JobRun) -> DateTime<Utc> {
    fire_time_of(run) + run.spec.jitter.map(|j| j.as_chrono()).unwrap_or_default()
}

/// True once the run has a Pod (it occupies one of its Schedule's running slots).
fn is_started(run: &JobRun) -> bool {
    run.status.as_ref().is_some_and(|s| s.pod_name.is_some())
}

/// What maxRunningJobs lets a run that is due do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start now.
    Start,
    /// Wait for a slot (concurrencyPolicy Wait); `running` runs hold the `limit` slots.
    Wait {
        /// Runs holding a slot.
        running: usize,
        /// maxRunningJobs.
        limit: usize,
    },
    /// Drop the run (concurrencyPolicy Skip).
    Skip {
        /// Runs holding a slot.
        running: usize,
        /// maxRunningJobs.
        limit: usize,
    },
    /// Cancel these running runs (oldest first), then start (concurrencyPolicy Replace).
    Replace(Vec<String>),
}

/// Decides whether a due run may start. `occupying` are the runs holding a slot (with fire
/// time), `ahead` how many due runs of the same Schedule are older and still waiting (they
/// get slots first: FIFO by fire time, as APScheduler's job queue). Pure.
pub fn admit(
    limit: Option<i32>,
    policy: ConcurrencyPolicy,
    mut occupying: Vec<(DateTime<Utc>, String)>,
    ahead: usize,
) -> Admission {
    let Some(limit) = limit else {
        return Admission::Start;
    };
    let limit = limit.max(1) as usize;
    let running = occupying.len();
    let free = limit.saturating_sub(running);
    if ahead < free {
        return Admission::Start;
    }
    match policy {
        ConcurrencyPolicy::Wait => Admission::Wait { running, limit },
        ConcurrencyPolicy::Skip => Admission::Skip { running, limit },
        ConcurrencyPolicy::Replace => {
            occupying.sort();
            let excess = (running + 1).saturating_sub(limit);
            Admission::Replace(occupying.into_iter().take(excess).map(|(_, name)| name).collect())
        }
    }
}

/// A finished status for `run`.
fn finished(
    old: &JobRunStatus,
    phase: JobRunPhase,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> JobRunStatus {
    let completion_time = old.completion_time.unwrap_or(now);
    JobRunStatus {
        phase: Some(phase),
        reason: Some(reason.to_string()),
        message: Some(message),
        completion_time: Some(completion_time),
        duration: old
            .start_time
            .map(|start| format_duration(completion_time - start)),
        ..old.clone()
    }
}

fn format_duration(delta: TimeDelta) -> String {
    crate::api::Duration::from(delta.to_std().unwrap_or_default()).to_string()
}

/// What a Pod's report makes of a started run.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The new status; the run goes on (or has finished, if the phase is final).
    Status(JobRunStatus),
    /// The attempt failed and retries are left: create attempt `attempt`.
    Retry {
        /// The next attempt number (1-based).
        attempt: i32,
        /// Why the previous attempt failed.
        why: String,
    },
}

/// The run's status after its Pod reported `report` (`None`: the Pod is gone). Pure.
pub fn progress(run: &JobRun, report: Option<&PodReport>, now: DateTime<Utc>) -> Progress {
    let old = run.status.clone().unwrap_or_default();
    let attempts = old.attempts.unwrap_or(1);
    let retries_left = attempts <= run.spec.run.backoff_limit.unwrap_or(0);
    let pod = old.pod_name.clone().unwrap_or_default();
    let Some(report) = report else {
        let why = format!("pod {pod} was deleted before it finished");
        if retries_left {
            return Progress::Retry {
                attempt: attempts + 1,
                why,
            };
        }
        return Progress::Status(finished(&old, JobRunPhase::Failed, "PodDeleted", why, now));
    };
    let with_pod_facts = JobRunStatus {
        start_time: old.start_time.or(report.start_time),
        exit_code: report.exit_code.or(old.exit_code),
        result: report.result.clone().or(old.result.clone()),
        ..old.clone()
    };
    match report.progress {
        PodProgress::Pending => Progress::Status(JobRunStatus {
            phase: Some(JobRunPhase::Pending),
            reason: report.reason.clone(),
            message: report.message.clone(),
            ..with_pod_facts
        }),
        PodProgress::Running => Progress::Status(JobRunStatus {
            phase: Some(JobRunPhase::Running),
            start_time: with_pod_facts.start_time.or(Some(now)),
            reason: None,
            message: None,
            ..with_pod_facts
        }),
        PodProgress::Succeeded => {
            let status = JobRunStatus {
                completion_time: report.completion_time.or(Some(now)),
                ..with_pod_facts
            };
            Progress::Status(finished(
                &status,
                JobRunPhase::Succeeded,
                "Completed",
                format!("pod {pod} exited 0"),
                now,
            ))
        }
        PodProgress::Failed => {
            let reason = report.reason.clone().unwrap_or_else(|| "Error".to_string());
            let mut why = match report.exit_code {
                Some(code) => format!("pod {pod} failed with exit code {code} ({reason})"),
                None => format!("pod {pod} failed ({reason})"),
            };
            if let Some(message) = &report.message {
                why.push_str(": ");
                why.push_str(message);
            }
            if retries_left {
                return Progress::Retry {
                    attempt: attempts + 1,
                    why,
                };
            }
            let status = JobRunStatus {
                completion_time: report.completion_time.or(Some(now)),
                ..with_pod_facts
            };
            Progress::Status(finished(&status, JobRunPhase::Failed, &reason, why, now))
        }
    }
}

/// Reconciles one JobRun.
#[instrument(skip(run, ctx), fields(jobrun = %run.name_any(), namespace = %run.namespace().unwrap_or_default(), schedule = run.spec.schedule_name.as_deref().unwrap_or("")))]
pub async fn reconcile(run: Arc<JobRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&run, &ctx).await;
    if let Some(observer) = &ctx.config.observer {
        observer.reconciled("jobrun", started.elapsed(), result.is_ok());
    }
    if result.is_ok() {
        ctx.succeeded(&format!(
            "JobRun/{}/{}",
            run.namespace().unwrap_or_default(),
            run.name_any()
        ));
    }
    result
}

async fn reconcile_inner(run: &JobRun, ctx: &Context) -> Result<Action, Error> {
    if run.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.behind_own_write(run) {
        return Ok(Action::requeue(super::BEHIND_OWN_WRITE_RECHECK));
    }
    if phase_of(run).is_finished() {
        release_claim(run, ctx);
        return expire(run, ctx).await;
    }
    if is_started(run) {
        follow(run, ctx).await
    } else {
        start(run, ctx).await
    }
}

/// A finished run: delete it `resultTTL` after completion, or wait until then.
async fn expire(run: &JobRun, ctx: &Context) -> Result<Action, Error> {
    let (Some(ttl), Some(done)) = (
        run.spec.run.result_ttl,
        run.status.as_ref().and_then(|s| s.completion_time),
    ) else {
        return Ok(Action::await_change());
    };
    let expires = done + ttl.as_chrono();
    let now = ctx.now();
    if now < expires {
        return Ok(Action::requeue((expires - now).to_std().unwrap_or_default()));
    }
    info!(expired_at = %expires, "deleting JobRun: resultTTL passed");
    let namespace = run.namespace().unwrap_or_default();
    let api: Api<JobRun> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.delete(&run.name_any(), &DeleteParams::background()).await {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        Err(err) => Err(Error::api("delete", "JobRun", &namespace, &run.name_any(), err)),
    }
}

/// A run without a Pod: missed, not yet, waiting, skipped, or started now.
async fn start(run: &JobRun, ctx: &Context) -> Result<Action, Error> {
    let now = ctx.now();
    let old = run.status.clone().unwrap_or_default();
    let namespace = run.namespace().unwrap_or_default();

    if let Some(deadline) = run.spec.start_deadline
        && deadline < now
    {
        release_claim(run, ctx);
        let message = format!(
            "could not start by its start deadline {} (fire time {} + misfireGraceTime)",
            deadline.to_rfc3339(),
            fire_time_of(run).to_rfc3339()
        );
        info!(fire_time = %fire_time_of(run), %deadline, "missed");
        let status = finished(
            &old,
            JobRunPhase::Missed,
            "MissedStartDeadline",
            message.clone(),
            now,
        );
        ctx.patch_status(run, &old, &status).await?;
        ctx.event(run, EventType::Warning, "Missed", message).await;
        bump_schedule_counter(ctx, run, "missedFireTimes").await;
        observe_finished(ctx, &namespace, JobRunPhase::Missed);
        return expire_after(run, &status, ctx);
    }

    let not_before = not_before(run);
    if now < not_before {
        let status = JobRunStatus {
            phase: Some(JobRunPhase::Pending),
            reason: Some("Jitter".into()),
            message: Some(format!(
                "starts at {} (fire time + jitter)",
                not_before.to_rfc3339()
            )),
            ..old.clone()
        };
        ctx.patch_status(run, &old, &status).await?;
        return Ok(Action::requeue((not_before - now).to_std().unwrap_or_default()));
    }

    let schedule = run
        .spec
        .schedule_name
        .as_deref()
        .and_then(|name| ctx.schedule(&namespace, name));
    let admission = match &schedule {
        Some(schedule) => admit_with_claims(run, schedule, ctx, now),
        None => Admission::Start,
    };
    match admission {
        Admission::Start => {}
        Admission::Wait { running, limit } => {
            info!(fire_time = %fire_time_of(run), running, limit, "waiting for a slot");
            let until = match run.spec.start_deadline {
                Some(deadline) => format!("until its start deadline {}", deadline.to_rfc3339()),
                None => "with no deadline".to_string(),
            };
            let status = JobRunStatus {
                phase: Some(JobRunPhase::Waiting),
                reason: Some("MaxRunningJobs".into()),
                message: Some(format!(
                    "{running} of maxRunningJobs {limit} running; waiting for a slot {until}"
                )),
                ..old.clone()
            };
            ctx.patch_status(run, &old, &status).await?;
            // A freed slot triggers us through the sibling's watch event; the deadline does not.
            return Ok(match run.spec.start_deadline {
                Some(deadline) => Action::requeue(
                    (deadline - now + TimeDelta::milliseconds(1))
                        .to_std()
                        .unwrap_or_default(),
                ),
                None => Action::await_change(),
            });
        }
        Admission::Skip { running, limit } => {
            let message =
                format!("{running} of maxRunningJobs {limit} running; concurrencyPolicy Skip drops this run");
            info!(fire_time = %fire_time_of(run), running, limit, "skipped");
            let status = finished(
                &old,
                JobRunPhase::Skipped,
                "ConcurrencyPolicySkip",
                message.clone(),
                now,
            );
            ctx.patch_status(run, &old, &status).await?;
            ctx.event(run, EventType::Normal, "Skipped", message).await;
            bump_schedule_counter(ctx, run, "skippedRuns").await;
            observe_finished(ctx, &namespace, JobRunPhase::Skipped);
            return expire_after(run, &status, ctx);
        }
        Admission::Replace(victims) => {
            for victim in victims {
                cancel(ctx, &namespace, &victim, &run.name_any(), now).await?;
            }
        }
    }

    let attempt = old.attempts.unwrap_or(0) + 1;
    create_attempt(run, ctx, attempt, None).await
}

/// Checks maxRunningJobs and, when the run may start, takes its slot in one step.
fn admit_with_claims(run: &JobRun, schedule: &Schedule, ctx: &Context, now: DateTime<Utc>) -> Admission {
    let namespace = run.namespace().unwrap_or_default();
    let me = run.name_any();
    let my_key = (fire_time_of(run), me.clone());
    let siblings = ctx.runs_of(schedule);
    ctx.with_claims(&namespace, &schedule.name_any(), |claims| {
        // A claim is only needed until the cache shows the run started (or gone, or finished).
        claims.retain(|name| {
            siblings
                .iter()
                .any(|s| &s.name_any() == name && !is_started(s) && !phase_of(s).is_finished())
        });
        let claimed: HashSet<String> = claims.iter().cloned().collect();
        let occupying: Vec<(DateTime<Utc>, String)> = siblings
            .iter()
            .filter(|s| s.name_any() != me && !phase_of(s).is_finished())
            .filter(|s| is_started(s) || claimed.contains(&s.name_any()))
            .map(|s| (fire_time_of(s), s.name_any()))
            .collect();
        let ahead = siblings
            .iter()
            .filter(|s| !is_started(s) && !phase_of(s).is_finished() && !claimed.contains(&s.name_any()))
            .filter(|s| not_before(s) <= now && s.spec.start_deadline.is_none_or(|d| d >= now))
            .filter(|s| (fire_time_of(s), s.name_any()) < my_key)
            .count();
        let admission = admit(
            schedule.spec.max_running_jobs,
            schedule.spec.concurrency_policy,
            occupying,
            ahead,
        );
        if matches!(admission, Admission::Start | Admission::Replace(_)) {
            if let Admission::Replace(victims) = &admission {
                for victim in victims {
                    claims.remove(victim);
                }
            }
            claims.insert(me.clone());
        }
        admission
    })
}

fn release_claim(run: &JobRun, ctx: &Context) {
    if let (Some(namespace), Some(schedule)) = (run.namespace(), run.spec.schedule_name.as_deref()) {
        ctx.with_claims(&namespace, schedule, |claims| claims.remove(&run.name_any()));
    }
}

/// Creates the Pod of `attempt` and records it. A template the API server rejects is the
/// user's mistake: the run fails with the server's message instead of retrying forever.
async fn create_attempt(
    run: &JobRun,
    ctx: &Context,
    attempt: i32,
    previous_failure: Option<String>,
) -> Result<Action, Error> {
    let now = ctx.now();
    let old = run.status.clone().unwrap_or_default();
    let namespace = run.namespace().unwrap_or_default();
    let pod = pod_for(run, attempt)?;
    let pod_name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    match api
        .create(
            &PostParams {
                field_manager: Some(super::MANAGER.into()),
                ..PostParams::default()
            },
            &pod,
        )
        .await
    {
        Ok(_) => {}
        Err(err) if is_already_exists(&err) => {}
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422) => {
            release_claim(run, ctx);
            let message = format!(
                "spec.template: the API server rejected pod {pod_name}: {}",
                status.message
            );
            let status = finished(
                &old,
                JobRunPhase::Failed,
                "InvalidPodTemplate",
                message.clone(),
                now,
            );
            ctx.patch_status(run, &old, &status).await?;
            ctx.event(run, EventType::Warning, "Failed", message).await;
            observe_finished(ctx, &namespace, JobRunPhase::Failed);
            return expire_after(run, &status, ctx);
        }
        Err(err) => {
            release_claim(run, ctx);
            return Err(Error::api("create", "Pod", &namespace, &pod_name, err));
        }
    }
    info!(fire_time = %fire_time_of(run), pod = %pod_name, attempt, "pod created");
    if attempt == 1
        && let Some(observer) = &ctx.config.observer
    {
        observer.pod_created(ctx.now() - not_before(run));
    }
    let (reason, message) = match &previous_failure {
        Some(why) => (
            Some("Retrying".to_string()),
            Some(format!("attempt {} failed: {why}", attempt - 1)),
        ),
        None => (None, None),
    };
    let status = JobRunStatus {
        phase: Some(if old.phase == Some(JobRunPhase::Running) {
            JobRunPhase::Running
        } else {
            JobRunPhase::Pending
        }),
        pod_name: Some(pod_name.clone()),
        attempts: Some(attempt),
        reason,
        message,
        ..old.clone()
    };
    ctx.patch_status(run, &old, &status).await?;
    let note = match previous_failure {
        Some(why) => format!(
            "created pod {pod_name} (attempt {attempt}; attempt {} failed: {why})",
            attempt - 1
        ),
        None => format!("created pod {pod_name}"),
    };
    ctx.event(run, EventType::Normal, "PodCreated", note).await;
    Ok(Action::await_change())
}

/// A started run: map its Pod's status, retry, or finish.
async fn follow(run: &JobRun, ctx: &Context) -> Result<Action, Error> {
    let now = ctx.now();
    let old = run.status.clone().unwrap_or_default();
    let namespace = run.namespace().unwrap_or_default();
    let pod_name = old.pod_name.clone().unwrap_or_default();
    let cached = ctx
        .pod(&namespace, &pod_name)
        .or_else(|| ctx.take_finished_pod(&namespace, &pod_name));
    let pod = match cached {
        Some(pod) => Some(pod),
        // The cache may not have seen a pod we just created: ask before calling it deleted.
        None => match Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&pod_name)
            .await
        {
            Ok(pod) => pod.map(Arc::new),
            Err(err) => return Err(Error::api("get", "Pod", &namespace, &pod_name, err)),
        },
    };
    let report = pod.as_deref().map(pod_report);
    match progress(run, report.as_ref(), now) {
        Progress::Retry { attempt, why } => {
            warn!(fire_time = %fire_time_of(run), attempt, %why, "attempt failed; retrying");
            create_attempt(run, ctx, attempt, Some(why)).await
        }
        Progress::Status(status) => {
            ctx.patch_status(run, &old, &status).await?;
            let phase = status.phase.unwrap_or_default();
            if old.phase != status.phase {
                match phase {
                    JobRunPhase::Running => {
                        info!(fire_time = %fire_time_of(run), pod = %pod_name, "started");
                        ctx.event(
                            run,
                            EventType::Normal,
                            "Started",
                            format!("pod {pod_name} is running"),
                        )
                        .await;
                    }
                    JobRunPhase::Succeeded => {
                        let result = status
                            .result
                            .as_deref()
                            .map(|r| format!("; result: {}", r.trim()))
                            .unwrap_or_default();
                        let took = status
                            .duration
                            .as_deref()
                            .map(|d| format!(" in {d}"))
                            .unwrap_or_default();
                        info!(fire_time = %fire_time_of(run), "succeeded");
                        ctx.event(
                            run,
                            EventType::Normal,
                            "Succeeded",
                            format!("pod {pod_name} exited 0{took}{result}"),
                        )
                        .await;
                    }
                    JobRunPhase::Failed => {
                        info!(fire_time = %fire_time_of(run), reason = ?status.reason, "failed");
                        let message = status.message.clone().unwrap_or_default();
                        ctx.event(run, EventType::Warning, "Failed", message).await;
                    }
                    _ => {}
                }
                if phase.is_finished() {
                    observe_finished(ctx, &namespace, phase);
                }
            }
            if phase.is_finished() {
                expire_after(run, &status, ctx)
            } else {
                Ok(Action::await_change())
            }
        }
    }
}

/// After finishing: requeue at the resultTTL instant, if any.
fn expire_after(run: &JobRun, status: &JobRunStatus, ctx: &Context) -> Result<Action, Error> {
    let (Some(ttl), Some(done)) = (run.spec.run.result_ttl, status.completion_time) else {
        return Ok(Action::await_change());
    };
    Ok(Action::requeue(
        (done + ttl.as_chrono() - ctx.now()).to_std().unwrap_or_default(),
    ))
}

/// Cancels the running run `name` (concurrencyPolicy Replace): status Cancelled, pod deleted.
async fn cancel(
    ctx: &Context,
    namespace: &str,
    name: &str,
    replaced_by: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(victim) = ctx
        .jobruns
        .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    else {
        return Ok(());
    };
    let old = victim.status.clone().unwrap_or_default();
    let message = format!("replaced by {replaced_by} (concurrencyPolicy Replace)");
    info!(run = %name, %replaced_by, "cancelling");
    let status = finished(&old, JobRunPhase::Cancelled, "Replaced", message.clone(), now);
    ctx.patch_status(victim.as_ref(), &old, &status).await?;
    if let Some(pod) = &old.pod_name {
        match Api::<Pod>::namespaced(ctx.client.clone(), namespace)
            .delete(pod, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(Error::api("delete", "Pod", namespace, pod, err)),
        }
    }
    ctx.event(victim.as_ref(), EventType::Normal, "Cancelled", message)
        .await;
    observe_finished(ctx, namespace, JobRunPhase::Cancelled);
    Ok(())
}

fn observe_finished(ctx: &Context, namespace: &str, phase: JobRunPhase) {
    if let Some(observer) = &ctx.config.observer {
        observer.finished(namespace, phase.as_str());
    }
}

/// Adds one to a counter of the run's Schedule status (`missedFireTimes`, `skippedRuns`).
/// Read-modify-write with the resourceVersion as precondition, so concurrent writers never
/// lose an increment; gives up (with a log line) after a few conflicts — a counter is not
/// worth failing the run's own reconcile, whose status is already written.
async fn bump_schedule_counter(ctx: &Context, run: &JobRun, field: &'static str) {
    let (Some(namespace), Some(name)) = (run.namespace(), run.spec.schedule_name.clone()) else {
        return;
    };
    let api: Api<Schedule> = Api::namespaced(ctx.client.clone(), &namespace);
    for _ in 0..5 {
        let schedule = match api.get_opt(&name).await {
            Ok(Some(schedule)) => schedule,
            Ok(None) => return,
            Err(err) => {
                warn!(field, error = %err, "could not read the Schedule to count this run");
                return;
            }
        };
        let status = schedule.status.clone().unwrap_or_default();
        let value = match field {
            "skippedRuns" => status.skipped_runs,
            _ => status.missed_fire_times,
        } + 1;
        let body = json!({
            "metadata": {"resourceVersion": schedule.resource_version()},
            "status": {field: value},
        });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(err) => {
                warn!(field, error = %err, "could not count this run on its Schedule");
                return;
            }
        }
    }
    warn!(
        field,
        "gave up counting this run on its Schedule after repeated conflicts"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap_or_default()
    }

    fn running(names: &[(i64, &str)]) -> Vec<(DateTime<Utc>, String)> {
        names
            .iter()
            .map(|(at, name)| (t(*at), name.to_string()))
            .collect()
    }

    #[test]
    fn without_max_running_jobs_every_run_starts() {
        assert_eq!(
            admit(None, ConcurrencyPolicy::Skip, running(&[(0, "a"), (1, "b")]), 5),
            Admission::Start
        );
    }

    #[test]
    fn a_free_slot_goes_to_the_oldest_waiting_run_first() {
        assert_eq!(
            admit(Some(2), ConcurrencyPolicy::Wait, running(&[(0, "a")]), 0),
            Admission::Start
        );
        assert_eq!(
            admit(Some(2), ConcurrencyPolicy::Wait, running(&[(0, "a")]), 1),
            Admission::Wait { running: 1, limit: 2 }
        );
    }

    #[test]
    fn at_the_limit_skip_drops_and_replace_cancels_the_oldest() {
        let busy = running(&[(60, "b"), (0, "a")]);
        assert_eq!(
            admit(Some(2), ConcurrencyPolicy::Skip, busy.clone(), 0),
            Admission::Skip { running: 2, limit: 2 }
        );
        assert_eq!(
            admit(Some(2), ConcurrencyPolicy::Replace, busy, 0),
            Admission::Replace(vec!["a".into()])
        );
    }
}
