//! What the watches saw, and what it adds up to: fire delays, missed and duplicate fire times,
//! throughput and phases. The same summary serves horolog's JobRuns and the CronJob
//! controller's Jobs, so the two columns of the report are computed identically.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::fires::{FirePattern, Window};
use super::stats::Distribution;

/// How many missed or duplicate fire times the report lists by name.
pub const EXAMPLES: usize = 5;

/// Something that fires: a bench Schedule, or a CronJob of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The Schedule's (or CronJob's) name.
    pub name: String,
    /// When it fires.
    pub pattern: FirePattern,
}

/// One run as the watch saw it: a JobRun, or a Job of a CronJob.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSeen {
    /// metadata.uid: a run deleted and created again under the same name is a second run.
    pub uid: String,
    /// metadata.name, which its pods point at.
    pub name: String,
    /// The Schedule or CronJob that created it.
    pub source: String,
    /// The scheduled fire time (JobRun spec.fireTime; a Job's scheduled-timestamp annotation).
    pub fire_time: DateTime<Utc>,
    /// metadata.creationTimestamp (API server clock, whole seconds).
    pub created: Option<DateTime<Utc>>,
    /// When the first watch event for it arrived (this tool's clock).
    pub seen: DateTime<Utc>,
    /// The latest phase seen, if any.
    pub phase: Option<String>,
}

/// One pod as the watch saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSeen {
    /// metadata.uid.
    pub uid: String,
    /// The name of the JobRun (or Job) it belongs to, from its labels.
    pub run: String,
    /// metadata.creationTimestamp (API server clock, whole seconds).
    pub created: Option<DateTime<Utc>>,
    /// When the first watch event for it arrived (this tool's clock).
    pub seen: DateTime<Utc>,
}

/// A watched object that later events refine.
pub trait Observation {
    /// The identity events are merged by (metadata.uid).
    fn key(&self) -> &str;
    /// Folds a later sighting of the same object into this one: first sightings stay, the
    /// state moves on.
    fn merge(&mut self, later: Self);
}

impl Observation for RunSeen {
    fn key(&self) -> &str {
        &self.uid
    }

    fn merge(&mut self, later: Self) {
        if later.phase.is_some() {
            self.phase = later.phase;
        }
        if self.created.is_none() {
            self.created = later.created;
        }
    }
}

impl Observation for PodSeen {
    fn key(&self) -> &str {
        &self.uid
    }

    fn merge(&mut self, later: Self) {
        if self.created.is_none() {
            self.created = later.created;
        }
    }
}

/// One (source, fire time) pair, for the report's examples.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FireRef {
    /// The Schedule or CronJob.
    pub source: String,
    /// The fire time.
    pub fire_time: DateTime<Utc>,
}

/// Delay from fire time to an object's appearance, measured two ways.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    /// creationTimestamp − fire time. API server clock; the timestamp has whole seconds, so
    /// values are floored to the second (a value below 1 s still proves "within 1 s").
    pub created: Distribution,
    /// Watch event arrival − fire time. This tool's clock, millisecond precision; includes the
    /// watch's own latency, so it is an upper bound.
    pub watched: Distribution,
}

/// Rate of runs created, per second of the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// Runs with a fire time in the window, divided by the window's length.
    pub mean: f64,
    /// The most runs created within one second (by creationTimestamp).
    pub max: usize,
}

/// What one controller (horolog, or the built-in CronJob controller) did in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Fire times the sources' triggers have in the window.
    pub expected_fire_times: usize,
    /// Runs seen during the whole bench (any fire time).
    pub runs_seen: usize,
    /// Runs whose fire time is in the window.
    pub runs_in_window: usize,
    /// Expected fire times in the window without any run.
    pub missed: usize,
    /// A few of them.
    pub missed_examples: Vec<FireRef>,
    /// (source, fire time) pairs with more than one run (distinct uids). Must be 0.
    pub duplicates: usize,
    /// A few of them.
    pub duplicate_examples: Vec<FireRef>,
    /// Fire time → run object.
    pub run_delay: Delay,
    /// Fire time → the run's first pod.
    pub pod_delay: Delay,
    /// Runs in the window for which no pod was seen.
    pub runs_without_pod: usize,
    /// Runs in the window whose first Pod was created before the fire time: its
    /// creationTimestamp (floored to the second) is before the fire time floored to the second,
    /// so the Pod surely existed before its fire time. Must be 0 ("never early"). Compares the
    /// API server's clock with the operator's, which on a cluster may differ by their skew.
    pub early_pods: usize,
    /// A few of them.
    pub early_examples: Vec<FireRef>,
    /// Runs created per second.
    pub runs_per_second: Rate,
    /// Runs seen, by their latest phase (`None` when no status was seen).
    pub phases: BTreeMap<String, usize>,
    /// API writes in the window per run in it (`None` until the counters were read).
    pub writes: Option<super::writes::WritesPerRun>,
}

