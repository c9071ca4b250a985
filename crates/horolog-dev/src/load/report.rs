//! The bench's result: one serializable `Report`, rendered as aligned tables or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::process::OperatorUsage;
use super::runs::{Delay, FireRef, RunSummary};
use super::stats::Distribution;
use super::writes::{WritesPerRun, is_run_resource};

/// The bound on fire delay: p99 under one second.
pub const TARGET_P99_SECONDS: f64 = 1.0;
/// The bound on the operator's peak memory.
pub const TARGET_RSS_MIB: f64 = 256.0;

/// Everything one `horolog-dev load` run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The id in the `horolog.dev/bench` label and in every object name.
    pub run_id: String,
    /// Where the bench ran.
    pub namespace: String,
    /// Seed of the interval lengths and phases.
    pub seed: u64,
    /// Schedules created, by kind (`every-second`, `every-minute-cron`, `interval`).
    pub schedules: BTreeMap<String, usize>,
    /// CronJobs created for the comparison.
    pub cronjobs: usize,
    /// horolog's observation window: fire times in `[start, end)` are checked.
    pub window: WindowReport,
    /// The CronJob phase's window (`--compare-cronjob`), after horolog's.
    pub cronjob_window: Option<WindowReport>,
    /// The API server as this tool saw it.
    pub api_server: ApiServerReport,
    /// horolog's JobRuns and their pods.
    pub horolog: RunSummary,
    /// The CronJob controller's Jobs and their pods (`--compare-cronjob`).
    pub cronjob: Option<RunSummary>,
    /// The operator's process (`--operator-pid`, `--spawn-operator`).
    pub operator: Option<OperatorUsage>,
    /// The targets, met or not.
    pub targets: Vec<TargetCheck>,
    /// What the numbers need to be read with: interruptions, errors, assumptions.
    pub notes: Vec<String>,
}

/// The observation window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowReport {
    /// First instant checked.
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
    /// Its length in seconds.
    pub seconds: f64,
    /// True when Ctrl-C cut it short.
    pub interrupted: bool,
}

/// The API server's latency for this tool's own create calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerReport {
    /// Create calls made (Schedules and CronJobs).
    pub creates: usize,
    /// Create calls that failed.
    pub create_errors: usize,
    /// Objects created per second while creating.
    pub creates_per_second: f64,
    /// Latency of one create call, request to response, in seconds.
    pub create_latency: Distribution,
}

/// One target of the issue and whether this run met it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCheck {
    /// The target, e.g. `p99 pod fire delay < 1 s`.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Whether it was met. A target without data is not met.
    pub met: bool,
}

/// The targets checked against horolog's numbers: p99 fire delay (by creationTimestamp,
/// whose whole-second flooring keeps "< 1 s" exact), no missed and no duplicate fire times, and
/// peak RSS when the operator was measured.
pub fn check_targets(horolog: &RunSummary, operator: Option<&OperatorUsage>) -> Vec<TargetCheck> {
    let p99 = horolog.pod_delay.created.p99;
    let mut checks = vec![
        TargetCheck {
            target: format!("p99 pod fire delay < {TARGET_P99_SECONDS} s"),
            measured: p99.map_or("no data".to_string(), |v| format!("{v:.0} s (whole seconds)")),
            met: p99.is_some_and(|v| v < TARGET_P99_SECONDS),
        },
        TargetCheck {
            target: "0 missed fire times".to_string(),
            measured: format!("{} of {}", horolog.missed, horolog.expected_fire_times),
            met: horolog.missed == 0 && horolog.expected_fire_times > 0,
        },
        TargetCheck {
            target: "0 duplicate fire times".to_string(),
            measured: horolog.duplicates.to_string(),
            met: horolog.duplicates == 0,
        },
        TargetCheck {
            target: "0 pods created before their fire time".to_string(),
            measured: format!("{} of {}", horolog.early_pods, horolog.pod_delay.created.count),
            met: horolog.early_pods == 0 && horolog.pod_delay.created.count > 0,
        },
    ];
    if let Some(usage) = operator {
        checks.push(TargetCheck {
            target: format!("operator peak RSS < {TARGET_RSS_MIB} MiB"),
            measured: usage
                .peak_rss_mib
                .map_or("no data".to_string(), |m| format!("{m:.1} MiB")),
            met: usage.peak_rss_mib.is_some_and(|m| m < TARGET_RSS_MIB),
        });
    }
    checks
}

