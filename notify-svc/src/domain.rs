//! notify-svc's rules: what a valid notification and filter are.

use dishpatch::{error::ServiceError, ids::ORDER, proto::notify::v1 as pb, trace::trace_id_of, validate};

/// A notification to record.
#[derive(Debug)]
pub(crate) struct NewNotification {
    pub(crate) event_id: String,
    pub(crate) order_id: String,
    pub(crate) recipient: String,
    pub(crate) kind: String,
    pub(crate) message: String,
    /// The trace id of the request that caused it, or empty.
    pub(crate) trace_id: String,
}

impl NewNotification {
    pub(crate) fn from_request(request: pb::RecordNotificationRequest) -> Result<Self, ServiceError> {
        Ok(Self {
            event_id: validate::required("event_id", &request.event_id, 200)?,
            order_id: order_id(&request.order_id)?.unwrap_or_default(),
            recipient: validate::required("recipient", &request.recipient, 120)?,
            kind: kind(&request.kind)?,
            message: validate::required("message", &request.message, 1000)?,
            trace_id: trace_id(&request.traceparent)?,
        })
    }
}

/// The trace id of a `traceparent` field: empty for an empty one.
fn trace_id(traceparent: &str) -> Result<String, ServiceError> {
    if traceparent.is_empty() {
        return Ok(String::new());
    }
    trace_id_of(traceparent).ok_or_else(|| {
        ServiceError::InvalidArgument(
            "traceparent must be empty or a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>, lower case"
                .to_owned(),
        )
    })
}

/// The most notifications one RecordNotifications request may carry.
pub(crate) const MAX_BATCH: usize = 500;

/// The notifications of a RecordNotifications request, each checked as a
/// single one is; an error names the first invalid one by its index.
pub(crate) fn batch_from_request(
    request: pb::RecordNotificationsRequest,
) -> Result<Vec<NewNotification>, ServiceError> {
    let count = request.notifications.len();
    if !(1..=MAX_BATCH).contains(&count) {
        return Err(ServiceError::InvalidArgument(format!(
            "notifications must hold 1 to {MAX_BATCH} notifications, got {count}"
        )));
    }
    request
        .notifications
        .into_iter()
        .enumerate()
        .map(|(index, notification)| {
            NewNotification::from_request(notification)
                .map_err(|error| ServiceError::InvalidArgument(format!("notifications[{index}]: {error}")))
        })
        .collect()
}

fn order_id(value: &str) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    ORDER.check("order_id", value)?;
    Ok(Some(value.to_owned()))
}

fn kind(value: &str) -> Result<String, ServiceError> {
    let kind = validate::required("kind", value, 50)?;
    if kind
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Ok(kind)
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "kind {kind:?} may hold only letters, digits, '.', '_' and '-'"
        )))
    }
}

/// Which notifications to list or stream.
#[derive(Debug, Default, Clone)]
pub(crate) struct NotificationFilter {
    pub(crate) order_id: Option<String>,
    pub(crate) recipient: Option<String>,
    /// Recorded at or after, in microseconds since the epoch.
    pub(crate) since: Option<i64>,
}

impl NotificationFilter {
    fn new(order: &str, recipient: &str) -> Result<Self, ServiceError> {
        Ok(Self {
            order_id: order_id(order)?,
            recipient: validate::optional("recipient", recipient, 120)?,
            since: None,
        })
    }

    pub(crate) fn from_list(request: &pb::ListNotificationsRequest) -> Result<(Self, Page), ServiceError> {
        let mut filter = Self::new(&request.order_id, &request.recipient)?;
        filter.since = request
            .since
            .as_ref()
            .map(|since| {
                dishpatch::time::from_timestamp(since)
                    .map_err(|e| ServiceError::InvalidArgument(format!("since: {e}")))
            })
            .transpose()?;
        let after_seq = match request.page_token.as_str() {
            "" => 0,
            token => token.parse::<u64>().map_err(|_| {
                ServiceError::InvalidArgument(format!(
                    "page_token {token:?} is malformed: pass back a next_page_token"
                ))
            })?,
        };
        let size = dishpatch::page::size(request.page_size)?;
        Ok((filter, Page { after_seq, size }))
    }

    pub(crate) fn from_subscribe(request: &pb::SubscribeRequest) -> Result<Self, ServiceError> {
        Self::new(&request.order_id, &request.recipient)
    }

    /// Whether a notification passes this filter.
    pub(crate) fn matches(&self, notification: &pb::Notification) -> bool {
        self.order_id
            .as_ref()
            .is_none_or(|id| *id == notification.order_id)
            && self
                .recipient
                .as_ref()
                .is_none_or(|r| *r == notification.recipient)
    }
}

/// A page of the log: up to `size` notifications after `after_seq`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) after_seq: u64,
    pub(crate) size: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_plain_words() {
        assert_eq!(kind("order.placed").unwrap(), "order.placed");
        assert!(kind("order placed").is_err());
        assert!(kind("").is_err());
    }

    #[test]
    fn filters_match_order_and_recipient() {
        let order = ORDER.generate();
        let filter = NotificationFilter::new(&order, "ana").unwrap();
        let mut notification = pb::Notification {
            order_id: order.clone(),
            recipient: "ana".into(),
            ..Default::default()
        };
        assert!(filter.matches(&notification));
        notification.recipient = "bo".into();
        assert!(!filter.matches(&notification));
        assert!(NotificationFilter::default().matches(&notification));
    }
}
