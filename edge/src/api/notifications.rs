//! `/api/notifications`: the notification log.

use super::{
    AppState,
    dto::{NotificationList, NotificationQuery},
    error::ApiError,
    extract::Query,
    request_id::RequestId,
};
use axum::{Extension, extract::State, response::Response};
use dishpatch::proto::notify::v1::{self as pb, notify_service_client::NotifyServiceClient};
use dishpatch_pool::CallKind;
use http::StatusCode;

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
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
    let pool = &state.pools.notifications;
    let request = pb::ListNotificationsRequest {
        order_id: query.order_id.unwrap_or_default(),
        recipient: query.recipient.unwrap_or_default(),
        since,
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            NotifyServiceClient::new(pool.clone()).list_notifications(r).await
        })
        .await?;
    Ok(listed.respond::<NotificationList>(StatusCode::OK))
}
