//! The edge's metrics, in Prometheus's text format at `GET /metrics`
//! ([`prometheus_client`]): requests by route template (never the raw
//! path, where every id would make a series of its own), method and status
//! class; their latency by route; requests in flight; open connections;
//! and, read at each scrape, each service's replicas known and in rotation
//! (counts: no replica is named).

use super::{AppState, Pools};
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use dishpatch_pool::PoolState;
use http::{Method, header::CONTENT_TYPE};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text},
    metrics::{
        MetricType,
        counter::Counter,
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use std::{sync::Arc, time::Instant};

/// A request's series: which route, how, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: &'static str,
}

/// A route's latency series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// Latency buckets from 0.5 ms to ~8 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Every metric of the edge.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    /// Open client connections (kept by the accept loop).
    pub(crate) connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dishpatch_edge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status class",
            requests.clone(),
        );
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by route template and method",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled",
            in_flight.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections_open",
            "Client connections open",
            connections.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            in_flight,
            connections,
        }
    }
}

impl Metrics {
    /// Counts the replicas of `pools` at each scrape.
    pub fn count_replicas(&mut self, pools: Pools) {
        self.registry.register_collector(Box::new(Replicas(pools)));
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry).expect("writing to a String does not fail");
        text
    }
}

/// A gauge read from a pool's state: its name, its help, how to read it.
type PoolGauge = (&'static str, &'static str, fn(&PoolState) -> i64);

/// The replicas of every service, read when scraped.
#[derive(Debug)]
struct Replicas(Pools);

impl Collector for Replicas {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pools = [&self.0.restaurants, &self.0.orders, &self.0.notifications];
        let states = pools.map(|pool| (pool.service(), pool.state()));
        let gauges: [PoolGauge; 3] = [
            (
                "replicas_known",
                "Replicas of a service, configured or resolved",
                |state| state.known as i64,
            ),
            (
                "replicas_in_rotation",
                "Replicas of a service taking requests",
                |state| state.in_rotation as i64,
            ),
            (
                "service_panicking",
                "1 while fewer of a service's replicas than the panic threshold are in rotation",
                |state| i64::from(state.panicking),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (service, state) in &states {
                let labels = [("service", *service)];
                ConstGauge::new(value(state)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The route templates requests are counted by; a request that matched
/// none counts as `unmatched`.
const ROUTES: [&str; 12] = [
    "/api/restaurants",
    "/api/restaurants/{id}",
    "/api/restaurants/{id}/menu",
    "/api/restaurants/{id}/menu/items",
    "/api/orders",
    "/api/orders/{id}",
    "/api/orders/{id}/status",
    "/api/notifications",
    "/api/dev/sign-in",
    "/health",
    "/openapi.json",
    "/metrics",
];

fn route_of(matched: Option<&MatchedPath>) -> &'static str {
    matched
        .and_then(|matched| ROUTES.iter().find(|route| **route == matched.as_str()))
        .copied()
        .unwrap_or("unmatched")
}

fn method_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Takes a request out of the in-flight gauge however it ends (a client
/// that goes away drops it half-way).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The middleware: counts and times every request, refusals included.
pub(crate) async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = route_of(request.extensions().get::<MatchedPath>());
    let method = method_of(request.method());
    metrics.in_flight.inc();
    let in_flight = InFlight(metrics.in_flight.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    drop(in_flight);
    metrics
        .latency
        .get_or_create(&RouteLabels { route, method })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: status_class(response.status()),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub(crate) async fn expose(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