/// Issue 16's bound on the cost of a run: at most this share of CronJob's writes per run,
/// counted the same way (every client's writes at the API server).
pub const TARGET_WRITES_SHARE_OF_CRONJOB: f64 = 0.75;

/// Writes per run against CronJob's, when both were counted at the API server.
pub fn check_writes(horolog: &RunSummary, cronjob: Option<&RunSummary>) -> Option<TargetCheck> {
    let ours = horolog.writes.as_ref()?.api_server?;
    let theirs = cronjob?.writes.as_ref()?.api_server?;
    Some(TargetCheck {
        target: format!(
            "writes per run <= {:.0}% of CronJob's",
            TARGET_WRITES_SHARE_OF_CRONJOB * 100.0
        ),
        measured: format!("{ours:.2} / {theirs:.2} = {:.0}%", 100.0 * ours / theirs),
        met: ours <= TARGET_WRITES_SHARE_OF_CRONJOB * theirs,
    })
}

/// The writes-per-run table: every client's writes at the API server per run (in total and by
/// resource), and the operator's own; one column per side.
fn writes_rows(sides: &[(&str, &RunSummary)]) -> Vec<Vec<String>> {
    let per_run = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut rows = vec![
        std::iter::once("writes per run".to_string())
            .chain(sides.iter().map(|(name, _)| name.to_string()))
            .collect::<Vec<_>>(),
    ];
    let mut row = |name: &str, value: &dyn Fn(&WritesPerRun) -> String| {
        let mut r = vec![name.to_string()];
        r.extend(
            sides
                .iter()
                .map(|(_, s)| s.writes.as_ref().map_or("-".to_string(), value)),
        );
        rows.push(r);
    };
    row("runs in window (divisor)", &|w| w.runs.to_string());
    row("api server, every client", &|w| per_run(w.api_server));
    let mut resources: Vec<&String> = sides
        .iter()
        .filter_map(|(_, s)| s.writes.as_ref())
        .flat_map(|w| w.api_server_by_resource.0.keys())
        .filter(|key| is_run_resource(key))
        .collect();
    resources.sort();
    resources.dedup();
    for resource in resources {
        row(&format!("  {resource}"), &|w| {
            per_run(
                w.api_server.and(
                    w.api_server_by_resource
                        .0
                        .get(resource)
                        .map(|n| n / w.runs.max(1) as f64),
                ),
            )
        });
    }
    row("operator's own", &|w| per_run(w.operator));
    row("other writes in window (not per run)", &|w| {
        format!("{:.0}", w.api_server_other)
    });
    rows
}

/// Lays out `rows` in columns: the first left-aligned, the others right-aligned (numbers),
/// separated by two spaces, without trailing spaces.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Seconds with millisecond precision, `-` for no data.
fn secs(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3}"))
}

fn distribution_row(name: &str, d: &Distribution) -> Vec<String> {
    vec![
        name.to_string(),
        d.count.to_string(),
        secs(d.p50),
        secs(d.p90),
        secs(d.p99),
        secs(d.max),
    ]
}

