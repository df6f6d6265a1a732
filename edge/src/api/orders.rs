//! `/api/orders`: placing orders and moving them through their states.

use super::{
    AppState, Call,
    dto::{IdempotencyKey, NewOrder, Order, OrderId, OrderList, OrderQuery, StatusUpdate, parse_status},
    error::{ApiError, ErrorBody},
    extract::{Json, Path, Query, path_id},
    identity::Caller,
    respond,
};
use axum::{extract::State, response::Response};
use dishpatch::proto::order::v1::{self as pb, order_service_client::OrderServiceClient};
use dishpatch::{ids::ORDER, wire::IDEMPOTENCY_KEY};
use dishpatch_pool::{Answered, CallKind, ReplicaChannel};
use http::{HeaderMap, StatusCode};

fn client(channel: ReplicaChannel) -> OrderServiceClient<ReplicaChannel> {
    OrderServiceClient::new(channel)
}

/// Places an order, priced from the restaurant's menu. Every order is sent
/// with an idempotency key: the client's, or one the edge makes, so the
/// edge may try it on another replica when one does not answer, and never
/// stores it twice.
///
/// A customer orders as themselves (`customer` left out, or their own
/// name); an admin names the customer; restaurant staff do not order.
#[utoipa::path(
    post,
    path = "/api/orders",
    operation_id = "placeOrder",
    security(("bearer" = [])),
    tag = "orders",
    params(("Idempotency-Key" = Option<IdempotencyKey>, Header, description = "Makes placing the order safe to retry: the same key and order get the order placed the first time")),
    request_body = NewOrder,
    responses(
        (status = 201, description = "The order placed (or, for a key used before with the same order, the order placed then)", body = Order),
        (status = 404, description = "No such restaurant or menu item", body = ErrorBody),
        (status = 409, description = "A menu item is not available, or the key was used for another order", body = ErrorBody),
    ),
)]
pub(crate) async fn place(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    headers: HeaderMap,
    Json(mut new): Json<NewOrder>,
) -> Result<Response, ApiError> {
    let customer = caller.customer_of_new_order(new.customer.take())?;
    let (key, client_key) = match headers.get(IDEMPOTENCY_KEY) {
        None => (dishpatch::ids::IDEMPOTENCY_KEY.generate(), false),
        Some(key) => {
            let key = key
                .to_str()
                .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be visible ASCII"))?;
            // An empty key would reach order-svc as no key at all, while
            // the edge retried the order as if it had one.
            if key.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "the Idempotency-Key header must not be blank",
                ));
            }
            (key.to_owned(), true)
        }
    };
    let request = new.into_request(customer, key.clone());
    let placed = (state.pools.orders)
        .call(&call, CallKind::IdempotentWrite, request, |channel, request| async move {
            client(channel).place_order(request).await
        })
        .await
        .map_err(|failed| {
            let unknown = failed.may_have_taken_effect();
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

/// Lists orders, newest first, a page at a time: a customer's own, a
/// staff member's restaurant's, or, for an admin, any.
#[utoipa::path(
    get,
    path = "/api/orders",
    operation_id = "listOrders",
    security(("bearer" = [])),
    tag = "orders",
    params(OrderQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderList),
        (status = 400, description = "A malformed query", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Query(query): Query<OrderQuery>,
) -> Result<Response, ApiError> {
    let (customer, restaurant_id) = caller.order_filters(query.customer, query.restaurant_id)?;
    let status = match query.status.as_deref() {
        None => pb::OrderStatus::Unspecified,
        Some(name) => parse_status("status", name).map_err(ApiError::bad_request)?,
    };
    let request = pb::ListOrdersRequest {
        status: status.into(),
        restaurant_id,
        customer,
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

/// One order, with its status history: for its customer, its
/// restaurant's staff and admins; to anyone else it does not exist.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    operation_id = "getOrder",
    security(("bearer" = [])),
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order (or not one the caller may see)", body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(ORDER, "order", id)?;
    let found = find(&state, &call, &caller, id).await?;
    Ok(respond::<Order, _>(found, StatusCode::OK))
}

/// The order `id`, if the caller may see it; one they may not is answered
/// as one that does not exist.
async fn find(
    state: &AppState,
    call: &Call,
    caller: &Caller,
    id: String,
) -> Result<Answered<pb::Order>, ApiError> {
    let request = pb::GetOrderRequest { id: id.clone() };
    let found = (state.pools.orders)
        .call(call, CallKind::Read, request, |channel, request| async move {
            client(channel).get_order(request).await
        })
        .await?;
    if caller.may_see(&found.message) {
        Ok(found)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("order {id} not found"),
        ))
    }
}

/// Moves an order to its next state: placed → accepted → preparing →
/// ready → out_for_delivery → delivered, or cancelled from placed or
/// accepted. Its restaurant's staff (and admins) move it; its customer
/// may only cancel it.
#[utoipa::path(
    patch,
    path = "/api/orders/{id}/status",
    operation_id = "moveOrder",
    security(("bearer" = [])),
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order's id")),
    request_body = StatusUpdate,
    responses(
        (status = 200, description = "The order, moved", body = Order),
        (status = 404, description = "No such order (or not one the caller may see)", body = ErrorBody),
        (status = 409, description = "The order cannot move to that state from where it is", body = ErrorBody),
    ),
)]
pub(crate) async fn move_status(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Path(id): Path<String>,
    Json(update): Json<StatusUpdate>,
) -> Result<Response, ApiError> {
    let id = path_id(ORDER, "order", id)?;
    let status = parse_status("status", &update.status).map_err(ApiError::bad_request)?;
    // What the caller may not do whatever the order, before reading it.
    caller.may_move(status)?;
    // Who the order belongs to never changes, so what it is checked
    // against stays true until the move. An admin may move any order.
    if !caller.is_admin() {
        find(&state, &call, &caller, id.clone()).await?;
    }
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
