//! Prometheus metrics, shared by the API and the workers.
//!
//! Two kinds live here:
//! * Process metrics, recorded as things happen (requests, stage attempts, deployments,
//!   open websockets); they live in one registry per process and describe that process.
//! * Cluster metrics, read at scrape time from the database and the queue (executions and
//!   stages by status, queue backlog, remote workers), so every process reports the same,
//!   correct numbers however many processes changed them. Aggregate them with `max`, not
//!   `sum`, across instances.
//!
//! [`render`] writes both in the OpenMetrics text format (what Prometheus asks for first).
//! Every name starts with `orchestrator_`; counters end in `_total`, durations in `_seconds`.
//! Label values that come from callers (operation names, actions, outcomes) are bounded: a
//! value that is too long, oddly spelt or beyond the first [`DISTINCT_LABEL_VALUES`] values
//! seen becomes [`OTHER`], so no client can grow the series without limit.

mod scrape;

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::CoreContext;

/// Content type of [`render`]'s answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label value that stands for every value not kept on its own.
pub const OTHER: &str = "(other)";

/// Longest label value kept as it is.
pub const MAX_LABEL_LEN: usize = 64;

/// How many distinct values one caller-supplied label keeps before new ones become [`OTHER`].
pub const DISTINCT_LABEL_VALUES: usize = 200;

const PREFIX: &str = "orchestrator";

/// Request latencies: 5 ms to 30 s.
const REQUEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Stage attempts: 10 ms to an hour.
const STAGE_BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GraphqlLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    platform: String,
    outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn stage_histogram() -> Histogram {
    Histogram::new(STAGE_BUCKETS)
}

/// Keeps the first [`DISTINCT_LABEL_VALUES`] well-formed values of one label.
#[derive(Debug, Default)]
struct BoundedLabel {
    seen: Mutex<HashSet<String>>,
}

