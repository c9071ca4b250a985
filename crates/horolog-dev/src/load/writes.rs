//! Writes per run, from two counters in the Prometheus text format: the API server's
//! `apiserver_request_total` (every client: the operator or the CronJob controllers, the
//! scheduler's bindings, the kubelet's status writes, the garbage collector's deletes) and the
//! operator's own `horolog_api_requests_total`. The bench reads each at the window's start and
//! end; the difference divided by the runs whose fire time lies in the window is the cost of one
//! run. Pure: text in, numbers out.

use std::collections::BTreeMap;

use serde::Serialize;

/// The resources a scheduled run writes to, on either side: what `apiserver_request_total` is
/// summed over, as issue 16 counted them. Others (Leases of leader election, Namespaces, the
/// bench's own objects) are kept apart as `other`, not in the per-run number.
pub const RUN_RESOURCES: [&str; 6] = ["pods", "events", "jobs", "cronjobs", "jobruns", "schedules"];

/// The verbs that write, as `apiserver_request_total` names them.
const API_SERVER_WRITE_VERBS: [&str; 6] = ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

/// The verbs that write, as `horolog_api_requests_total` names them.
const OPERATOR_WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Write counts by resource, `pods` or `pods/binding` (resource/subresource).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WriteCounts(pub BTreeMap<String, f64>);

/// One sample of a counter: its labels and value.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The samples of the metric `name` in `text` (the exposition format: `name{k="v",...} value
/// [timestamp]`). Lines that do not parse are skipped: a scrape is evidence, not input to trust.
fn samples<'a>(text: &'a str, name: &str) -> Vec<Sample<'a>> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, rest) = match rest.strip_prefix('{') {
                Some(inner) => parse_labels(inner)?,
                None if rest.starts_with(' ') => (Vec::new(), rest),
                None => return None,
            };
            let value = rest.split_whitespace().next()?.parse().ok()?;
            Some(Sample { labels, value })
        })
        .collect()
}

/// `k="v",k2="v2"} rest` → the labels and `rest`. Values may hold `\"`, `\\` and `\n`.
fn parse_labels(mut s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, c) => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim(), value));
        s = &rest[end + 1..];
    }
}

fn resource_key(resource: &str, subresource: &str) -> String {
    if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    }
}

impl WriteCounts {
    /// The writes `apiserver_request_total` counted, every client and response code, by
    /// resource/subresource.
    pub fn from_api_server(text: &str) -> Self {
        let mut counts = BTreeMap::new();
        for sample in samples(text, "apiserver_request_total") {
            if API_SERVER_WRITE_VERBS.contains(&sample.label("verb")) {
                *counts
                    .entry(resource_key(
                        sample.label("resource"),
                        sample.label("subresource"),
                    ))
                    .or_default() += sample.value;
            }
        }
        WriteCounts(counts)
    }

    /// The writes the operator counted in `horolog_api_requests_total` (its `resource` label
    /// already reads `pods/status`), any response code.
    pub fn from_operator(text: &str) -> Self {
        let mut counts = BTreeMap::new();
        for sample in samples(text, "horolog_api_requests_total") {
            if OPERATOR_WRITE_VERBS.contains(&sample.label("verb")) {
                *counts.entry(sample.label("resource").to_string()).or_default() += sample.value;
            }
        }
        WriteCounts(counts)
    }

    /// What was counted after `earlier`, by resource; resources that did not grow are left out.
    /// A counter that went down (the process restarted) counts from zero.
    pub fn since(&self, earlier: &WriteCounts) -> WriteCounts {
        WriteCounts(
            self.0
                .iter()
                .filter_map(|(key, &now)| {
                    let before = earlier.0.get(key).copied().unwrap_or(0.0);
                    let grew = if now >= before { now - before } else { now };
                    (grew > 0.0).then(|| (key.clone(), grew))
                })
                .collect(),
        )
    }

    /// The sum over [`RUN_RESOURCES`] (with their subresources).
    pub fn of_runs(&self) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| is_run_resource(key))
            .fold(0.0, |sum, (_, n)| sum + n)
    }

    /// The sum over everything else.
    pub fn other(&self) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| !is_run_resource(key))
            .fold(0.0, |sum, (_, n)| sum + n)
    }
}

/// True for a key (`pods`, `pods/binding`) of one of [`RUN_RESOURCES`].
pub(super) fn is_run_resource(key: &str) -> bool {
    let resource = key.split('/').next().unwrap_or(key);
    RUN_RESOURCES.contains(&resource)
}

/// The writes of one side (horolog or CronJob) during its window, per run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WritesPerRun {
    /// Runs whose fire time lies in the window: the divisor.
    pub runs: usize,
    /// Every client's writes to [`RUN_RESOURCES`] at the API server per run, from
    /// `apiserver_request_total`; `None` when its `/metrics` could not be read.
    pub api_server: Option<f64>,
    /// The operator's own writes per run, from `horolog_api_requests_total`; `None` for the
    /// CronJob side and when the operator's metrics could not be read.
    pub operator: Option<f64>,
    /// The API server's writes in the window by resource/subresource (not divided).
    pub api_server_by_resource: WriteCounts,
    /// The operator's writes in the window by resource/subresource (not divided).
    pub operator_by_resource: WriteCounts,
    /// Writes to other resources at the API server in the window (leases, the bench's own),
    /// not in the per-run number.
    pub api_server_other: f64,
}

