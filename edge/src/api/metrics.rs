//! The edge's metrics, in Prometheus's text format at `GET /metrics`
//! ([`prometheus_client`]): requests by route template (never the raw
//! path, where every id would make a series of its own), method and status
//! class; their latency by route; requests in flight; open connections;
//! and, read at each scrape, the pools' calls, attempts, retries, hedges,
//! ejections, probes and replicas ([`PoolMetrics`]: replicas named only
//! with `--show-replicas`).

use super::{AppState, Pools};
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use dishpatch::metrics::{Held, latency_histogram};
use dishpatch_pool::PoolMetrics;
use http::{Method, header::CONTENT_TYPE};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
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

/// Every metric of the edge.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    /// Open client connections (kept by the accept loop).
    pub(crate) connections: Gauge,
    /// Live notification streams open.
    pub(crate) streams: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = dishpatch::metrics::registry();
        let edge = registry.sub_registry_with_prefix("edge");
        let requests = Family::<RequestLabels, Counter>::default();
        edge.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status class",
            requests.clone(),
        );
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        edge.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by route template and method",
            Unit::Seconds,
            latency.clone(),
        );
        let in_flight = Gauge::default();
        edge.register(
            "http_requests_in_flight",
            "HTTP requests being handled",
            in_flight.clone(),
        );
        let connections = Gauge::default();
        edge.register(
            "http_connections_open",
            "Client connections open",
            connections.clone(),
        );
        let streams = Gauge::default();
        edge.register(
            "sse_streams_open",
            "Live notification streams (Server-Sent Events) open",
            streams.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            in_flight,
            connections,
            streams,
        }
    }
}

impl Metrics {
    /// Counts the calls, attempts and replicas of `pools` ([`PoolMetrics`]),
    /// per replica only where replicas may be shown to callers.
    pub fn count_pools(&mut self, pools: &Pools, show_replicas: bool) {
        let pools = vec![
            pools.restaurants.clone(),
            pools.orders.clone(),
            pools.notifications.clone(),
        ];
        self.registry
            .register_collector(Box::new(PoolMetrics::new(pools, show_replicas)));
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        dishpatch::metrics::render(&self.registry)
    }
}

/// The route templates requests are counted by; a request that matched
/// none counts as `unmatched`.
const ROUTES: [&str; 16] = [
    "/api/restaurants",
    "/api/restaurants/{id}",
    "/api/restaurants/{id}/menu",
    "/api/restaurants/{id}/menu/items",
    "/api/orders",
    "/api/orders/{id}",
    "/api/orders/{id}/status",
    "/api/notifications",
    "/api/notifications/stream",
    "/api/dev/sign-in",
    "/health",
    "/openapi.json",
    "/metrics",
    "/",
    "/app.js",
    "/app.css",
];

pub(crate) fn route_of(matched: Option<&MatchedPath>) -> &'static str {
    matched
        .and_then(|matched| ROUTES.iter().find(|route| **route == matched.as_str()))
        .copied()
        .unwrap_or("unmatched")
}

pub(crate) fn method_of(method: &Method) -> &'static str {
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

/// The middleware: counts and times every request, refusals included.
pub(crate) async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = route_of(request.extensions().get::<MatchedPath>());
    let method = method_of(request.method());
    let in_flight = Held::new(&metrics.in_flight);
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
        [(CONTENT_TYPE, dishpatch::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
