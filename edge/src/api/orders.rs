//! `/api/orders`: placing orders and moving them through their states.

use super::{
    AppState, Call,
    dto::{NewOrder, Order, OrderList, OrderQuery, StatusUpdate, parse_status},
    error::ApiError,
    extract::{Json, Path, Query, path_id},
    respond,
};
use axum::{extract::State, response::Response};
use dishpatch::proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use dishpatch::{ids::ORDER, wire::IDEMPOTENCY_KEY};
use dishpatch_pool::{CallKind, Outcome, ReplicaChannel};
use http::{HeaderMap, StatusCode};

fn client(channel: ReplicaChannel) -> OrderServiceClient<ReplicaChannel> {
    OrderServiceClient::new(channel)
}

/// Places an order. Every order is sent with an idempotency key: the
/// client's, or one the edge makes, so the edge may try it on another
/// replica when one does not answer, and never stores it twice.
pub(crate) async fn place(
    State(state): State<AppState>,
    call: Call,
    headers: HeaderMap,
    Json(new): Json<NewOrder>,
) -> Result<Response, ApiError> {
    let (key, client_key) = match headers.get(IDEMPOTENCY_KEY) {
        None => (dishpatch::ids::IDEMPOTENCY_KEY.generate(), false),
        Some(key) => {
            let key = key
                .to_str()
                .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be visible ASCII"))?;
            (key.to_owned(), true)
        }
    };
    let request = new.into_request(key.clone());
    let placed = (state.pools.orders)
        .call(&call, CallKind::IdempotentWrite, request, |channel, request| async move {
            client(channel).place_order(request).await
        })
        .await
        .map_err(|failed| {
            let unknown = failed.outcome() == Outcome::Unknown;
            let error = ApiError::from(failed);
            if unknown && !client_key {
                // The client can still learn the outcome without placing
                // the order twice.
                error.and(format!(
                    "; retry with the header Idempotency-Key: {key} to get the order if it was placed, or place it once if not"
                ))
            } else {
                error
            }
        })?;
    Ok(respond::<Order, _>(placed, StatusCode::CREATED))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    call: Call,
    Query(query): Query<OrderQuery>,
) -> Result<Response, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => pb::OrderStatus::Unspecified,
        Some(name) => parse_status("status", name).map_err(ApiError::bad_request)?,
    };
    let request = pb::ListOrdersRequest {
        status: status.into(),
        restaurant_id: query.restaurant_id.unwrap_or_default(),
        customer: query.customer.unwrap_or_default(),
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = (state.pools.orders)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            client(channel).list_orders(request).await
        })
        .await?;
    Ok(respond::<OrderList, _>(listed, StatusCode::OK))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    call: Call,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(ORDER, "order", id)?;
    let request = pb::GetOrderRequest { id };
    let found = (state.pools.orders)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            client(channel).get_order(request).await
        })
        .await?;
    Ok(respond::<Order, _>(found, StatusCode::OK))
}

pub(crate) async fn move_status(
    State(state): State<AppState>,
    call: Call,
    Path(id): Path<String>,
    Json(update): Json<StatusUpdate>,
) -> Result<Response, ApiError> {
    let id = path_id(ORDER, "order", id)?;
    let status = parse_status("status", &update.status).map_err(ApiError::bad_request)?;
    let request = pb::UpdateOrderStatusRequest {
        id,
        status: status.into(),
    };
    let moved = (state.pools.orders)
        .call(&call, CallKind::Write, request, |channel, request| async move {
            client(channel).update_order_status(request).await
        })
        .await?;
    Ok(respond::<Order, _>(moved, StatusCode::OK))
}
