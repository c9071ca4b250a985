//! The Grafana dashboard (charts/horolog/files/grafana-dashboard.json) and the PrometheusRule
//! (charts/horolog/templates/prometheusrule.yaml) name only metrics the operator exports: every
//! PromQL expression in them is parsed with a real PromQL parser, and each metric it selects
//! must be among the series the operator's own registry renders (not a hand list).

use std::collections::BTreeSet;
use std::path::PathBuf;

use std::time::Duration;

use horolog::controller::{Observer, ScheduleState};
use horolog::metrics::{ApiRequest, Metrics};
use promql_parser::parser::{self, Expr};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The operator's registry after every hook the controllers call has been called once, so
/// every family has a series (a family without one renders nothing).
fn populated() -> Metrics {
    let metrics = Metrics::new();
    let observer: &dyn Observer = &metrics;
    let now = chrono::DateTime::from_timestamp(1_767_225_600, 0);
    observer.reconciled("schedule", Duration::from_millis(3), Some("conflict"));
    observer.queue_depth("schedule", 1);
    observer.queue_added("schedule");
    observer.queue_waited("schedule", Duration::from_millis(1));
    observer.watch_failed("Pod");
    observer.fired("ns", "nightly", 1);
    observer.finished(
        "ns",
        Some("nightly"),
        "Failed",
        Some(chrono::TimeDelta::seconds(3)),
    );
    observer.pod_created(chrono::TimeDelta::milliseconds(20));
    observer.planned(1, 1);
    observer.excluded("ns", "nightly", 1);
    observer.schedule_state(&ScheduleState {
        namespace: "ns".into(),
        name: "nightly".into(),
        next_fire_time: now,
        interval_seconds: Some(60.0),
        last_success: now,
        ready: (true, "Scheduled".into()),
        paused: (false, "NotPaused".into()),
        active_runs: 1,
        consecutive_failures: 0,
    });
    metrics.set_leader(true);
    let request = ApiRequest::of(
        &http::Method::PATCH,
        "/apis/horolog.dev/v1alpha1/namespaces/ns/schedules/a/status",
        None,
    );
    metrics.observe_api_request(&request, "200", 0.01);
    metrics
}

