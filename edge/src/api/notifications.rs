//! `/api/notifications`: the notification log.

use super::{
    AppState, Call,
    dto::{NotificationList, NotificationQuery},
    error::{ApiError, ErrorBody},
    extract::Query,
    respond,
};
use axum::{extract::State, response::Response};
use dishpatch::proto::notify::v1::{self as pb, notify_service_client::NotifyServiceClient};
use dishpatch_pool::CallKind;
use http::StatusCode;

/// Lists notifications, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/notifications",
    operation_id = "listNotifications",
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
    Query(query): Query<NotificationQuery>,
) -> Result<Response, ApiError> {
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
        recipient: query.recipient.unwrap_or_default(),
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
