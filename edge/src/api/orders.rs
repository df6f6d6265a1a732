//! `/api/orders`: placing orders and moving them through their states.

use super::{
    AppState,
    dto::{NewOrder, Order, OrderList, OrderQuery, StatusUpdate, parse_status},
    error::ApiError,
    extract::{Json, Path, Query},
    request_id::RequestId,
};
use axum::{Extension, extract::State, response::Response};
use dishpatch::proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use dishpatch_pool::{CallKind, ReplicaPool};
use http::{HeaderMap, StatusCode};

/// The header that makes placing an order safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn client(pool: &ReplicaPool) -> OrderServiceClient<ReplicaPool> {
    OrderServiceClient::new(pool.clone())
}

pub(crate) async fn place(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    Json(new): Json<NewOrder>,
) -> Result<Response, ApiError> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => String::new(),
        Some(key) => key
            .to_str()
            .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be visible ASCII"))?
            .to_owned(),
    };
    // With a key, placing twice returns the first order: safe to retry.
    let kind = if key.is_empty() {
        CallKind::NotIdempotent
    } else {
        CallKind::Idempotent
    };
    let pool = &state.pools.orders;
    let request = new.into_request(key);
    let placed = state
        .call(pool, kind, &id, request, |r| async {
            client(pool).place_order(r).await
        })
        .await?;
    Ok(placed.respond::<Order>(StatusCode::CREATED))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Query(query): Query<OrderQuery>,
) -> Result<Response, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => pb::OrderStatus::Unspecified,
        Some(name) => parse_status("status", name).map_err(ApiError::bad_request)?,
    };
    let pool = &state.pools.orders;
    let request = pb::ListOrdersRequest {
        status: status.into(),
        restaurant_id: query.restaurant_id.unwrap_or_default(),
        customer: query.customer.unwrap_or_default(),
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            client(pool).list_orders(r).await
        })
        .await?;
    Ok(listed.respond::<OrderList>(StatusCode::OK))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.orders;
    let request = pb::GetOrderRequest { id: order_id };
    let found = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            client(pool).get_order(r).await
        })
        .await?;
    Ok(found.respond::<Order>(StatusCode::OK))
}

pub(crate) async fn move_status(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(order_id): Path<String>,
    Json(update): Json<StatusUpdate>,
) -> Result<Response, ApiError> {
    let status = parse_status("status", &update.status).map_err(ApiError::bad_request)?;
    let pool = &state.pools.orders;
    let request = pb::UpdateOrderStatusRequest {
        id: order_id,
        status: status.into(),
    };
    let moved = state
        .call(pool, CallKind::NotIdempotent, &id, request, |r| async {
            client(pool).update_order_status(r).await
        })
        .await?;
    Ok(moved.respond::<Order>(StatusCode::OK))
}
