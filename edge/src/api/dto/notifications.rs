//! Notifications.

use super::{
    cursor,
    fields::{Filter120, OrderIdOrEmpty, SeqCursor},
    rfc3339,
};
use dishpatch::proto::notify::v1 as notify;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A notification: an order placed or moved, told to its customer (or to
/// its restaurant, as `restaurant:<id>`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    id: String,
    /// Its place in the log: later notifications have greater numbers.
    seq: u64,
    order_id: Option<String>,
    recipient: String,
    /// What happened, such as `order.accepted`.
    kind: String,
    message: String,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// The W3C trace id (32 hex digits) of the request that caused it, if
    /// that request had one: the `traceparent` of its answer names it too.
    trace_id: Option<String>,
}

impl From<notify::Notification> for Notification {
    fn from(n: notify::Notification) -> Self {
        Self {
            id: n.id,
            seq: n.seq,
            order_id: (!n.order_id.is_empty()).then_some(n.order_id),
            recipient: n.recipient,
            kind: n.kind,
            message: n.message,
            created_at: rfc3339(n.created_at),
            trace_id: (!n.trace_id.is_empty()).then_some(n.trace_id),
        }
    }
}

/// A page of notifications, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationList {
    notifications: Vec<Notification>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

impl From<notify::ListNotificationsResponse> for NotificationList {
    fn from(list: notify::ListNotificationsResponse) -> Self {
        Self {
            notifications: list.notifications.into_iter().map(Into::into).collect(),
            next_cursor: cursor(list.next_page_token),
        }
    }
}

/// Which notifications to stream, and from where.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationStreamQuery {
    /// Only notifications about this order.
    #[param(value_type = Option<OrderIdOrEmpty>)]
    pub(crate) order_id: Option<String>,
    /// Only notifications for this recipient.
    #[param(value_type = Option<Filter120>)]
    pub(crate) recipient: Option<String>,
    /// Start after the notification with this seq (0 or none: from the
    /// first); a `Last-Event-ID` header wins over it.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub(crate) after: Option<String>,
}

/// Which notifications to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationQuery {
    /// Only notifications about this order.
    #[param(value_type = Option<OrderIdOrEmpty>)]
    pub(crate) order_id: Option<String>,
    /// Only notifications for this recipient.
    #[param(value_type = Option<Filter120>)]
    pub(crate) recipient: Option<String>,
    /// Only notifications created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub(crate) since: Option<String>,
    /// Notifications on a page: 1 to 100 (0 or none: 20).
    #[param(minimum = 0, maximum = 100)]
    pub(crate) limit: Option<i32>,
    /// The page after the one whose `nextCursor` this is.
    #[param(value_type = Option<SeqCursor>)]
    pub(crate) cursor: Option<String>,
}