/// Seconds from `from` to `to`, with millisecond precision.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// Sums up what the watches saw of `sources` during `window`. Runs and pods of other sources
/// are ignored.
pub fn summarize(sources: &[Source], runs: &[RunSeen], pods: &[PodSeen], window: &Window) -> RunSummary {
    let names: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let runs: Vec<&RunSeen> = runs
        .iter()
        .filter(|r| names.contains(r.source.as_str()))
        .collect();

    let mut by_fire: HashMap<(&str, DateTime<Utc>), HashSet<&str>> = HashMap::new();
    for run in &runs {
        by_fire
            .entry((run.source.as_str(), run.fire_time))
            .or_default()
            .insert(run.uid.as_str());
    }

    let mut expected = 0;
    let mut missed = Vec::new();
    for source in sources {
        for fire_time in source.pattern.fire_times_in(window) {
            expected += 1;
            if !by_fire.contains_key(&(source.name.as_str(), fire_time)) {
                missed.push(FireRef {
                    source: source.name.clone(),
                    fire_time,
                });
            }
        }
    }
    missed.sort();

    let mut duplicates: Vec<FireRef> = by_fire
        .iter()
        .filter(|(_, uids)| uids.len() > 1)
        .map(|((source, fire_time), _)| FireRef {
            source: source.to_string(),
            fire_time: *fire_time,
        })
        .collect();
    duplicates.sort();

    // A run's delay is that of its first pod: retries are the run's business, not the scheduler's.
    let mut first_pod: HashMap<&str, &PodSeen> = HashMap::new();
    for pod in pods {
        let entry = first_pod.entry(pod.run.as_str()).or_insert(pod);
        if (pod.created, pod.seen) < (entry.created, entry.seen) {
            *entry = pod;
        }
    }

    let in_window: Vec<&RunSeen> = runs
        .iter()
        .copied()
        .filter(|r| window.contains(r.fire_time))
        .collect();
    let mut run_created = Vec::new();
    let mut run_watched = Vec::new();
    let mut pod_created = Vec::new();
    let mut pod_watched = Vec::new();
    let mut runs_without_pod = 0;
    let mut early = Vec::new();
    let mut per_second: HashMap<i64, usize> = HashMap::new();
    for run in &in_window {
        if let Some(created) = run.created {
            run_created.push(seconds_between(run.fire_time, created));
        }
        run_watched.push(seconds_between(run.fire_time, run.seen));
        *per_second
            .entry(run.created.unwrap_or(run.seen).timestamp())
            .or_default() += 1;
        match first_pod.get(run.name.as_str()) {
            Some(pod) => {
                if let Some(created) = pod.created {
                    pod_created.push(seconds_between(run.fire_time, created));
                    if created_early(created, run.fire_time) {
                        early.push(FireRef {
                            source: run.source.clone(),
                            fire_time: run.fire_time,
                        });
                    }
                }
                pod_watched.push(seconds_between(run.fire_time, pod.seen));
            }
            None => runs_without_pod += 1,
        }
    }

    let mut phases = BTreeMap::new();
    for run in &runs {
        *phases
            .entry(run.phase.clone().unwrap_or_else(|| "None".to_string()))
            .or_default() += 1;
    }

    let window_seconds = window.seconds();
    RunSummary {
        expected_fire_times: expected,
        runs_seen: runs.len(),
        runs_in_window: in_window.len(),
        missed: missed.len(),
        missed_examples: missed.into_iter().take(EXAMPLES).collect(),
        duplicates: duplicates.len(),
        duplicate_examples: duplicates.into_iter().take(EXAMPLES).collect(),
        run_delay: Delay {
            created: Distribution::of(&run_created),
            watched: Distribution::of(&run_watched),
        },
        pod_delay: Delay {
            created: Distribution::of(&pod_created),
            watched: Distribution::of(&pod_watched),
        },
        runs_without_pod,
        early_pods: early.len(),
        early_examples: {
            early.sort();
            early.into_iter().take(EXAMPLES).collect()
        },
        runs_per_second: Rate {
            mean: if window_seconds > 0.0 {
                in_window.len() as f64 / window_seconds
            } else {
                0.0
            },
            max: per_second.values().copied().max().unwrap_or(0),
        },
        phases,
        writes: None,
    }
}

/// True when an object whose creationTimestamp reads `created` surely existed before
/// `fire_time`. creationTimestamp has whole seconds (floored), so the object was created in
/// `[created, created + 1 s)`: it was early when that second ends no later than the fire time's
/// own second begins. Exact for fire times on the whole second (every fire time the bench
/// plans); never a false alarm for others.
fn created_early(created: DateTime<Utc>, fire_time: DateTime<Utc>) -> bool {
    let fire_second = fire_time - TimeDelta::nanoseconds(fire_time.timestamp_subsec_nanos().into());
    let created_second = created - TimeDelta::nanoseconds(created.timestamp_subsec_nanos().into());
    created_second < fire_second
}

