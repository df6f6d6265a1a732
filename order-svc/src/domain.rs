//! order-svc's rules: the order state machine, what a valid order request
//! is, and the notifications each change produces.

use dishpatch::{
    error::ServiceError,
    ids::{ORDER, RESTAURANT},
    proto::order::v1 as pb,
    validate,
};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OrderStatus {
    Placed,
    Accepted,
    Preparing,
    Ready,
    OutForDelivery,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    const ALL: [Self; 7] = [
        Self::Placed,
        Self::Accepted,
        Self::Preparing,
        Self::Ready,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// Whether the state machine allows moving from `self` to `next`:
    /// placed → accepted → preparing → ready → out_for_delivery → delivered,
    /// and cancelled from placed or accepted.
    pub(crate) fn can_move_to(self, next: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Placed, Accepted)
                | (Accepted, Preparing)
                | (Preparing, Ready)
                | (Ready, OutForDelivery)
                | (OutForDelivery, Delivered)
                | (Placed | Accepted, Cancelled)
        )
    }

    /// The name stored and shown to people, as in the REST API.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Accepted => "accepted",
            Self::Preparing => "preparing",
            Self::Ready => "ready",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.name() == name)
    }

    /// Position in a life: history entries made in the same microsecond
    /// still list in the order they happened.
    pub(crate) fn rank(self) -> usize {
        self as usize
    }

    /// A status from a request: INVALID_ARGUMENT for an unknown value, and
    /// for UNSPECIFIED unless `unspecified_is_none`.
    fn from_wire(field: &str, value: i32) -> Result<Option<Self>, ServiceError> {
        let status = pb::OrderStatus::try_from(value).map_err(|_| {
            ServiceError::InvalidArgument(format!("{field} {value} is not a known order status"))
        })?;
        Ok(match status {
            pb::OrderStatus::Unspecified => None,
            pb::OrderStatus::Placed => Some(Self::Placed),
            pb::OrderStatus::Accepted => Some(Self::Accepted),
            pb::OrderStatus::Preparing => Some(Self::Preparing),
            pb::OrderStatus::Ready => Some(Self::Ready),
            pb::OrderStatus::OutForDelivery => Some(Self::OutForDelivery),
            pb::OrderStatus::Delivered => Some(Self::Delivered),
            pb::OrderStatus::Cancelled => Some(Self::Cancelled),
        })
    }

    pub(crate) fn to_wire(self) -> pb::OrderStatus {
        match self {
            Self::Placed => pb::OrderStatus::Placed,
            Self::Accepted => pb::OrderStatus::Accepted,
            Self::Preparing => pb::OrderStatus::Preparing,
            Self::Ready => pb::OrderStatus::Ready,
            Self::OutForDelivery => pb::OrderStatus::OutForDelivery,
            Self::Delivered => pb::OrderStatus::Delivered,
            Self::Cancelled => pb::OrderStatus::Cancelled,
        }
    }

    /// The refusal of a move the state machine does not allow, naming both
    /// states and what is allowed instead.
    pub(crate) fn refuse_move(self, order_id: &str, next: Self) -> ServiceError {
        let allowed: Vec<&str> = Self::ALL
            .into_iter()
            .filter(|&candidate| self.can_move_to(candidate))
            .map(Self::name)
            .collect();
        let allowed = if allowed.is_empty() {
            format!("{} is final", self.name())
        } else {
            format!("from {} it can move to {}", self.name(), allowed.join(" or "))
        };
        ServiceError::FailedPrecondition(format!(
            "order {order_id} cannot move from {} to {}: {allowed}",
            self.name(),
            next.name()
        ))
    }
}

/// A checked order to place (not yet priced).
#[derive(Debug)]
pub(crate) struct NewOrder {
    pub(crate) restaurant_id: String,
    pub(crate) customer: String,
    pub(crate) lines: Vec<pb::LineRequest>,
    pub(crate) delivery_address: Option<String>,
    pub(crate) note: Option<String>,
    pub(crate) idempotency_key: Option<String>,
}

impl NewOrder {
    pub(crate) fn from_request(request: pb::PlaceOrderRequest) -> Result<Self, ServiceError> {
        RESTAURANT.check("restaurant_id", &request.restaurant_id)?;
        let customer = validate::required("customer", &request.customer, 100)?;
        validate::order_lines(
            request
                .items
                .iter()
                .map(|line| (line.menu_item_id.as_str(), line.quantity)),
        )?;
        let optional =
            |field: &str, value: Option<&str>, max| validate::optional(field, value.unwrap_or_default(), max);
        Ok(Self {
            delivery_address: optional("delivery_address", request.delivery_address.as_deref(), 200)?,
            note: optional("note", request.note.as_deref(), 500)?,
            idempotency_key: match request.idempotency_key.as_str() {
                "" => None,
                key => Some(validate::required("idempotency_key", key, 100)?),
            },
            restaurant_id: request.restaurant_id,
            customer,
            lines: request.items,
        })
    }

    /// Whether an order already placed is this same request (for replays
    /// with the same idempotency key).
    pub(crate) fn is_same_as(&self, order: &pb::Order) -> bool {
        order.restaurant_id == self.restaurant_id
            && order.delivery_address == self.delivery_address
            && order.note == self.note
            && order.items.len() == self.lines.len()
            && order.items.iter().zip(&self.lines).all(|(placed, asked)| {
                placed.menu_item_id == asked.menu_item_id && placed.quantity == asked.quantity
            })
    }
}

/// A checked status change.
#[derive(Debug)]
pub(crate) struct StatusChange {
    pub(crate) order_id: String,
    pub(crate) next: OrderStatus,
}

