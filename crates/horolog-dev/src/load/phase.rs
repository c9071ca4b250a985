//! One phase of a bench: one scheduler (horolog, or the CronJob controller), its objects
//! created, a warmup, the observation window with the write counters read at its edges, the
//! drain, and the summary.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::sync::watch;

use horolog::api::{JobRun, Schedule};

use super::fires::{FirePattern, Window};
use super::mix::{IntervalRange, plan_schedules};
use super::objects::{self, BENCH_LABEL, BenchPod, PodOwner};
use super::process::{self, ProcSample};
use super::report::WindowReport;
use super::runs::{self, PodSeen, RunSeen, RunSummary, Source};
use super::writes::{WriteCounts, WritesPerRun};
use super::{BenchArgs, LoadTestError, cluster, next_whole_second, sample};

/// Which scheduler a phase of the bench loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// horolog's Schedules, JobRuns and Pods.
    Horolog,
    /// batch/v1 CronJobs, Jobs and Pods (`--compare-cronjob`).
    CronJob,
}

/// What one phase (one scheduler, one window) measured.
pub(super) struct Phase {
    pub(super) summary: RunSummary,
    pub(super) window: WindowReport,
    pub(super) created: cluster::Created,
    /// Schedules created, by kind (none in the CronJob phase).
    pub(super) kinds: BTreeMap<String, usize>,
    /// The operator's /proc samples: creating, window start, window end (horolog's phase).
    pub(super) samples: [Option<ProcSample>; 3],
    pub(super) notes: Vec<String>,
}

/// Where the counters behind writes per run are read.
pub(super) struct Counters<'a> {
    pub(super) client: &'a Client,
    /// `host:port` of the operator's metrics server, when known.
    pub(super) operator: Option<&'a str>,
}

impl Counters<'_> {
    /// Both counters now; a counter that cannot be read is `None`, with a note why.
    async fn read(&self, side: Side, notes: &mut Vec<String>) -> (Option<WriteCounts>, Option<WriteCounts>) {
        let api_server = match cluster::api_server_metrics(self.client).await {
            Ok(text) => Some(WriteCounts::from_api_server(&text)),
            Err(e) => {
                notes.push(format!(
                    "could not read the API server's /metrics ({e}): no API server writes per run"
                ));
                None
            }
        };
        let operator = match (side, self.operator) {
            (Side::Horolog, Some(addr)) => match process::operator_metrics(addr).await {
                Ok(text) => Some(WriteCounts::from_operator(&text)),
                Err(e) => {
                    notes.push(format!(
                        "could not read the operator's metrics at {addr} ({e}): no operator writes per run"
                    ));
                    None
                }
            },
            _ => None,
        };
        (api_server, operator)
    }
}

