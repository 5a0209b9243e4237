//! Prometheus metrics: one registry per process, served at `/metrics`.
//!
//! Labels never carry tenant data or anything a client sent verbatim (routes
//! are the matched templates), so no secret can reach a scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectorLabels {
    pub projector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// Buckets of the pipeline delays, in seconds: fine around the 50 ms the
/// service aims at, coarse beyond.
const LAG_BUCKETS: [f64; 20] = [
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Seconds from `t` until now (0 for a time in the future).
pub fn seconds_since(t: chrono::DateTime<chrono::Utc>) -> f64 {
    (chrono::Utc::now() - t)
        .to_std()
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_latency: Family<RouteOnly, Histogram>,
    pub events_appended: Counter,
    pub relay_published: Counter,
    /// Events committed but not yet published (at the last relay pass).
    pub relay_lag: Gauge,
    /// From an event's `recorded_at` to JetStream's acknowledgement of it.
    pub relay_delay: Histogram,
    /// From an event's `recorded_at` to the commit of the batch applying it.
    pub projector_delay: Family<ProjectorLabels, Histogram>,
    pub projector_lag: Family<ProjectorLabels, Gauge>,
    /// 1 while a projector is stopped on an event it cannot apply.
    pub projector_stopped: Family<ProjectorLabels, Gauge>,
    pub originations: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let http_requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_latency.clone(),
        );
        let events_appended = Counter::default();
        registry.register(
            "events_appended",
            "Events appended to the store",
            events_appended.clone(),
        );
        let relay_published = Counter::default();
        registry.register(
            "relay_published",
            "Events published to JetStream",
            relay_published.clone(),
        );
        let relay_lag = Gauge::default();
        registry.register(
            "relay_lag_events",
            "Events not yet published",
            relay_lag.clone(),
        );
        let relay_delay = Histogram::new(LAG_BUCKETS.into_iter());
        registry.register(
            "relay_delay_seconds",
            "From an event's recorded_at to its publish acknowledgement",
            relay_delay.clone(),
        );
        let projector_delay = Family::<ProjectorLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LAG_BUCKETS.into_iter())
        });
        registry.register(
            "projector_delay_seconds",
            "From an event's recorded_at to the commit of its projection",
            projector_delay.clone(),
        );
        let projector_lag = Family::<ProjectorLabels, Gauge>::default();
        registry.register(
            "projector_lag_events",
            "Events not yet projected",
            projector_lag.clone(),
        );
        let projector_stopped = Family::<ProjectorLabels, Gauge>::default();
        registry.register(
            "projector_stopped",
            "1 while a projector is stopped on an event it cannot apply",
            projector_stopped.clone(),
        );
        let originations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "originations",
            "Originations by outcome",
            originations.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_latency,
            events_appended,
            relay_published,
            relay_lag,
            relay_delay,
            projector_delay,
            projector_lag,
            projector_stopped,
            originations,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
