//! The JSON shapes of the REST API (camelCase, RFC 3339 times, money in
//! integer cents, lists as objects), and their translation from and to the
//! gRPC contracts. Nothing here decides anything: the services do.

use dishpatch::proto::{notify::v1 as notify, order::v1 as order, restaurant::v1 as restaurant};
use serde::{Deserialize, Serialize};

fn rfc3339(timestamp: Option<prost_types::Timestamp>) -> Option<String> {
    timestamp.map(|timestamp| timestamp.to_string())
}

/// An empty cursor means the last page.
fn cursor(next_page_token: String) -> Option<String> {
    (!next_page_token.is_empty()).then_some(next_page_token)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Restaurant {
    id: String,
    name: String,
    cuisine: String,
    address: String,
    rating: f64,
    created_at: Option<String>,
}

impl From<restaurant::Restaurant> for Restaurant {
    fn from(r: restaurant::Restaurant) -> Self {
        Self {
            id: r.id,
            name: r.name,
            cuisine: r.cuisine,
            address: r.address,
            rating: r.rating,
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestaurantList {
    restaurants: Vec<Restaurant>,
    next_cursor: Option<String>,
}

impl From<restaurant::ListRestaurantsResponse> for RestaurantList {
    fn from(list: restaurant::ListRestaurantsResponse) -> Self {
        Self {
            restaurants: list.restaurants.into_iter().map(Into::into).collect(),
            next_cursor: cursor(list.next_page_token),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewRestaurant {
    name: String,
    cuisine: String,
    address: String,
    rating: Option<f64>,
}

impl From<NewRestaurant> for restaurant::CreateRestaurantRequest {
    fn from(new: NewRestaurant) -> Self {
        Self {
            name: new.name,
            cuisine: new.cuisine,
            address: new.address,
            rating: new.rating,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RestaurantQuery {
    pub(crate) cuisine: Option<String>,
    pub(crate) q: Option<String>,
    pub(crate) limit: Option<i32>,
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MenuItem {
    id: String,
    restaurant_id: String,
    name: String,
    description: String,
    price_cents: i64,
    available: bool,
}

impl From<restaurant::MenuItem> for MenuItem {
    fn from(item: restaurant::MenuItem) -> Self {
        Self {
            id: item.id,
            restaurant_id: item.restaurant_id,
            name: item.name,
            description: item.description,
            price_cents: item.price_cents,
            available: item.available,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Menu {
    items: Vec<MenuItem>,
}

impl From<restaurant::Menu> for Menu {
    fn from(menu: restaurant::Menu) -> Self {
        Self {
            items: menu.items.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewMenuItem {
    name: String,
    #[serde(default)]
    description: String,
    price_cents: i64,
    available: Option<bool>,
}

impl NewMenuItem {
    pub(crate) fn into_request(self, restaurant_id: String) -> restaurant::AddMenuItemRequest {
        restaurant::AddMenuItemRequest {
            restaurant_id,
            name: self.name,
            description: self.description,
            price_cents: self.price_cents,
            available: self.available,
        }
    }
}

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