impl WritesPerRun {
    /// Per-run numbers from the window's counts; without runs there is nothing to divide by.
    pub fn of(runs: usize, api_server: Option<WriteCounts>, operator: Option<WriteCounts>) -> Self {
        let per_run = |n: f64| (runs > 0).then(|| n / runs as f64);
        WritesPerRun {
            runs,
            api_server: api_server.as_ref().and_then(|c| per_run(c.of_runs())),
            operator: operator.as_ref().and_then(|c| per_run(c.of_runs())),
            api_server_other: api_server.as_ref().map_or(0.0, WriteCounts::other),
            api_server_by_resource: api_server.unwrap_or_default(),
            operator_by_resource: operator.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API_SERVER: &str = r#"# HELP apiserver_request_total Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 30
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 30
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 60
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="horolog.dev",resource="jobruns",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 90
apiserver_request_total_other{verb="POST",resource="pods"} 1000
apiserver_request_total{verb="POST",resource="pods" broken
"#;

    #[test]
    fn api_server_writes_are_summed_by_resource_and_reads_are_left_out() {
        let counts = WriteCounts::from_api_server(API_SERVER);
        assert_eq!(
            counts.0,
            BTreeMap::from([
                ("jobruns/status".to_string(), 2.0),
                ("leases".to_string(), 90.0),
                ("pods".to_string(), 30.0),
                ("pods/binding".to_string(), 30.0),
                ("pods/status".to_string(), 60.0),
            ])
        );
        assert_eq!(counts.of_runs(), 122.0);
        assert_eq!(counts.other(), 90.0);
    }

    #[test]
    fn operator_writes_use_its_lowercase_verbs() {
        let text = r#"# TYPE horolog_api_requests_total counter
horolog_api_requests_total{verb="create",resource="jobruns",code="201"} 10
horolog_api_requests_total{verb="patch",resource="jobruns/status",code="200"} 10
horolog_api_requests_total{verb="patch",resource="jobruns/status",code="409"} 1
horolog_api_requests_total{verb="watch",resource="pods",code="200"} 4
horolog_api_requests_total{verb="get",resource="pods",code="200"} 7
horolog_api_requests_total{verb="delete",resource="jobruns",code="200"} 9
"#;
        let counts = WriteCounts::from_operator(text);
        assert_eq!(
            counts.0,
            BTreeMap::from([
                ("jobruns".to_string(), 19.0),
                ("jobruns/status".to_string(), 11.0),
            ])
        );
    }

    #[test]
    fn label_values_may_hold_escaped_quotes_and_commas() {
        let text = r#"apiserver_request_total{verb="POST",resource="events",subresource="a \"b\", c"} 2"#;
        let counts = WriteCounts::from_api_server(text);
        assert_eq!(counts.0.get("events/a \"b\", c"), Some(&2.0));
    }

    #[test]
    fn the_window_counts_what_grew_and_a_reset_counter_counts_from_zero() {
        let start = WriteCounts(BTreeMap::from([
            ("pods".to_string(), 100.0),
            ("events".to_string(), 40.0),
            ("jobruns".to_string(), 50.0),
        ]));
        let end = WriteCounts(BTreeMap::from([
            ("pods".to_string(), 130.0),
            ("events".to_string(), 40.0),
            ("jobruns".to_string(), 7.0),
            ("schedules/status".to_string(), 10.0),
        ]));
        assert_eq!(
            end.since(&start).0,
            BTreeMap::from([
                ("jobruns".to_string(), 7.0),
                ("pods".to_string(), 30.0),
                ("schedules/status".to_string(), 10.0),
            ])
        );
    }

    #[test]
    fn per_run_divides_the_run_resources_by_the_runs_in_the_window() {
        let api = WriteCounts(BTreeMap::from([
            ("pods".to_string(), 20.0),
            ("pods/binding".to_string(), 10.0),
            ("jobruns".to_string(), 10.0),
            ("leases".to_string(), 45.0),
        ]));
        let operator = WriteCounts(BTreeMap::from([("jobruns".to_string(), 10.0)]));
        let writes = WritesPerRun::of(10, Some(api), Some(operator));
        assert_eq!(writes.api_server, Some(4.0));
        assert_eq!(writes.operator, Some(1.0));
        assert_eq!(writes.api_server_other, 45.0);
        assert_eq!(
            WritesPerRun::of(0, Some(WriteCounts::default()), None).api_server,
            None
        );
        assert_eq!(WritesPerRun::of(10, None, None).api_server, None);
        // An empty sum is 0, not -0 (as `Iterator::sum` of floats gives), which prints "-0".
        let nothing = WritesPerRun::of(10, Some(WriteCounts::default()), None);
        assert_eq!(format!("{:.0}", nothing.api_server_other), "0");
    }
}
