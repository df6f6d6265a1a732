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
mod notifications;
mod openapi;
mod orders;
pub mod request_id;
mod restaurants;
mod sign_in;

pub use sign_in::DevSignIn;

use crate::auth::Verifier;
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use dishpatch::{call::CallContext, wire::SERVED_BY};
use dishpatch_pool::{Answered, ReplicaPool};
use error::ApiError;
use http::{StatusCode, request::Parts};
use request_id::RequestId;
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use tonic::metadata::AsciiMetadataValue;

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

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pools: Pools,
    identity: Identity,
    deadline: Duration,
    show_replicas: bool,
    body_read_timeout: Duration,
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
        Ok(Self(CallContext::new(
            request_id,
            Some(Instant::now() + state.deadline),
        )))
    }
}

/// `GET /openapi.json`: the REST API's contract (see [`openapi`]).
async fn openapi_document(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], state.openapi).into_response()
}

/// A service's answer as a JSON response with `status`, converted to its
/// REST shape, saying which replica gave it.
fn respond<J: Serialize + From<T>, T>(answered: Answered<T>, status: StatusCode) -> Response {
    let mut response = (status, axum::Json(J::from(answered.message))).into_response();
    response.headers_mut().insert(SERVED_BY, answered.served_by);
    response
}

/// How the REST API serves.
#[derive(Debug, Clone, Copy)]
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
}

/// The REST API over `pools`, for callers `identity` names.
pub fn router(pools: Pools, settings: ApiSettings, identity: Identity) -> Router {
    let state = AppState {
        pools,
        identity,
        deadline: settings.deadline,
        show_replicas: settings.show_replicas,
        body_read_timeout: settings.body_read_timeout,
        started: Instant::now(),
        openapi: openapi::document().into(),
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight));
    let router = Router::new()
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
        .route("/api/dev/sign-in", post(sign_in::sign_in))
        .route("/health", get(health::report))
        .route("/openapi.json", get(openapi_document))
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
        // Bodies over 64 KiB are refused with 413 before they are read.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Who is calling: a bearer token verified, or none (inside the
        // bound on requests in flight, which bounds signature checks too).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            identity::authenticate,
        ))
        // At most `max_in_flight` requests at once, across every route (one
        // semaphore): past it, 503 with Retry-After at once rather than a
        // queue that grows latency for everyone.
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                    in_flight,
                )),
        );
    let router = if settings.show_replicas {
        router
    } else {
        // Strangers are not told the topology: which replica answered.
        router.layer(middleware::map_response(hide_replica))
    };
    // Outermost: a request id, a span and JSON error bodies for every
    // response, including those of the layers above.
    router
        .layer(middleware::from_fn(request_id::assign))
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

/// A response without `x-served-by`.
async fn hide_replica(mut response: Response) -> Response {
    response.headers_mut().remove(SERVED_BY);
    response
}
