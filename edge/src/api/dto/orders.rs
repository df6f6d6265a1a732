//! Orders, their lines and their states.

use super::{
    cursor,
    fields::{
        Customer, Filter100, MenuItemId, OrderIdOrEmpty, Quantity, RestaurantId, RestaurantIdOrEmpty,
        StatusName, Text200, Text500,
    },
    rfc3339,
};
use dishpatch::proto::order::v1 as order;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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

/// A line of an order, priced by the restaurant's menu when placed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderLine {
    menu_item_id: String,
    name: String,
    quantity: i32,
    unit_price_cents: i64,
    line_total_cents: i64,
}

/// A state an order entered, and when.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusChange {
    #[schema(value_type = StatusName)]
    status: &'static str,
    #[schema(format = DateTime)]
    at: Option<String>,
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Order {
    id: String,
    restaurant_id: String,
    customer: String,
    items: Vec<OrderLine>,
    total_cents: i64,
    #[schema(value_type = StatusName)]
    status: &'static str,
    /// Every state it entered, oldest first.
    status_history: Vec<StatusChange>,
    delivery_address: Option<String>,
    note: Option<String>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
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

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderList {
    orders: Vec<Order>,
    /// Pass as `cursor` for the next page; null on the last.
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

/// A menu item to order, and how many.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LineRequest {
    #[schema(value_type = MenuItemId)]
    menu_item_id: String,
    #[serde(deserialize_with = "super::whole_number")]
    #[schema(value_type = Quantity)]
    quantity: i32,
}

/// An order to place. The server prices it from the menu.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewOrder {
    #[schema(value_type = RestaurantId)]
    restaurant_id: String,
    /// Who orders: a customer's own name, which a customer may leave out;
    /// an admin names the customer.
    #[schema(value_type = Option<Customer>)]
    pub(crate) customer: Option<String>,
    /// 1 to 50 menu items of the restaurant, each listed once.
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<LineRequest>,
    #[schema(value_type = Option<Text200>)]
    delivery_address: Option<String>,
    #[schema(value_type = Option<Text500>)]
    note: Option<String>,
}

impl NewOrder {
    pub(crate) fn into_request(self, customer: String, idempotency_key: String) -> order::PlaceOrderRequest {
        order::PlaceOrderRequest {
            restaurant_id: self.restaurant_id,
            customer,
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

/// The state to move an order to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusUpdate {
    #[schema(value_type = StatusName)]
    pub(crate) status: String,
}

/// Which orders to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OrderQuery {
    /// Only orders in this state.
    #[param(value_type = Option<StatusName>)]
    pub(crate) status: Option<String>,
    /// Only orders from this restaurant.
    #[param(value_type = Option<RestaurantIdOrEmpty>)]
    pub(crate) restaurant_id: Option<String>,
    /// Only this customer's orders.
    #[param(value_type = Option<Filter100>)]
    pub(crate) customer: Option<String>,
    /// Orders on a page: 1 to 100 (0 or none: 20).
    #[param(minimum = 0, maximum = 100)]
    pub(crate) limit: Option<i32>,
    /// The page after the one whose `nextCursor` this is.
    #[param(value_type = Option<OrderIdOrEmpty>)]
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