/// Every series name the operator can export, read off the `# TYPE` lines of the registry's
/// OpenMetrics text: a counter is sampled as `_total`, a histogram as `_bucket`, `_sum` and
/// `_count`. Plus `up`, which Prometheus adds to every target.
fn exported() -> BTreeSet<String> {
    let text = populated().encode();
    let mut names = BTreeSet::from(["up".to_string()]);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            panic!("odd TYPE line {line:?}");
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The metric names an expression selects.
fn selected(expr: &Expr, into: &mut Vec<String>) {
    let vector = |vs: &promql_parser::parser::VectorSelector, into: &mut Vec<String>| {
        let name = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        into.push(name.unwrap_or_else(|| panic!("a selector without a metric name: {vs}")));
    };
    match expr {
        Expr::Aggregate(e) => {
            selected(&e.expr, into);
            if let Some(param) = &e.param {
                selected(param, into);
            }
        }
        Expr::Unary(e) => selected(&e.expr, into),
        Expr::Binary(e) => {
            selected(&e.lhs, into);
            selected(&e.rhs, into);
        }
        Expr::Paren(e) => selected(&e.expr, into),
        Expr::Subquery(e) => selected(&e.expr, into),
        Expr::VectorSelector(vs) => vector(vs, into),
        Expr::MatrixSelector(ms) => vector(&ms.vs, into),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| selected(arg, into)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Parses `expr` (with Grafana's range variables replaced by a duration) and returns the
/// metrics it selects.
fn metrics_of(expr: &str, whence: &str) -> Vec<String> {
    let expr = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    let parsed = parser::parse(&expr).unwrap_or_else(|e| panic!("{whence}: {expr:?} does not parse: {e}"));
    let mut names = Vec::new();
    selected(&parsed, &mut names);
    assert!(!names.is_empty(), "{whence}: {expr:?} selects no metric");
    names
}

/// Every PromQL expression of the dashboard, with where it is.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&read("charts/horolog/files/grafana-dashboard.json"))
        .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr").to_string();
            queries.push((format!("panel {:?}", panel["title"]), expr));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().expect("templating") {
        let Some(query) = variable["query"]["query"].as_str() else {
            continue;
        };
        // Grafana's label_values(SELECTOR, LABEL): the selector is PromQL.
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector.to_string())
            .unwrap_or_else(|| panic!("variable query {query:?} is not label_values(...)"));
        queries.push((format!("variable {:?}", variable["name"]), inner));
    }
    queries
}

/// Every alert expression of the PrometheusRule template, with its Helm values filled in
/// (the chart's defaults: `$job` a string, N and thresholds numbers, windows durations).
fn rule_queries() -> Vec<(String, String)> {
    let template = read("charts/horolog/templates/prometheusrule.yaml");
    let filled = template
        .replace("{{ $job }}", "horolog-metrics")
        .replace("{{ .failures }}", "3")
        .replace("{{ .thresholdSeconds }}", "5")
        .replace("{{ .window }}", "15m");
    let mut queries = Vec::new();
    let mut lines = filled.lines().peekable();
    let mut alert = String::new();
    while let Some(line) = lines.next() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            alert = name.to_string();
        }
        if line.trim() == "expr: |-" {
            let mut expr = String::new();
            while let Some(next) = lines.peek() {
                if next.trim().starts_with("{{-") || !next.starts_with("            ") {
                    break;
                }
                expr.push_str(next.trim());
                expr.push(' ');
                lines.next();
            }
            assert!(
                !expr.contains("{{"),
                "{alert}: an unfilled template value in {expr:?}"
            );
            queries.push((format!("alert {alert}"), expr));
        }
    }
    assert!(
        queries.len() >= 8,
        "found only {} alert expressions",
        queries.len()
    );
    queries
}

fn check(queries: Vec<(String, String)>) {
    let exported = exported();
    let mut unknown = Vec::new();
    for (whence, expr) in &queries {
        for name in metrics_of(expr, whence) {
            if !exported.contains(&name) {
                unknown.push(format!("{whence}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics the operator does not export:\n{}\nit exports:\n{exported:#?}",
        unknown.join("\n")
    );
}

#[test]
fn every_dashboard_query_parses_and_names_exported_metrics() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    check(queries);
}

#[test]
fn every_alert_parses_and_names_exported_metrics() {
    check(rule_queries());
}

#[test]
fn the_dashboard_shows_what_the_issue_asks_for() {
    let all: String = dashboard_queries()
        .into_iter()
        .map(|(_, expr)| expr + "\n")
        .collect();
    for wanted in [
        "histogram_quantile(0.5, sum by (le) (rate(horolog_fire_delay_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(horolog_fire_delay_seconds_bucket",
        "sum by (phase) (rate(horolog_jobrun_phase_transitions_total",
        "horolog_missed_fire_times_total",
        "horolog_coalesced_fire_times_total",
        "horolog_excluded_fire_times_total",
        "horolog_schedule_excluded_fire_times_total",
        "horolog_api_requests_total",
        "horolog_reconcile_queue_depth",
        "horolog_leader",
        "horolog_schedule_ready",
        "horolog_schedule_next_fire_time_seconds",
    ] {
        assert!(all.contains(wanted), "no panel queries {wanted}");
    }
}

/// The checker itself: a misspelt metric is caught, and so is PromQL that does not parse.
#[test]
fn a_misspelt_metric_or_broken_promql_is_caught() {
    let exported = exported();
    let names = metrics_of("sum(rate(horolog_fire_delays_seconds_bucket[5m]))", "test");
    assert!(!exported.contains(&names[0]));
    assert!(exported.contains("horolog_fire_delay_seconds_bucket"));
    assert!(exported.contains("workqueue_depth"));
    assert!(exported.contains("controller_runtime_reconcile_total"));
    assert!(parser::parse("sum(rate(x[5m])").is_err());
}
