//! The REST API: routes, and the one way a handler calls a service.
//!
//! Handlers only translate: JSON in, a typed gRPC call through the
//! service's replica pool ([`dishpatch_pool::ReplicaPool::call`], given the
//! request's [`Call`] context: request id and deadline), JSON out
//! ([`respond`]). Every error goes through [`error::ApiError`].

mod access;
mod dto;
pub mod error;
mod extract;
mod health;
mod identity;
mod limits;
mod metrics;
mod notification_stream;
mod notifications;
mod openapi;
mod orders;
pub mod request_id;
mod restaurants;
mod sign_in;

pub use limits::RateLimitSettings;
pub use metrics::Metrics;
pub use notification_stream::{StreamLimits, StreamSettings};
pub use sign_in::DevSignIn;

use crate::auth::Verifier;
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use dishpatch::{
    call::CallContext,
    trace::TraceContext,
    wire::{
        IDEMPOTENCY_KEY,
        header::{REQUEST_ID, SERVED_BY},
    },
};
use dishpatch_pool::{Answered, ReplicaPool};
use error::ApiError;
use http::{
    HeaderName, HeaderValue, Method, StatusCode,
    header::{
        AUTHORIZATION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER, WWW_AUTHENTICATE,
        X_CONTENT_TYPE_OPTIONS,
    },
    request::Parts,
};
use limits::RateLimits;
use request_id::RequestId;
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use tonic::metadata::AsciiMetadataValue;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

/// The largest request body accepted; larger ones get 413.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The replica pools of the three services.
#[derive(Debug, Clone)]
pub struct Pools {
    /// restaurant-svc.
    pub restaurants: ReplicaPool,
    /// order-svc.
    pub orders: ReplicaPool,
    /// notify-svc.
    pub notifications: ReplicaPool,
}

/// Who callers are.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Checks bearer tokens.
    pub verifier: Arc<Verifier>,
    /// Development sign-in, if on.
    pub sign_in: Option<Arc<DevSignIn>>,
}

/// What every handler shares: cloned for every request that extracts it,
/// so one reference count rather than one per field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Shared {
    pools: Pools,
    identity: Identity,
    metrics: Arc<Metrics>,
    deadline: Duration,
    show_replicas: bool,
    body_read_timeout: Duration,
    streams: StreamSettings,
    started: Instant,
    /// The OpenAPI document, made once.
    openapi: axum::body::Bytes,
}

/// The context of the calls a request makes: its request id, and its
/// deadline, counted from when its handler starts.
#[derive(Debug)]
pub(crate) struct Call(CallContext);

impl std::ops::Deref for Call {
    type Target = CallContext;

    fn deref(&self) -> &CallContext {
        &self.0
    }
}

impl FromRequestParts<AppState> for Call {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .and_then(|id| AsciiMetadataValue::try_from(id.0.as_bytes()).ok());
        let context = CallContext::new(request_id, Some(Instant::now() + state.deadline));
        // Taken, not cloned: nothing after the handler's context needs it.
        Ok(Self(match parts.extensions.remove::<TraceContext>() {
            Some(trace) => context.with_trace(trace),
            None => context,
        }))
    }
}

/// `GET /openapi.json`: the REST API's contract (see [`openapi`]).
async fn openapi_document(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

/// A service's answer as a JSON response with `status`, converted to its
/// REST shape, saying which replica gave it.
fn respond<J: Serialize + From<T>, T>(answered: Answered<T>, status: StatusCode) -> Response {
    let mut response = (status, axum::Json(J::from(answered.message))).into_response();
    response.headers_mut().insert(SERVED_BY, answered.served_by);
    response
}

/// How the REST API serves.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The deadline of every request.
    pub deadline: Duration,
    /// Whether responses say which replica answered (`x-served-by`) and
    /// `/health` lists every replica.
    pub show_replicas: bool,
    /// Requests handled at once; those past it are refused at once (503).
    pub max_in_flight: usize,
    /// How long a request body may take to arrive (408 past it).
    pub body_read_timeout: Duration,
    /// Requests a second each caller may make, by class of route.
    pub rate_limits: RateLimitSettings,
    /// Origins whose pages may call the API (CORS); none: no page of
    /// another origin may.
    pub cors_origins: Vec<HeaderValue>,
    /// How live notification streams behave.
    pub streams: StreamSettings,
}

