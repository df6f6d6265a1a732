//! `/api/notifications`: the notification log.

use super::{
    AppState, Call,
    dto::{NotificationList, NotificationQuery},
    error::{ApiError, ErrorBody},
    extract::Query,
    identity::Caller,
    respond,
};
use axum::{extract::State, response::Response};
use dishpatch::proto::notify::v1::{self as pb, notify_service_client::NotifyServiceClient};
use dishpatch_pool::CallKind;
use http::StatusCode;

/// Lists notifications, oldest first, a page at a time: a customer's own,
/// a staff member's restaurant's (`restaurant:<id>`), or, for an admin,
/// any.
#[utoipa::path(
    get,
    path = "/api/notifications",
    operation_id = "listNotifications",
    security(("bearer" = [])),
    tag = "notifications",
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page of notifications", body = NotificationList),
        (status = 400, description = "A malformed query", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Query(query): Query<NotificationQuery>,
) -> Result<Response, ApiError> {
    let recipient = caller.notification_recipient(query.recipient)?;
    let since = query
        .since
        .as_deref()
        .map(|since| {
            since.parse::<prost_types::Timestamp>().map_err(|_| {
                ApiError::bad_request(format!(
                    "since {since:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()?;
    let request = pb::ListNotificationsRequest {
        order_id: query.order_id.unwrap_or_default(),
        recipient,
        since,
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = (state.pools.notifications)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            NotifyServiceClient::new(channel)
                .list_notifications(request)
                .await
        })
        .await?;
    Ok(respond::<NotificationList, _>(listed, StatusCode::OK))
}