impl StatusChange {
    pub(crate) fn from_request(request: &pb::UpdateOrderStatusRequest) -> Result<Self, ServiceError> {
        ORDER.check("id", &request.id)?;
        let next = OrderStatus::from_wire("status", request.status)?.ok_or_else(|| {
            ServiceError::InvalidArgument("status is required: one of placed, accepted, preparing, ready, out_for_delivery, delivered, cancelled".into())
        })?;
        Ok(Self {
            order_id: request.id.clone(),
            next,
        })
    }
}

/// Which orders to list.
#[derive(Debug)]
pub(crate) struct OrderFilter {
    pub(crate) status: Option<OrderStatus>,
    pub(crate) restaurant_id: Option<String>,
    pub(crate) customer: Option<String>,
    pub(crate) page_size: i64,
    /// List only ids before this one (newest first).
    pub(crate) before: Option<String>,
}

impl OrderFilter {
    pub(crate) fn from_request(request: &pb::ListOrdersRequest) -> Result<Self, ServiceError> {
        let restaurant_id = match request.restaurant_id.as_str() {
            "" => None,
            id => {
                RESTAURANT.check("restaurant_id", id)?;
                Some(id.to_owned())
            }
        };
        let before = match request.page_token.as_str() {
            "" => None,
            token => {
                ORDER.check("page_token", token)?;
                Some(token.to_owned())
            }
        };
        Ok(Self {
            status: OrderStatus::from_wire("status", request.status)?,
            restaurant_id,
            customer: validate::optional("customer", &request.customer, 100)?,
            page_size: dishpatch::page::size(request.page_size)?,
            before,
        })
    }
}

/// A notification to deliver through the outbox.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutboxEvent {
    pub(crate) event_id: String,
    pub(crate) order_id: String,
    pub(crate) recipient: String,
    pub(crate) kind: String,
    pub(crate) message: String,
    /// The W3C traceparent of the request that caused it, if it had one.
    pub(crate) traceparent: Option<String>,
}

/// What an order's life tells whom: the customer hears of every status, the
/// restaurant of new and cancelled orders. Each (order, status, recipient)
/// happens once, so it names its own event id. They belong to the trace of
/// the request that moved the order (`traceparent`).
pub(crate) fn notifications(
    order_id: &str,
    restaurant_id: &str,
    restaurant_name: &str,
    customer: &str,
    total_cents: i64,
    status: OrderStatus,
    traceparent: Option<&str>,
) -> Vec<OutboxEvent> {
    let total = format_cents(total_cents);
    let to_customer = match status {
        OrderStatus::Placed => format!("Your order {order_id} at {restaurant_name} is placed: {total}."),
        OrderStatus::Accepted => format!("{restaurant_name} accepted your order {order_id}."),
        OrderStatus::Preparing => format!("{restaurant_name} is preparing your order {order_id}."),
        OrderStatus::Ready => format!("Your order {order_id} from {restaurant_name} is ready."),
        OrderStatus::OutForDelivery => format!("Your order {order_id} from {restaurant_name} is on its way."),
        OrderStatus::Delivered => {
            format!("Your order {order_id} from {restaurant_name} was delivered. Enjoy!")
        }
        OrderStatus::Cancelled => format!("Your order {order_id} at {restaurant_name} was cancelled."),
    };
    let to_restaurant = match status {
        OrderStatus::Placed => Some(format!("New order {order_id} from {customer}: {total}.")),
        OrderStatus::Cancelled => Some(format!("Order {order_id} from {customer} was cancelled.")),
        _ => None,
    };
    let event = |audience: &str, recipient: String, message: String| OutboxEvent {
        event_id: format!("{order_id}:{}:{audience}", status.name()),
        order_id: order_id.to_owned(),
        recipient,
        kind: format!("order.{}", status.name()),
        message,
        traceparent: traceparent.map(str::to_owned),
    };
    let mut events = vec![event("customer", customer.to_owned(), to_customer)];
    if let Some(message) = to_restaurant {
        events.push(event(
            "restaurant",
            format!("restaurant:{restaurant_id}"),
            message,
        ));
    }
    events
}

fn format_cents(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;
    use std::collections::HashSet;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_moves() {
        let allowed: HashSet<(OrderStatus, OrderStatus)> = [
            (Placed, Accepted),
            (Accepted, Preparing),
            (Preparing, Ready),
            (Ready, OutForDelivery),
            (OutForDelivery, Delivered),
            (Placed, Cancelled),
            (Accepted, Cancelled),
        ]
        .into();
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_name_both_states() {
        let ServiceError::FailedPrecondition(message) = Delivered.refuse_move("ord_1", Preparing) else {
            panic!("not a precondition failure");
        };
        assert_eq!(
            message,
            "order ord_1 cannot move from delivered to preparing: delivered is final"
        );
        let ServiceError::FailedPrecondition(message) = Placed.refuse_move("ord_1", Ready) else {
            panic!("not a precondition failure");
        };
        assert!(
            message.ends_with("from placed it can move to accepted or cancelled"),
            "{message}"
        );
    }

    #[test]
    fn names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_name(status.name()), Some(status));
            assert_eq!(
                OrderStatus::from_wire("s", status.to_wire() as i32).unwrap(),
                Some(status)
            );
        }
        assert!(OrderStatus::from_wire("status", 42).is_err());
    }

    #[test]
    fn placing_tells_customer_and_restaurant() {
        let events = notifications("ord_1", "rst_1", "Luigi's", "ana", 1234, Placed, None);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].recipient, "ana");
        assert!(events[0].message.contains("$12.34"));
        assert_eq!(events[1].recipient, "restaurant:rst_1");
        assert_ne!(events[0].event_id, events[1].event_id);
        assert_eq!(
            notifications("ord_1", "rst_1", "Luigi's", "ana", 1234, Ready, None).len(),
            1
        );
    }
}
