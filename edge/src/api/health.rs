//! `GET /health`: the edge and every replica of every service. 200 when
//! every service has a replica in rotation, else 503; JSON either way.

use super::AppState;
use axum::{Json, extract::State, response::IntoResponse};
use http::StatusCode;
use serde_json::json;

pub(crate) async fn report(State(state): State<AppState>) -> impl IntoResponse {
    let pools = [
        &state.pools.restaurants,
        &state.pools.orders,
        &state.pools.notifications,
    ];
    let all_up = pools.iter().all(|pool| pool.has_healthy_replica());
    let services: serde_json::Map<String, serde_json::Value> = pools
        .iter()
        .map(|pool| {
            let report = json!({
                "healthy": pool.has_healthy_replica(),
                "replicas": pool.replica_statuses(),
            });
            (pool.service().to_owned(), report)
        })
        .collect();
    let body = json!({
        "status": if all_up { "ok" } else { "degraded" },
        "edge": {
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSeconds": state.started.elapsed().as_secs(),
        },
        "services": services,
    });
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