impl BoundedLabel {
    fn value(&self, raw: Option<&str>) -> String {
        let Some(raw) = raw.filter(|v| well_formed(v)) else {
            return OTHER.into();
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(raw) || seen.len() < DISTINCT_LABEL_VALUES {
            seen.insert(raw.to_string());
            raw.to_string()
        } else {
            OTHER.into()
        }
    }
}

/// Letters, digits and `_ - . : /`, at most [`MAX_LABEL_LEN`] of them.
fn well_formed(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LABEL_LEN
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
}

/// The process metrics and the registry that exposes them.
struct Metrics {
    registry: Registry,
    /// `orchestrator_http_requests_total{route, status_class}`: HTTP requests answered;
    /// `route` is a fixed route name or `other`, `status_class` `2xx` … `5xx`.
    http_requests: Family<HttpLabels, Counter>,
    /// `orchestrator_http_request_duration_seconds{route}`: time to answer a request
    /// (websockets: until the upgrade).
    http_duration: HistogramFamily<RouteLabel>,
    /// `orchestrator_graphql_requests_total{operation, outcome}`: GraphQL operations over
    /// HTTP; `outcome` is `ok` or the first error's code.
    graphql_requests: Family<GraphqlLabels, Counter>,
    /// `orchestrator_graphql_request_duration_seconds{operation}`: time to execute one.
    graphql_duration: HistogramFamily<OperationLabel>,
    /// `orchestrator_graphql_subscriptions_open`: subscriptions running in this process.
    subscriptions_open: Gauge,
    /// `orchestrator_websocket_connections_open`: GraphQL websockets open on this process.
    websockets_open: Gauge,
    /// `orchestrator_stage_duration_seconds{action}`: time one stage attempt ran in this
    /// worker process, from its claim to its outcome.
    stage_duration: HistogramFamily<ActionLabel>,
    /// `orchestrator_stages_in_flight`: stage attempts this worker process runs now.
    stages_in_flight: Gauge,
    /// `orchestrator_deployments_total{platform, outcome}`: component deployments this
    /// process finished (see [`record_deployment`]).
    deployments: Family<DeploymentLabels, Counter>,
    /// Bounds the `operation` label.
    operations: BoundedLabel,
    /// Bounds the `action` label.
    actions: BoundedLabel,
    /// Bounds the `outcome` labels.
    outcomes: BoundedLabel,
}

impl Metrics {
    fn new() -> Metrics {
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(request_histogram);
        let graphql_requests = Family::<GraphqlLabels, Counter>::default();
        let graphql_duration: HistogramFamily<OperationLabel> =
            Family::new_with_constructor(request_histogram);
        let subscriptions_open = Gauge::default();
        let websockets_open = Gauge::default();
        let stage_duration: HistogramFamily<ActionLabel> =
            Family::new_with_constructor(stage_histogram);
        let stages_in_flight = Gauge::default();
        let deployments = Family::<DeploymentLabels, Counter>::default();

        let mut registry = Registry::with_prefix(PREFIX);
        // `orchestrator_build_info{version}`: the running version, always 1.
        registry.register(
            "build",
            "The running version (always 1)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status class (2xx, 4xx, ...)",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route (websockets: until the upgrade)",
            Unit::Seconds,
            http_duration.clone(),
        );
        registry.register(
            "graphql_requests",
            "GraphQL operations over HTTP, by operation name and outcome (ok or the error code)",
            graphql_requests.clone(),
        );
        registry.register_with_unit(
            "graphql_request_duration",
            "Time to execute a GraphQL operation over HTTP, by operation name",
            Unit::Seconds,
            graphql_duration.clone(),
        );
        registry.register(
            "graphql_subscriptions_open",
            "GraphQL subscriptions running in this process",
            subscriptions_open.clone(),
        );
        registry.register(
            "websocket_connections_open",
            "GraphQL websocket connections open on this process",
            websockets_open.clone(),
        );
        registry.register_with_unit(
            "stage_duration",
            "Time one stage attempt ran in this worker process, by action",
            Unit::Seconds,
            stage_duration.clone(),
        );
        registry.register(
            "stages_in_flight",
            "Stage attempts this worker process is running now",
            stages_in_flight.clone(),
        );
        registry.register(
            "deployments",
            "Deployments of components finished by this process, by platform and outcome",
            deployments.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_duration,
            graphql_requests,
            graphql_duration,
            subscriptions_open,
            websockets_open,
            stage_duration,
            stages_in_flight,
            deployments,
            operations: BoundedLabel::default(),
            actions: BoundedLabel::default(),
            outcomes: BoundedLabel::default(),
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn status_class(status: u16) -> String {
    format!("{}xx", (status / 100).clamp(1, 5))
}

/// Counts one answered HTTP request. `route` is one of the product's fixed route names.
pub fn observe_http_request(route: &'static str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.http_requests
        .get_or_create(&HttpLabels {
            route: route.into(),
            status_class: status_class(status),
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabel {
            route: route.into(),
        })
        .observe(elapsed.as_secs_f64());
}

/// Counts one GraphQL operation. `operation` is its name (`None` when anonymous or
/// unknown); `outcome` is `ok` or the first error's code.
pub fn observe_graphql_request(operation: Option<&str>, outcome: &str, elapsed: Duration) {
    let m = &*METRICS;
    let operation = m.operations.value(operation);
    m.graphql_requests
        .get_or_create(&GraphqlLabels {
            operation: operation.clone(),
            outcome: m.outcomes.value(Some(outcome)),
        })
        .inc();
    m.graphql_duration
        .get_or_create(&OperationLabel { operation })
        .observe(elapsed.as_secs_f64());
}

/// Counts one finished deployment of a component on `platform` (`docker` or
/// `kubernetes`) with `outcome` (e.g. `succeeded`, `failed`, `rolled_back`).
pub fn record_deployment(platform: &str, outcome: &str) {
    let m = &*METRICS;
    let platform = match platform.to_ascii_lowercase().as_str() {
        p @ ("docker" | "kubernetes") => p.to_string(),
        _ => OTHER.to_string(),
    };
    m.deployments
        .get_or_create(&DeploymentLabels {
            platform,
            outcome: m.outcomes.value(Some(&outcome.to_ascii_lowercase())),
        })
        .inc();
}

/// Keeps a gauge one higher while it lives.
#[derive(Debug)]
pub struct OpenGuard(&'static Gauge);

impl OpenGuard {
    fn open(gauge: &'static Gauge) -> OpenGuard {
        gauge.inc();
        OpenGuard(gauge)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts an open GraphQL websocket until the guard is dropped.
pub fn websocket_opened() -> OpenGuard {
    OpenGuard::open(&METRICS.websockets_open)
}

/// Counts a running subscription until the guard is dropped.
pub fn subscription_opened() -> OpenGuard {
    OpenGuard::open(&METRICS.subscriptions_open)
}

/// One stage attempt in this worker process: counted in flight while it lives; its
/// duration is recorded by [`StageAttempt::finish`].
#[derive(Debug)]
pub struct StageAttempt {
    action: String,
    started: Instant,
    _in_flight: OpenGuard,
}

impl StageAttempt {
    /// Starts timing an attempt of a stage with `action`.
    pub fn begin(action: &str) -> StageAttempt {
        StageAttempt {
            action: METRICS.actions.value(Some(action)),
            started: Instant::now(),
            _in_flight: OpenGuard::open(&METRICS.stages_in_flight),
        }
    }

    /// Records the attempt's duration (call once, when its action has finished).
    pub fn finish(&self) {
        METRICS
            .stage_duration
            .get_or_create(&ActionLabel {
                action: self.action.clone(),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The whole exposition: this process's metrics, then the cluster metrics read now from
/// `core`'s database and queue. A source that cannot be read is left out (and logged), so a
/// database outage does not hide the process metrics.
pub async fn render(core: &CoreContext) -> String {
    let mut cluster = Registry::with_prefix(PREFIX);
    scrape::collect(core, &mut cluster).await;
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = encode_registry(&mut out, &METRICS.registry);
    let _ = encode_registry(&mut out, &cluster);
    let _ = encode_eof(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_metrics() -> String {
        let mut out = String::new();
        encode_registry(&mut out, &METRICS.registry).unwrap();
        out
    }

    #[test]
    fn caller_supplied_labels_are_bounded() {
        let label = BoundedLabel::default();
        assert_eq!(label.value(None), OTHER);
        assert_eq!(label.value(Some("")), OTHER);
        assert_eq!(label.value(Some(&"x".repeat(65))), OTHER);
        assert_eq!(label.value(Some("has space")), OTHER);
        assert_eq!(label.value(Some(&"x".repeat(64))), "x".repeat(64));
        for i in 1..DISTINCT_LABEL_VALUES {
            assert_eq!(label.value(Some(&format!("op{i}"))), format!("op{i}"));
        }
        assert_eq!(label.value(Some("one_too_many")), OTHER);
        assert_eq!(label.value(Some("op7")), "op7", "known values stay");
    }

    #[test]
    fn names_follow_the_conventions() {
        observe_http_request("/health", 200, Duration::from_millis(3));
        observe_graphql_request(Some("StartIt"), "ok", Duration::from_millis(3));
        record_deployment("Kubernetes", "succeeded");
        let attempt = StageAttempt::begin("noop");
        attempt.finish();
        drop(attempt);
        let text = process_metrics();
        for line in [
            "orchestrator_build_info{version=\"",
            "orchestrator_http_requests_total{route=\"/health\",status_class=\"2xx\"}",
            "orchestrator_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/health\"}",
            "orchestrator_graphql_requests_total{operation=\"StartIt\",outcome=\"ok\"}",
            "orchestrator_stage_duration_seconds_count{action=\"noop\"}",
            "orchestrator_deployments_total{platform=\"kubernetes\",outcome=\"succeeded\"}",
            "orchestrator_stages_in_flight ",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("orchestrator_"), "{line}");
        }
    }
}
