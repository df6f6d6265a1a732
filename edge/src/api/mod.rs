//! The REST API: routes, and the one way a handler calls a service.
//!
//! Handlers only translate: JSON in, a typed gRPC call through the
//! service's replica pool ([`AppState::call`]: deadline, request id,
//! retries), JSON out. Every error goes through [`error::ApiError`].

mod dto;
pub mod error;
mod extract;
mod health;
mod notifications;
mod orders;
pub mod request_id;
mod restaurants;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use dishpatch::wire::SERVED_BY;
use dishpatch_pool::{CallKind, ReplicaPool};
use error::ApiError;
use http::{HeaderValue, StatusCode};
use request_id::RequestId;
use serde::Serialize;
use std::{future::Future, time::Duration};
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

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pools: Pools,
    deadline: Duration,
    started: Instant,
}

/// A service's answer, and the replica that gave it.
#[derive(Debug)]
pub(crate) struct Served<T> {
    served_by: Option<HeaderValue>,
    body: T,
}

impl<T> Served<T> {
    /// The answer as a JSON response with `status`, converted to its REST
    /// shape.
    fn respond<J: Serialize + From<T>>(self, status: StatusCode) -> Response {
        let mut response = (status, axum::Json(J::from(self.body))).into_response();
        if let Some(served_by) = self.served_by {
            response.headers_mut().insert(SERVED_BY, served_by);
        }
        response
    }
}

impl AppState {
    /// Makes one gRPC call for a REST request through `pool`: `send` sends
    /// it once; [`ReplicaPool::call`] retries it as `kind` allows. Each
    /// attempt carries the request id and the time left before the deadline.
    async fn call<M, R, F, Fut>(
        &self,
        pool: &ReplicaPool,
        kind: CallKind,
        request_id: &RequestId,
        message: M,
        mut send: F,
    ) -> Result<Served<R>, ApiError>
    where
        M: Clone,
        F: FnMut(tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let id = AsciiMetadataValue::try_from(request_id.0.as_bytes()).ok();
        let deadline = Instant::now() + self.deadline;
        let response = pool
            .call(kind, deadline, |timeout| {
                let mut request = tonic::Request::new(message.clone());
                request.set_timeout(timeout);
                if let Some(id) = &id {
                    request
                        .metadata_mut()
                        .insert(dishpatch::wire::REQUEST_ID, id.clone());
                }
                send(request)
            })
            .await?;
        let served_by = response
            .metadata()
            .get(SERVED_BY)
            .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok());
        Ok(Served {
            served_by,
            body: response.into_inner(),
        })
    }
}

/// The REST API over `pools`, each request with `deadline`.
pub fn router(pools: Pools, deadline: Duration) -> Router {
    let state = AppState {
        pools,
        deadline,
        started: Instant::now(),
    };
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
        .route("/health", get(health::report))
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
        // Outermost: a request id, a span and JSON error bodies for every
        // response, including those of the layers above.
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}
