//! Orders, their lines and their states.

use super::{cursor, rfc3339};
use dishpatch::proto::order::v1 as order;
use serde::{Deserialize, Serialize};

/// The REST names of order states, in life order.
const STATUS_NAMES: [(&str, order::OrderStatus); 7] = [
    ("placed", order::OrderStatus::Placed),
    ("accepted", order::OrderStatus::Accepted),
    ("preparing", order::OrderStatus::Preparing),
    ("ready", order::OrderStatus::Ready),
    ("out_for_delivery", order::OrderStatus::OutForDelivery),
    ("delivered", order::OrderStatus::Delivered),
    ("cancelled", order::OrderStatus::Cancelled),
];

fn status_name(status: i32) -> &'static str {
    STATUS_NAMES
        .iter()
        .find(|(_, known)| *known as i32 == status)
        .map_or("unknown", |(name, _)| name)
}

/// A REST status name as the contract's enum, or a message listing the
/// names that exist.
pub(crate) fn parse_status(field: &str, name: &str) -> Result<order::OrderStatus, String> {
    STATUS_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, status)| *status)
        .ok_or_else(|| {
            let names: Vec<&str> = STATUS_NAMES.iter().map(|(name, _)| *name).collect();
            format!(
                "{field} {name:?} is not an order status: use one of {}",
                names.join(", ")
            )
        })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderLine {
    menu_item_id: String,
    name: String,
    quantity: i32,
    unit_price_cents: i64,
    line_total_cents: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct StatusChange {
    status: &'static str,
    at: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Order {
    id: String,
    restaurant_id: String,
    customer: String,
    items: Vec<OrderLine>,
    total_cents: i64,
    status: &'static str,
    status_history: Vec<StatusChange>,
    delivery_address: Option<String>,
    note: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<order::Order> for Order {
    fn from(o: order::Order) -> Self {
        Self {
            id: o.id,
            restaurant_id: o.restaurant_id,
            customer: o.customer,
            items: o
                .items
                .into_iter()
                .map(|line| OrderLine {
                    menu_item_id: line.menu_item_id,
                    name: line.name,
                    quantity: line.quantity,
                    unit_price_cents: line.unit_price_cents,
                    line_total_cents: line.line_total_cents,
                })
                .collect(),
            total_cents: o.total_cents,
            status: status_name(o.status),
            status_history: o
                .status_history
                .into_iter()
                .map(|change| StatusChange {
                    status: status_name(change.status),
                    at: rfc3339(change.at),
                })
                .collect(),
            delivery_address: o.delivery_address,
            note: o.note,
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderList {
    orders: Vec<Order>,
    next_cursor: Option<String>,
}

impl From<order::ListOrdersResponse> for OrderList {
    fn from(list: order::ListOrdersResponse) -> Self {
        Self {
            orders: list.orders.into_iter().map(Into::into).collect(),
            next_cursor: cursor(list.next_page_token),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LineRequest {
    menu_item_id: String,
    quantity: i32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewOrder {
    restaurant_id: String,
    customer: String,
    items: Vec<LineRequest>,
    delivery_address: Option<String>,
    note: Option<String>,
}

impl NewOrder {
    pub(crate) fn into_request(self, idempotency_key: String) -> order::PlaceOrderRequest {
        order::PlaceOrderRequest {
            restaurant_id: self.restaurant_id,
            customer: self.customer,
            items: self
                .items
                .into_iter()
                .map(|line| order::LineRequest {
                    menu_item_id: line.menu_item_id,
                    quantity: line.quantity,
                })
                .collect(),
            delivery_address: self.delivery_address,
            note: self.note,
            idempotency_key,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusUpdate {
    pub(crate) status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OrderQuery {
    pub(crate) status: Option<String>,
    pub(crate) restaurant_id: Option<String>,
    pub(crate) customer: Option<String>,
    pub(crate) limit: Option<i32>,
    pub(crate) cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for (name, status) in STATUS_NAMES {
            assert_eq!(parse_status("status", name), Ok(status));
            assert_eq!(status_name(status as i32), name);
        }
        let refused = parse_status("status", "eaten").unwrap_err();
        assert!(refused.contains("use one of placed, accepted"), "{refused}");
    }
}
