//! `GET /health`: the edge and every replica of every service. 200 when
//! every service has a replica in rotation, else 503; JSON either way. A
//! service with fewer healthy replicas than the panic threshold says
//! `"panicking": true`.

use super::AppState;
use axum::{Json, extract::State, response::IntoResponse};
use dishpatch_pool::{OutOfRotation, ReplicaState};
use http::StatusCode;
use serde_json::{Value, json};

/// The edge and every replica of every service: whether each is in
/// rotation and why not, its last probe, failures, ejections and requests
/// served. 503 while a service has no replica in rotation.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    responses(
        (status = 200, description = "Every service has a replica in rotation", body = Object),
        (status = 503, description = "A service has none", body = Object),
    ),
)]
pub(crate) async fn report(State(state): State<AppState>) -> impl IntoResponse {
    let pools = [
        &state.pools.restaurants,
        &state.pools.orders,
        &state.pools.notifications,
    ];
    let all_up = pools.iter().all(|pool| pool.has_healthy_replica());
    let services: serde_json::Map<String, Value> = pools
        .iter()
        .map(|pool| {
            let whole = pool.state();
            let mut report = json!({
                "healthy": whole.in_rotation > 0,
                "inRotation": whole.in_rotation,
                "known": whole.known,
                "panicking": whole.panicking,
            });
            if state.show_replicas {
                let replicas: Vec<Value> = pool.replica_states().iter().map(replica).collect();
                report["replicas"] = replicas.into();
            }
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

/// One replica as `/health` shows it.
fn replica(state: &ReplicaState) -> Value {
    let (last_probe_at, last_probe) = match &state.last_probe {
        Some((at, found)) => (Some(prost_types::Timestamp::from(*at).to_string()), Some(found)),
        None => (None, None),
    };
    json!({
        "addr": state.addr,
        "state": if state.out_of_rotation.is_none() { "healthy" } else { "down" },
        "outOfRotation": state.out_of_rotation.map(|why| match why {
            OutOfRotation::Unprobed => "unprobed",
            OutOfRotation::ProbeFailed => "probe_failed",
            OutOfRotation::NotServing => "not_serving",
            OutOfRotation::Ejected => "ejected",
        }),
        "lastProbeAt": last_probe_at,
        "lastProbe": last_probe,
        "consecutiveFailures": state.consecutive_failures,
        "lastError": state.last_error,
        "ejections": state.ejections,
        "requestsServed": state.requests_served,
    })
}