/// How far the API server's clock seems ahead of this tool's: the largest amount by which an
/// object's creationTimestamp is later than the arrival of its first watch event. Anything
/// positive is impossible with synchronized clocks (the object existed before it was seen), so
/// it bounds the skew from below. `None` without timestamps.
pub fn server_clock_lead(runs: &[RunSeen], pods: &[PodSeen]) -> Option<f64> {
    let runs = runs.iter().filter_map(|r| Some((r.created?, r.seen)));
    let pods = pods.iter().filter_map(|p| Some((p.created?, p.seen)));
    runs.chain(pods)
        .map(|(created, seen)| seconds_between(seen, created))
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .expect("test time parses")
    }

    fn window() -> Window {
        Window {
            start: at("2026-01-01T00:00:00Z"),
            end: at("2026-01-01T00:00:03Z"),
        }
    }

    fn every_second(name: &str) -> Source {
        Source {
            name: name.to_string(),
            pattern: FirePattern::Every {
                start: at("2026-01-01T00:00:00Z"),
                period: TimeDelta::seconds(1),
            },
        }
    }

    /// A run of `source` for the fire time `second` seconds into the window, created and
    /// seen `delay_ms` later.
    fn run(uid: &str, source: &str, second: i64, delay_ms: i64) -> RunSeen {
        let fire_time = window().start + TimeDelta::seconds(second);
        let seen = fire_time + TimeDelta::milliseconds(delay_ms);
        RunSeen {
            uid: uid.to_string(),
            name: format!("{source}-{}", fire_time.timestamp()),
            source: source.to_string(),
            fire_time,
            created: Some(seen - TimeDelta::milliseconds(seen.timestamp_subsec_millis().into())),
            seen,
            phase: Some("Succeeded".to_string()),
        }
    }

    fn pod_of(run: &RunSeen, uid: &str, delay_ms: i64) -> PodSeen {
        let seen = run.fire_time + TimeDelta::milliseconds(delay_ms);
        PodSeen {
            uid: uid.to_string(),
            run: run.name.clone(),
            created: Some(seen),
            seen,
        }
    }

    #[test]
    fn counts_missed_and_duplicate_fire_times() {
        struct Case {
            name: &'static str,
            runs: Vec<RunSeen>,
            missed: usize,
            duplicates: usize,
        }
        let cases = [
            Case {
                name: "every fire time has one run",
                runs: vec![run("a", "s", 0, 10), run("b", "s", 1, 10), run("c", "s", 2, 10)],
                missed: 0,
                duplicates: 0,
            },
            Case {
                name: "a fire time without a run is missed",
                runs: vec![run("a", "s", 0, 10), run("c", "s", 2, 10)],
                missed: 1,
                duplicates: 0,
            },
            Case {
                name: "two uids for one fire time are a duplicate, even under one name",
                runs: vec![
                    run("a", "s", 0, 10),
                    run("a2", "s", 0, 900),
                    run("b", "s", 1, 10),
                    run("c", "s", 2, 10),
                ],
                missed: 0,
                duplicates: 1,
            },
            Case {
                name: "the same uid seen twice is one run",
                runs: vec![
                    run("a", "s", 0, 10),
                    run("a", "s", 0, 10),
                    run("b", "s", 1, 10),
                    run("c", "s", 2, 10),
                ],
                missed: 0,
                duplicates: 0,
            },
            Case {
                name: "runs of unknown sources neither fill nor duplicate",
                runs: vec![run("x", "other", 0, 10), run("y", "other", 0, 10)],
                missed: 3,
                duplicates: 0,
            },
        ];
        for case in cases {
            let summary = summarize(&[every_second("s")], &case.runs, &[], &window());
            assert_eq!(summary.expected_fire_times, 3, "{}", case.name);
            assert_eq!(summary.missed, case.missed, "{}: missed", case.name);
            assert_eq!(summary.duplicates, case.duplicates, "{}: duplicates", case.name);
        }
    }

    #[test]
    fn missed_examples_name_the_source_and_fire_time_in_order() {
        let summary = summarize(&[every_second("s")], &[run("b", "s", 1, 0)], &[], &window());
        assert_eq!(
            summary.missed_examples,
            vec![
                FireRef {
                    source: "s".into(),
                    fire_time: at("2026-01-01T00:00:00Z")
                },
                FireRef {
                    source: "s".into(),
                    fire_time: at("2026-01-01T00:00:02Z")
                },
            ]
        );
    }

    #[test]
    fn a_pod_created_in_a_second_before_its_fire_time_is_counted_early() {
        // Fire times at 00:00, 00:01, 00:02; Pods created 2 s early, in the fire time's own
        // second (creationTimestamp floored to it: not provably early), and 1 s late.
        let runs = [run("a", "s", 0, 0), run("b", "s", 1, 0), run("c", "s", 2, 0)];
        let floored = |run: &RunSeen, uid: &str, offset_ms: i64| {
            let mut pod = pod_of(run, uid, offset_ms);
            pod.created = pod
                .created
                .map(|t| t - TimeDelta::milliseconds(t.timestamp_subsec_millis().into()));
            pod
        };
        let pods = [
            floored(&runs[0], "early", -2_000),
            floored(&runs[1], "same-second", 400),
            floored(&runs[2], "late", 1_000),
        ];
        let summary = summarize(&[every_second("s")], &runs, &pods, &window());
        assert_eq!(summary.early_pods, 1);
        assert_eq!(
            summary.early_examples,
            vec![FireRef {
                source: "s".into(),
                fire_time: at("2026-01-01T00:00:00Z")
            }]
        );
        let on_time = [
            floored(&runs[0], "p", 0),
            floored(&runs[1], "q", 999),
            floored(&runs[2], "r", 5),
        ];
        assert_eq!(
            summarize(&[every_second("s")], &runs, &on_time, &window()).early_pods,
            0
        );
    }

    #[test]
    fn pod_delay_is_measured_from_the_fire_time_to_the_runs_first_pod() {
        let r = run("a", "s", 0, 100);
        let pods = [pod_of(&r, "retry", 5_000), pod_of(&r, "first", 300)];
        let summary = summarize(&[every_second("s")], &[r], &pods, &window());
        assert_eq!(summary.pod_delay.watched.max, Some(0.3));
        assert_eq!(summary.pod_delay.created.max, Some(0.3));
        assert_eq!(summary.run_delay.watched.max, Some(0.1));
        // creationTimestamp has whole seconds: 100 ms after a whole-second fire time reads 0.
        assert_eq!(summary.run_delay.created.max, Some(0.0));
    }

    #[test]
    fn runs_without_a_pod_are_counted_and_left_out_of_pod_delay() {
        let runs = [run("a", "s", 0, 10), run("b", "s", 1, 10)];
        let pods = [pod_of(&runs[0], "p", 50)];
        let summary = summarize(&[every_second("s")], &runs, &pods, &window());
        assert_eq!(summary.runs_without_pod, 1);
        assert_eq!(summary.pod_delay.watched.count, 1);
    }

    #[test]
    fn runs_outside_the_window_count_as_seen_but_not_in_delay_or_rate() {
        let runs = [run("early", "s", -5, 4_000), run("a", "s", 0, 10)];
        let summary = summarize(&[every_second("s")], &runs, &[], &window());
        assert_eq!(summary.runs_seen, 2);
        assert_eq!(summary.runs_in_window, 1);
        assert_eq!(summary.run_delay.watched.count, 1);
        assert_eq!(summary.runs_per_second.mean, 1.0 / 3.0);
        assert_eq!(summary.runs_per_second.max, 1);
    }

    #[test]
    fn phases_count_each_runs_latest_phase() {
        let mut pending = run("b", "s", 1, 10);
        pending.phase = None;
        let mut failed = run("c", "s", 2, 10);
        failed.phase = Some("Failed".into());
        let summary = summarize(
            &[every_second("s")],
            &[run("a", "s", 0, 10), pending, failed],
            &[],
            &window(),
        );
        let want: BTreeMap<String, usize> = [
            ("Failed".to_string(), 1),
            ("None".to_string(), 1),
            ("Succeeded".to_string(), 1),
        ]
        .into();
        assert_eq!(summary.phases, want);
    }

    #[test]
    fn server_clock_lead_is_the_largest_creation_after_arrival() {
        let r = run("a", "s", 0, 10);
        let mut ahead = pod_of(&r, "p", 500);
        ahead.created = Some(ahead.seen + TimeDelta::milliseconds(2_500));
        assert_eq!(server_clock_lead(&[], &[]), None);
        // creationTimestamp is floored to the second: 10 ms after the fire time reads 10 ms early.
        assert_eq!(server_clock_lead(std::slice::from_ref(&r), &[]), Some(-0.01));
        assert_eq!(server_clock_lead(&[r], &[ahead]), Some(2.5));
    }

    #[test]
    fn merging_a_later_sighting_keeps_first_seen_and_takes_the_new_phase() {
        let mut first = run("a", "s", 0, 10);
        first.phase = None;
        let mut later = run("a", "s", 0, 2_000);
        later.phase = Some("Running".into());
        let first_seen = first.seen;
        first.merge(later);
        assert_eq!(first.seen, first_seen);
        assert_eq!(first.phase.as_deref(), Some("Running"));
    }
}
