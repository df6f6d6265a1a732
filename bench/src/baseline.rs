//! The two reference servers the suite measures the edge against, each
//! serving `GET /api/restaurants/{id}` with the edge's JSON shape:
//!
//! - the ceiling: a fixed JSON answer, no downstream call: the most an HTTP
//!   server here can do while the generator shares the cores;
//! - the passthrough: one tonic call to restaurant-svc per request over one
//!   channel, and its answer as JSON: no pool, probes, retries or
//!   middleware.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use dishpatch::proto::restaurant::v1::{
    GetRestaurantRequest, restaurant_service_client::RestaurantServiceClient,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tonic::transport::{Channel, Endpoint};

/// Which reference server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// A fixed answer.
    Ceiling,
    /// One gRPC call per request.
    Passthrough,
}

/// Serves `baseline` on `listen` until Ctrl-C or SIGTERM; `restaurant` is
/// restaurant-svc's `host:port` (for the passthrough).
pub async fn serve(baseline: Baseline, listen: SocketAddr, restaurant: Option<String>) -> Result<(), String> {
    let router = match baseline {
        Baseline::Ceiling => Router::new().route("/api/restaurants/{id}", get(fixed)),
        Baseline::Passthrough => {
            let restaurant = restaurant.ok_or("the passthrough needs --restaurant host:port")?;
            let channel = Endpoint::from_shared(format!("http://{restaurant}"))
                .map_err(|error| error.to_string())?
                .tcp_nodelay(true)
                .connect_lazy();
            Router::new()
                .route("/api/restaurants/{id}", get(passthrough))
                .with_state(RestaurantServiceClient::new(channel))
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("binding {listen}: {error}"))?;
    println!(
        "{baseline:?} listening on {}",
        listener.local_addr().map_err(|error| error.to_string())?
    );
    let shutdown = dishpatch::shutdown::on_signal().map_err(|error| error.to_string())?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|error| error.to_string())
}

async fn fixed(Path(id): Path<String>) -> Json<Value> {
    Json(json!({
        "id": id,
        "name": "Sakura Sushi Bar",
        "cuisine": "japanese",
        "address": "88 Cherry Lane, Springfield",
        "rating": 4.7,
        "createdAt": "2026-11-22T23:34:49.732098Z",
    }))
}

async fn passthrough(
    State(mut client): State<RestaurantServiceClient<Channel>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let restaurant = client
        .get_restaurant(GetRestaurantRequest { id })
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?
        .into_inner();
    Ok(Json(json!({
        "id": restaurant.id,
        "name": restaurant.name,
        "cuisine": restaurant.cuisine,
        "address": restaurant.address,
        "rating": restaurant.rating,
        "createdAt": restaurant.created_at.map(|at| at.to_string()),
    })))
}