fn delay_rows(who: &str, run: &str, delay_run: &Delay, delay_pod: &Delay) -> Vec<Vec<String>> {
    vec![
        distribution_row(
            &format!("{who} fire → {run} created (1 s steps)"),
            &delay_run.created,
        ),
        distribution_row(&format!("{who} fire → {run} watched"), &delay_run.watched),
        distribution_row(
            &format!("{who} fire → pod created (1 s steps)"),
            &delay_pod.created,
        ),
        distribution_row(&format!("{who} fire → pod watched"), &delay_pod.watched),
    ]
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn examples(refs: &[FireRef]) -> String {
    refs.iter()
        .map(|r| format!("{}@{}", r.source, time(r.fire_time)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The report for people: a header, a delay table, a counts table (horolog beside CronJob),
    /// the operator's usage, the targets and the notes.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let kinds: Vec<String> = self.schedules.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let total: usize = self.schedules.values().sum();
        let _ = writeln!(
            out,
            "horolog-dev load {}  namespace {}  seed {}",
            self.run_id, self.namespace, self.seed
        );
        let _ = writeln!(
            out,
            "schedules {total} ({}){}",
            kinds.join(", "),
            if self.cronjobs > 0 {
                format!("  cronjobs {}", self.cronjobs)
            } else {
                String::new()
            }
        );
        for (who, window) in [
            ("", Some(&self.window)),
            ("cronjob ", self.cronjob_window.as_ref()),
        ] {
            let Some(window) = window else { continue };
            let _ = writeln!(
                out,
                "{who}window {} .. {} ({:.0} s){}",
                time(window.start),
                time(window.end),
                window.seconds,
                if window.interrupted {
                    ", cut short by Ctrl-C"
                } else {
                    ""
                }
            );
        }
        out.push('\n');

        let mut delays = vec![vec![
            "latency (s)".to_string(),
            "count".into(),
            "p50".into(),
            "p90".into(),
            "p99".into(),
            "max".into(),
        ]];
        delays.extend(delay_rows(
            "horolog",
            "jobrun",
            &self.horolog.run_delay,
            &self.horolog.pod_delay,
        ));
        if let Some(cron) = &self.cronjob {
            delays.extend(delay_rows("cronjob", "job", &cron.run_delay, &cron.pod_delay));
        }
        delays.push(distribution_row(
            "api server create call",
            &self.api_server.create_latency,
        ));
        out.push_str(&aligned(&delays));
        out.push('\n');

        let mut header = vec!["runs".to_string(), "horolog".to_string()];
        if self.cronjob.is_some() {
            header.push("cronjob".to_string());
        }
        let mut counts = vec![header];
        let mut row = |name: &str, value: &dyn Fn(&RunSummary) -> String| {
            let mut r = vec![name.to_string(), value(&self.horolog)];
            if let Some(cron) = &self.cronjob {
                r.push(value(cron));
            }
            counts.push(r);
        };
        row("expected fire times", &|s| s.expected_fire_times.to_string());
        row("runs in window", &|s| s.runs_in_window.to_string());
        row("runs seen (any time)", &|s| s.runs_seen.to_string());
        row("missed fire times", &|s| s.missed.to_string());
        row("duplicate fire times", &|s| s.duplicates.to_string());
        row("runs without a pod", &|s| s.runs_without_pod.to_string());
        row("pods created before fire time", &|s| s.early_pods.to_string());
        row("runs/s mean", &|s| format!("{:.1}", s.runs_per_second.mean));
        row("runs/s max", &|s| s.runs_per_second.max.to_string());
        let mut phases: Vec<&String> = self.horolog.phases.keys().collect();
        if let Some(cron) = &self.cronjob {
            phases.extend(cron.phases.keys());
        }
        phases.sort();
        phases.dedup();
        for phase in phases {
            row(&format!("phase {phase}"), &|s| {
                s.phases.get(phase).copied().unwrap_or(0).to_string()
            });
        }
        out.push_str(&aligned(&counts));

        if self.horolog.writes.is_some() {
            let mut sides = vec![("horolog", &self.horolog)];
            if let Some(cron) = &self.cronjob {
                sides.push(("cronjob", cron));
            }
            out.push('\n');
            out.push_str(&aligned(&writes_rows(&sides)));
        }

        let api = &self.api_server;
        let _ = writeln!(
            out,
            "\napi server: {} creates, {} errors, {:.1} creates/s",
            api.creates, api.create_errors, api.creates_per_second
        );

        if let Some(op) = &self.operator {
            let num = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
            let _ = writeln!(
                out,
                "operator pid {}{}: cpu {} while creating, {} in window ({} cores avg), {} total; \
                 peak RSS {}, RSS at end {}{}",
                op.pid,
                if op.spawned { " (spawned)" } else { "" },
                num(op.cpu_seconds_creating, " s"),
                num(op.cpu_seconds_window, " s"),
                num(op.average_cores_window, ""),
                num(op.cpu_seconds_total, " s"),
                num(op.peak_rss_mib, " MiB"),
                num(op.rss_mib_end, " MiB"),
                if op.clk_tck_assumed {
                    "; CLK_TCK assumed 100"
                } else {
                    ""
                },
            );
        }

        for (label, summary) in [
            ("horolog", Some(&self.horolog)),
            ("cronjob", self.cronjob.as_ref()),
        ] {
            let Some(s) = summary else { continue };
            if !s.missed_examples.is_empty() {
                let _ = writeln!(out, "{label} missed e.g.: {}", examples(&s.missed_examples));
            }
            if !s.early_examples.is_empty() {
                let _ = writeln!(
                    out,
                    "{label} pods created BEFORE their fire time e.g.: {}",
                    examples(&s.early_examples)
                );
            }
            if !s.duplicate_examples.is_empty() {
                let _ = writeln!(
                    out,
                    "{label} duplicates e.g.: {}",
                    examples(&s.duplicate_examples)
                );
            }
        }

        out.push('\n');
        let mut targets = vec![vec![
            "target".to_string(),
            "measured".to_string(),
            "result".to_string(),
        ]];
        for t in &self.targets {
            targets.push(vec![
                t.target.clone(),
                t.measured.clone(),
                if t.met { "met" } else { "NOT MET" }.to_string(),
            ]);
        }
        out.push_str(&aligned(&targets));

        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "note: {note}");
            }
        }
        out
    }

    /// The report as pretty-printed JSON (`-o json`).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::runs::Rate;
    use crate::load::writes::WriteCounts;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .expect("test time parses")
    }

    fn summary(missed: usize, duplicates: usize, pod_p99: Option<f64>) -> RunSummary {
        RunSummary {
            expected_fire_times: 600,
            runs_seen: 610,
            runs_in_window: 600 - missed,
            missed,
            duplicates,
            pod_delay: Delay {
                created: Distribution {
                    count: 600,
                    p50: Some(0.0),
                    p90: Some(0.0),
                    p99: pod_p99,
                    max: pod_p99,
                },
                watched: Distribution::default(),
            },
            runs_per_second: Rate { mean: 2.0, max: 12 },
            phases: BTreeMap::from([("Succeeded".to_string(), 600)]),
            ..Default::default()
        }
    }

    #[test]
    fn aligned_pads_the_first_column_left_and_the_others_right() {
        let rows = vec![
            vec!["name".to_string(), "n".to_string()],
            vec!["a".to_string(), "1000".to_string()],
            vec!["longer".to_string(), "7".to_string()],
        ];
        assert_eq!(aligned(&rows), "name       n\na       1000\nlonger     7\n");
    }

    #[test]
    fn targets_are_met_only_with_data_and_within_bounds() {
        struct Case {
            name: &'static str,
            summary: RunSummary,
            rss: Option<f64>,
            want: Vec<bool>,
        }
        let cases = [
            Case {
                name: "all within bounds",
                summary: summary(0, 0, Some(0.0)),
                rss: Some(100.0),
                want: vec![true, true, true, true, true],
            },
            Case {
                name: "p99 of one whole second is not below one second",
                summary: summary(0, 0, Some(1.0)),
                rss: None,
                want: vec![false, true, true, true],
            },
            Case {
                name: "no pods seen is no evidence",
                summary: RunSummary {
                    pod_delay: Delay::default(),
                    ..summary(0, 0, None)
                },
                rss: None,
                want: vec![false, true, true, false],
            },
            Case {
                name: "a missed and a duplicate fire time fail their targets",
                summary: summary(1, 1, Some(0.0)),
                rss: Some(300.0),
                want: vec![true, false, false, true, false],
            },
            Case {
                name: "a pod created before its fire time fails never-early",
                summary: RunSummary {
                    early_pods: 1,
                    ..summary(0, 0, Some(0.0))
                },
                rss: None,
                want: vec![true, true, true, false],
            },
        ];
        for case in cases {
            let usage = case.rss.map(|m| OperatorUsage {
                peak_rss_mib: Some(m),
                ..Default::default()
            });
            let met: Vec<bool> = check_targets(&case.summary, usage.as_ref())
                .iter()
                .map(|t| t.met)
                .collect();
            assert_eq!(met, case.want, "{}", case.name);
        }
    }

    fn writes(runs: usize, api: &[(&str, f64)], operator: Option<&[(&str, f64)]>) -> WritesPerRun {
        let counts =
            |pairs: &[(&str, f64)]| WriteCounts(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        WritesPerRun::of(runs, Some(counts(api)), operator.map(counts))
    }

    fn report() -> Report {
        let horolog = RunSummary {
            writes: Some(writes(
                100,
                &[
                    ("jobruns", 100.0),
                    ("pods", 100.0),
                    ("pods/binding", 100.0),
                    ("leases", 30.0),
                ],
                Some(&[("jobruns", 100.0), ("pods", 100.0)]),
            )),
            ..summary(1, 0, Some(0.0))
        };
        let cronjob = RunSummary {
            writes: Some(writes(
                50,
                &[("jobs", 150.0), ("pods", 50.0), ("pods/binding", 50.0)],
                None,
            )),
            ..summary(0, 0, Some(1.0))
        };
        Report {
            run_id: "x1y2z".into(),
            namespace: "horolog-bench".into(),
            seed: 42,
            schedules: BTreeMap::from([("every-minute-cron".to_string(), 10)]),
            cronjobs: 10,
            window: WindowReport {
                start: at("2026-01-01T00:00:00Z"),
                end: at("2026-01-01T00:05:00Z"),
                seconds: 300.0,
                interrupted: false,
            },
            api_server: ApiServerReport {
                creates: 20,
                create_errors: 0,
                creates_per_second: 40.0,
                create_latency: Distribution::of(&[0.01, 0.02]),
            },
            cronjob_window: Some(WindowReport {
                start: at("2026-01-01T00:06:00Z"),
                end: at("2026-01-01T00:11:00Z"),
                seconds: 300.0,
                interrupted: false,
            }),
            targets: check_targets(&horolog, None)
                .into_iter()
                .chain(check_writes(&horolog, Some(&cronjob)))
                .collect(),
            cronjob: Some(cronjob),
            horolog: RunSummary {
                missed_examples: vec![FireRef {
                    source: "bx-c1".into(),
                    fire_time: at("2026-01-01T00:01:01Z"),
                }],
                ..horolog
            },
            operator: None,
            notes: vec!["something to know".into()],
        }
    }

    #[test]
    fn table_shows_horolog_beside_cronjob_with_targets_and_notes() {
        let table = report().render_table();
        for expected in [
            "horolog-dev load x1y2z  namespace horolog-bench  seed 42",
            "schedules 10 (every-minute-cron 10)  cronjobs 10",
            "window 2026-01-01T00:00:00Z .. 2026-01-01T00:05:00Z (300 s)",
            "cronjob window 2026-01-01T00:06:00Z .. 2026-01-01T00:11:00Z (300 s)",
            "cronjob fire → pod created (1 s steps)",
            "horolog missed e.g.: bx-c1@2026-01-01T00:01:01Z",
            "NOT MET",
            "note: something to know",
        ] {
            assert!(table.contains(expected), "missing {expected:?} in\n{table}");
        }
        let missed = table
            .lines()
            .find(|l| l.starts_with("missed fire times"))
            .expect("missed row");
        assert_eq!(
            missed.split_whitespace().collect::<Vec<_>>(),
            ["missed", "fire", "times", "1", "0"]
        );
        let row = |name: &str| -> Vec<String> {
            let line = table
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
            line[name.len()..]
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(row("api server, every client"), ["3.00", "5.00"]);
        assert_eq!(row("  jobs"), ["-", "3.00"]);
        assert_eq!(row("  pods/binding"), ["1.00", "1.00"]);
        assert_eq!(row("operator's own"), ["2.00", "-"]);
        assert!(
            !table.contains("  leases"),
            "leases are not a run's writes:\n{table}"
        );
        assert_eq!(
            row("writes per run <= 75% of CronJob's"),
            ["3.00", "/", "5.00", "=", "60%", "met"]
        );
        assert!(table.lines().all(|l| l == l.trim_end()), "no trailing spaces");
    }

    #[test]
    fn the_writes_target_needs_both_sides_counted_at_the_api_server() {
        let ours = RunSummary {
            writes: Some(writes(10, &[("pods", 80.0)], None)),
            ..Default::default()
        };
        let theirs = RunSummary {
            writes: Some(writes(10, &[("pods", 100.0)], None)),
            ..Default::default()
        };
        let check = check_writes(&ours, Some(&theirs)).expect("both counted");
        assert!(!check.met, "80% is more than three quarters: {check:?}");
        assert!(check_writes(&ours, None).is_none());
        let uncounted = RunSummary {
            writes: Some(WritesPerRun::of(10, None, None)),
            ..Default::default()
        };
        assert!(check_writes(&ours, Some(&uncounted)).is_none());
    }

    #[test]
    fn json_uses_camel_case_and_keeps_absent_values_null() {
        let json: serde_json::Value =
            serde_json::from_str(&report().to_json().expect("report serializes")).expect("valid JSON");
        assert_eq!(json["horolog"]["expectedFireTimes"], 600);
        assert_eq!(
            json["horolog"]["podDelay"]["watched"]["p99"],
            serde_json::Value::Null
        );
        assert_eq!(json["apiServer"]["createLatency"]["count"], 2);
        assert_eq!(json["window"]["start"], "2026-01-01T00:00:00Z");
        assert_eq!(json["operator"], serde_json::Value::Null);
    }
}