/// One phase: watch, create `side`'s objects, warm up, observe the window (reading the write
/// counters at its start and end), drain, and sum up.
pub(super) async fn run(
    client: &Client,
    args: &BenchArgs,
    run_id: &str,
    pid: Option<u32>,
    side: Side,
    counters: &Counters<'_>,
) -> Result<Phase, LoadTestError> {
    let ns = args.namespace.as_str();
    let selector = format!("{BENCH_LABEL}={run_id}");
    let (stop, stopped) = watch::channel(false);
    let mut notes = Vec::new();

    // Watches first, so no run or pod can be created before they look.
    let runs_watch = match side {
        Side::Horolog => cluster::record(
            Api::<JobRun>::namespaced(client.clone(), ns),
            selector.clone(),
            stopped.clone(),
            objects::jobrun_seen,
        ),
        Side::CronJob => cluster::record(
            Api::<Job>::namespaced(client.clone(), ns),
            selector.clone(),
            stopped.clone(),
            objects::job_seen,
        ),
    };
    let pods = cluster::record(
        Api::<Pod>::namespaced(client.clone(), ns),
        selector.clone(),
        stopped.clone(),
        |pod: &Pod, seen| objects::pod_seen(pod, seen).map(|(owner, p)| PodSeenBy { owner, pod: p }),
    );

    let sample_creating = sample(pid);

    // Plan: every trigger starts at the next whole second, before any of them exists; fire
    // times before the window are the operator's catch-up and are not checked.
    let anchor = next_whole_second(Utc::now());
    let counts = args.mix.counts(args.schedules);
    let plan = plan_schedules(
        run_id,
        &counts,
        anchor,
        IntervalRange {
            min_seconds: args.interval_min.as_std().as_secs() as i64,
            max_seconds: args.interval_max.as_std().as_secs() as i64,
        },
        args.seed,
    );
    let pod = BenchPod {
        image: args.image.clone(),
        active_deadline_seconds: args.active_deadline_seconds,
        distinct_templates: args.distinct_templates,
    };
    let creating = async {
        match side {
            Side::Horolog => {
                let schedules: Vec<Schedule> = plan
                    .iter()
                    .map(|p| objects::schedule_for(p, ns, run_id, &pod))
                    .collect();
                tracing::info!(schedules = schedules.len(), namespace = ns, "creating");
                let api = Api::<Schedule>::namespaced(client.clone(), ns);
                cluster::create_all(&api, schedules, args.create_concurrency).await
            }
            Side::CronJob => {
                let cronjobs: Vec<CronJob> = plan
                    .iter()
                    .filter(|p| p.kind.is_minutely())
                    .enumerate()
                    .map(|(i, _)| objects::cronjob_for(&format!("{run_id}-cj{i}"), ns, run_id, &pod))
                    .collect();
                tracing::info!(cronjobs = cronjobs.len(), namespace = ns, "creating");
                let api = Api::<CronJob>::namespaced(client.clone(), ns);
                cluster::create_all(&api, cronjobs, args.create_concurrency).await
            }
        }
    };
    let created = tokio::select! {
        created = creating => created,
        _ = tokio::signal::ctrl_c() => return Err(LoadTestError::Interrupted { during: "creating objects" }),
    };
    if created.names.is_empty() {
        return Err(LoadTestError::NothingCreated {
            namespace: ns.to_string(),
            first: created.errors.first().cloned().unwrap_or_default(),
        });
    }

    tracing::info!(warmup = %args.warmup, "letting the scheduler catch up");
    tokio::select! {
        _ = tokio::time::sleep(args.warmup.as_std()) => {}
        _ = tokio::signal::ctrl_c() => return Err(LoadTestError::Interrupted { during: "warming up" }),
    }

    let window_start = next_whole_second(Utc::now());
    // Counters are read as close to the window's edges as a read allows.
    tokio::time::sleep((window_start - Utc::now()).to_std().unwrap_or_default()).await;
    let counted_at_start = counters.read(side, &mut notes).await;
    let sample_start = sample(pid);
    tracing::info!(duration = %args.duration, %window_start, "observing");
    let planned_end = window_start + args.duration.as_chrono();
    let until_end = (planned_end - Utc::now()).to_std().unwrap_or_default();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(until_end) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    let window = Window {
        start: window_start,
        end: if interrupted {
            Utc::now().min(planned_end)
        } else {
            planned_end
        },
    };
    let counted_at_end = counters.read(side, &mut notes).await;
    let sample_end = sample(pid);
    if !interrupted {
        tracing::info!(drain = %args.drain, "waiting for late runs");
        tokio::select! {
            _ = tokio::time::sleep(args.drain.as_std()) => {}
            // A Ctrl-C here still reports: the window is complete, only late runs are lost.
            _ = tokio::signal::ctrl_c() => {}
        }
    }

    let _ = stop.send(true);
    let recorded_runs = runs_watch.join().await;
    let recorded_pods = pods.join().await;

    let mut watch_errors = 0;
    let runs: Vec<RunSeen> = recorded_runs
        .map(|r| {
            watch_errors += r.errors;
            r.seen.into_values().collect()
        })
        .unwrap_or_default();
    let wanted_owner = match side {
        Side::Horolog => PodOwner::JobRun,
        Side::CronJob => PodOwner::Job,
    };
    let pods: Vec<PodSeen> = recorded_pods
        .map(|r| {
            watch_errors += r.errors;
            r.seen.into_values()
        })
        .into_iter()
        .flatten()
        .filter(|seen| seen.owner == wanted_owner)
        .map(|seen| seen.pod)
        .collect();

    let created_names: HashSet<&str> = created.names.iter().map(String::as_str).collect();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    if side == Side::Horolog {
        for p in plan.iter().filter(|p| created_names.contains(p.name.as_str())) {
            *kinds.entry(p.kind.as_str().to_string()).or_default() += 1;
        }
    }
    let sources: Vec<Source> = match side {
        Side::Horolog => plan
            .iter()
            .filter(|p| created_names.contains(p.name.as_str()))
            .map(|p| Source {
                name: p.name.clone(),
                pattern: p.pattern,
            })
            .collect(),
        Side::CronJob => created
            .names
            .iter()
            .map(|name| Source {
                name: name.clone(),
                pattern: FirePattern::MinutelyAt {
                    second: 0,
                    start: anchor,
                },
            })
            .collect(),
    };
    let mut summary = runs::summarize(&sources, &runs, &pods, &window);
    let (api_start, operator_start) = counted_at_start;
    let (api_end, operator_end) = counted_at_end;
    let since = |end: Option<WriteCounts>, start: Option<WriteCounts>| Some(end?.since(&start?));
    summary.writes = Some(WritesPerRun::of(
        summary.runs_in_window,
        since(api_end, api_start),
        since(operator_end, operator_start),
    ));

    let who = match side {
        Side::Horolog => "horolog",
        Side::CronJob => "cronjob",
    };
    if interrupted {
        notes.push(format!(
            "Ctrl-C ended {who}'s window early; fire times after it are not checked"
        ));
    }
    if side == Side::Horolog && summary.runs_seen == 0 {
        notes.push(format!(
            "no JobRuns seen: is the operator running, and does it copy jobTemplate.metadata.labels \
             ({selector}) to JobRuns and the pod template's labels to Pods?"
        ));
    }
    if !created.errors.is_empty() {
        notes.push(format!(
            "{} {who} creates failed and are left out of expected fire times (first: {})",
            created.errors.len(),
            created.errors.first().cloned().unwrap_or_default()
        ));
    }
    if watch_errors > 0 {
        notes.push(format!(
            "{watch_errors} watch errors in {who}'s phase (each watch restarted); runs created while \
             a watch was down may be seen late or, if deleted meanwhile, not at all"
        ));
    }
    if let Some(lead) = runs::server_clock_lead(&runs, &pods).filter(|&l| l > 1.0) {
        notes.push(format!(
            "the API server's clock is at least {lead:.1} s ahead of this machine's: *watched* delays read low"
        ));
    }

    Ok(Phase {
        summary,
        window: WindowReport {
            start: window.start,
            end: window.end,
            seconds: window.seconds(),
            interrupted,
        },
        created,
        kinds,
        samples: [sample_creating, sample_start, sample_end],
        notes,
    })
}