/// The REST API over `pools`, for callers `identity` names, counted in
/// `metrics`. Call it inside a Tokio runtime (the rate limits' upkeep runs
/// on it).
pub fn router(pools: Pools, settings: ApiSettings, identity: Identity, metrics: Arc<Metrics>) -> Router {
    let state = AppState(Arc::new(Shared {
        pools,
        identity,
        metrics: metrics.clone(),
        deadline: settings.deadline,
        show_replicas: settings.show_replicas,
        body_read_timeout: settings.body_read_timeout,
        streams: settings.streams,
        started: Instant::now(),
        openapi: openapi::document().into(),
    }));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight));
    let limits = Arc::new(RateLimits::new(settings.rate_limits));
    RateLimits::keep_forgetting(&limits);
    // One stack, applied once: each layer of a router is boxed on its own,
    // and cloned for every request. The first layer is the outermost.
    let layers = tower::ServiceBuilder::new()
        // A request id, a span and JSON error bodies for every response,
        // including those of the layers below.
        .layer(middleware::from_fn(request_id::assign))
        // Every request counted and timed by route, refusals included.
        .layer(middleware::from_fn_with_state(metrics, metrics::record))
        // Strangers are not told the topology: which replica answered.
        .option_layer((!settings.show_replicas).then(|| middleware::map_response(hide_replica)))
        // Browsers may not sniff, frame or leak the referrer of an answer.
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        ))
        // Pages of the configured origins may call the API (preflights are
        // answered here, before anything below); others' may not.
        .option_layer(cors(&settings.cors_origins))
        // At most `max_in_flight` requests at once, across every route (one
        // semaphore): past it, 503 with Retry-After at once rather than a
        // queue that grows latency for everyone.
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
            in_flight,
        ))
        // Who is calling: a bearer token verified, or none (inside the
        // bound on requests in flight, which bounds signature checks too).
        .layer(middleware::from_fn_with_state(
            state.identity.verifier.clone(),
            identity::authenticate,
        ))
        // A token bucket per caller and class of route: 429 past it.
        .layer(middleware::from_fn_with_state(limits, limits::limit))
        // Bodies over 64 KiB are refused with 413 before they are read.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .route(
            "/api/restaurants",
            get(restaurants::list).post(restaurants::create),
        )
        .route("/api/restaurants/{id}", get(restaurants::get))
        .route("/api/restaurants/{id}/menu", get(restaurants::menu))
        .route("/api/restaurants/{id}/menu/items", post(restaurants::add_item))
        .route("/api/orders", get(orders::list).post(orders::place))
        .route("/api/orders/{id}", get(orders::get))
        .route("/api/orders/{id}/status", patch(orders::move_status))
        .route("/api/notifications", get(notifications::list))
        .route("/api/notifications/stream", get(notification_stream::stream))
        .route("/api/dev/sign-in", post(sign_in::sign_in))
        .route("/health", get(health::report))
        .route("/openapi.json", get(openapi_document))
        .route("/metrics", get(metrics::expose))
        .merge(crate::web::routes())
        .fallback(
            |method: http::Method, uri: http::Uri| async move { ApiError::no_route(&method, uri.path()) },
        )
        .method_not_allowed_fallback(|method: http::Method, uri: http::Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} does not accept {method}", uri.path()),
            )
        })
        .layer(layers)
        .with_state(state)
}

/// The answer to a request refused because the edge is at capacity.
async fn overloaded(_: tower::BoxError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the edge is handling as many requests as it can; retry after Retry-After seconds",
    )
}

/// What an API answer's page may do, were a browser to render one: nothing.
const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// CORS for pages of `origins`, or none if there are none: the methods and
/// headers of the API, and the headers a page may read of its answers.
fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let header = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::PATCH])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                header(IDEMPOTENCY_KEY),
                REQUEST_ID,
                // A page resuming a live stream (`fetch`, with its token).
                header("last-event-id"),
            ])
            .expose_headers([
                REQUEST_ID,
                SERVED_BY,
                RETRY_AFTER,
                WWW_AUTHENTICATE,
                header("ratelimit"),
                header("ratelimit-policy"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A response without `x-served-by`.
async fn hide_replica(mut response: Response) -> Response {
    response.headers_mut().remove(SERVED_BY);
    response
}
