//! Prometheus metrics of the service (`GET /metrics`).
//!
//! Through prometheus-client (the Prometheus project's Rust client), in
//! its OpenMetrics text format, which Prometheus scrapes as it is:
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `pipe_serve_requests_total` | `endpoint`, `status` | requests answered |
//! | `pipe_serve_request_duration_seconds` | `endpoint` | latency histogram, from the request head to the response |
//! | `pipe_serve_requests_in_flight` | | requests being answered |
//! | `pipe_serve_connections` | | open connections |
//! | `pipe_serve_predictions_total` | `prediction` | answers by predicted label |
//! | `pipe_serve_model_reloads_total` | `result` (`ok`, `failed`) | model reloads |
//! | `pipe_serve_model_info` | `version` | 1 for the model version in service |
//!
//! `endpoint` is one of the API's routes, or `other` for any path it does
//! not serve: a label takes no value from the request, so no client can
//! grow the number of series.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The latency buckets, in seconds: 50 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PredictionLabels {
    prediction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    connections: Gauge,
    predictions: Family<PredictionLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    model: Family<VersionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pipe_serve");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint and status",
            requests.clone(),
        );
        let latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "request_duration_seconds",
            "Time from the request head to the response",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        let connections = Gauge::default();
        registry.register("connections", "Open connections", connections.clone());
        let predictions = Family::<PredictionLabels, Counter>::default();
        registry.register(
            "predictions",
            "Texts answered, by predicted label",
            predictions.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register("model_reloads", "Model reloads, by result", reloads.clone());
        // Both series exist from the start, at 0.
        let _ = reloads.get_or_create(&ResultLabels { result: "ok" });
        let _ = reloads.get_or_create(&ResultLabels { result: "failed" });
        let model = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "model_info",
            "The model version in service (BLAKE3 of its file)",
            model.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            connections,
            predictions,
            reloads,
            model,
        }
    }

    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    pub fn request_finished(&self, endpoint: &'static str, status: u16, seconds: f64) {
        self.in_flight.dec();
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(seconds);
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn predicted(&self, label: &str) {
        let labels = PredictionLabels {
            prediction: label.to_string(),
        };
        // Read-locked lookup first: the label is nearly always there.
        match self.predictions.get(&labels) {
            Some(counter) => {
                counter.inc();
            }
            None => {
                self.predictions.get_or_create(&labels).inc();
            }
        }
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Marks `version` as the model in service (and no other).
    pub fn model_in_service(&self, version: &str) {
        self.model.clear();
        self.model
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_latency_and_the_model() {
        let m = Metrics::new();
        m.model_in_service("abc");
        m.model_in_service("def");
        m.request_started();
        m.request_finished("/prediction_job/", 201, 0.0003);
        m.predicted("positive");
        m.predicted("positive");
        let text = m.render();
        for line in [
            "pipe_serve_requests_total{endpoint=\"/prediction_job/\",status=\"201\"} 1",
            "pipe_serve_request_duration_seconds_bucket{le=\"0.0005\",endpoint=\"/prediction_job/\"} 1",
            "pipe_serve_request_duration_seconds_bucket{le=\"0.00025\",endpoint=\"/prediction_job/\"} 0",
            "pipe_serve_requests_in_flight 0",
            "pipe_serve_predictions_total{prediction=\"positive\"} 2",
            "pipe_serve_model_reloads_total{result=\"failed\"} 0",
            "pipe_serve_model_info{version=\"def\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("version=\"abc\""), "{text}");
    }
}
