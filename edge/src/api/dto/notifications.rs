//! Notifications.

use super::{cursor, rfc3339};
use dishpatch::proto::notify::v1 as notify;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    id: String,
    seq: u64,
    order_id: Option<String>,
    recipient: String,
    kind: String,
    message: String,
    created_at: Option<String>,
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
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationList {
    notifications: Vec<Notification>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NotificationQuery {
    pub(crate) order_id: Option<String>,
    pub(crate) recipient: Option<String>,
    /// RFC 3339.
    pub(crate) since: Option<String>,
    pub(crate) limit: Option<i32>,
    pub(crate) cursor: Option<String>,
}
