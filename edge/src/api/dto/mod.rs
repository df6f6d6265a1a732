//! The JSON shapes of the REST API (camelCase, RFC 3339 times, money in
//! integer cents, lists as objects), one module per resource, and their
//! translation from and to the gRPC contracts. Nothing here decides
//! anything: the services do.

mod notifications;
mod orders;
mod restaurants;

pub(crate) use notifications::{NotificationList, NotificationQuery};
pub(crate) use orders::{NewOrder, Order, OrderList, OrderQuery, StatusUpdate, parse_status};
pub(crate) use restaurants::{
    Menu, MenuItem, NewMenuItem, NewRestaurant, Restaurant, RestaurantList, RestaurantQuery,
};

pub(super) fn rfc3339(timestamp: Option<prost_types::Timestamp>) -> Option<String> {
    timestamp.map(|timestamp| timestamp.to_string())
}

/// An empty cursor means the last page.
pub(super) fn cursor(next_page_token: String) -> Option<String> {
    (!next_page_token.is_empty()).then_some(next_page_token)
}
