//! The JSON shapes of the REST API (camelCase, RFC 3339 times, money in
//! integer cents, lists as objects), one module per resource, and their
//! translation from and to the gRPC contracts. Nothing here decides
//! anything: the services do.

pub(crate) mod fields;
mod identity;
mod notifications;
mod orders;
mod restaurants;

pub(crate) use fields::{IdempotencyKey, OrderId, RestaurantId};
pub(crate) use identity::{SignIn, SignedIn};
pub(crate) use notifications::{Notification, NotificationList, NotificationQuery, NotificationStreamQuery};
pub(crate) use orders::{NewOrder, Order, OrderList, OrderQuery, StatusUpdate, parse_status};
pub(crate) use restaurants::{
    Menu, MenuItem, NewMenuItem, NewRestaurant, Restaurant, RestaurantList, RestaurantQuery,
};

pub(super) fn rfc3339(timestamp: Option<prost_types::Timestamp>) -> Option<String> {
    timestamp.map(|timestamp| timestamp.to_string())
}

/// An empty cursor means the last page.
/// A whole number, as JSON Schema's `integer` means it: `2` and `2.0`
/// alike (a client generating JSON from the document may write either).
pub(super) fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::{Deserialize, de::Error};
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && value.abs() < 9.0e15)
            .map(|value| value as i64)
    });
    whole
        .and_then(|value| T::try_from(value).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {number}")))
}

pub(super) fn cursor(next_page_token: String) -> Option<String> {
    (!next_page_token.is_empty()).then_some(next_page_token)
}