/// A pod observation with the controller it belongs to, so one pod watch serves both columns.
#[derive(Debug)]
struct PodSeenBy {
    owner: PodOwner,
    pod: PodSeen,
}

impl runs::Observation for PodSeenBy {
    fn key(&self) -> &str {
        self.pod.key()
    }

    fn merge(&mut self, later: Self) {
        self.pod.merge(later.pod);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use horolog::clock::SystemClock;
    use horolog_memserver::ApiServer;

    use super::*;

    #[tokio::test]
    async fn counters_that_cannot_be_read_are_left_out_with_a_note_saying_which() {
        // The in-process API server serves no /metrics, and nothing listens at the address.
        let server = ApiServer::new(Arc::new(SystemClock));
        let client = server.client();
        let addr = process::free_loopback_addr().unwrap_or_else(|err| panic!("a free port: {err}"));
        let counters = Counters {
            client: &client,
            operator: Some(&addr),
        };
        let mut notes = Vec::new();
        let (api_server, operator) = counters.read(Side::Horolog, &mut notes).await;
        assert_eq!((api_server, operator), (None, None));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("could not read the API server's /metrics"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with(&format!("could not read the operator's metrics at {addr}")),
            "{notes:?}"
        );

        // The CronJob phase has no operator of its own to read.
        let mut notes = Vec::new();
        let (_, operator) = counters.read(Side::CronJob, &mut notes).await;
        assert_eq!(operator, None);
        assert_eq!(notes.len(), 1, "only the API server's note: {notes:?}");
    }
}
