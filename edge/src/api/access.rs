//! Who may do what, the rules the handlers apply to their [`Caller`]
//! (README's table):
//!
//! - anyone, signed in or not, browses restaurants and menus;
//! - a customer places orders as themselves, sees and lists only their
//!   own, cancels them while they can be, and reads their own
//!   notifications;
//! - restaurant staff change their restaurants' menus, list and move their
//!   orders, and read their `restaurant:<id>` notifications;
//! - an admin does everything, creating restaurants included.
//!
//! A right missing is 403; a resource the caller may not see is answered
//! as one that does not exist (404), so no one learns which order ids are
//! someone else's.

use super::{error::ApiError, identity::Caller};
use crate::auth::{RESTAURANT_RECIPIENT, Role};
use dishpatch::proto::order::v1 as order;

impl Caller {
    /// Only an admin may do `what`.
    pub(crate) fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("only an admin may {what}")))
        }
    }

    /// Only staff of `restaurant_id` (or an admin) may change its menu.
    pub(crate) fn require_staff_of(&self, restaurant_id: &str) -> Result<(), ApiError> {
        if self.acts_for(restaurant_id) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only staff of {restaurant_id} (or an admin) may change its menu"
            )))
        }
    }

    /// The customer an order is placed for: a customer's own name (naming
    /// someone else is refused); for an admin, the customer the order
    /// names. Staff do not place orders.
    pub(crate) fn customer_of_new_order(&self, named: Option<String>) -> Result<String, ApiError> {
        match self.role {
            Role::Customer => match named {
                Some(named) if named != self.sub => Err(ApiError::forbidden(format!(
                    "a customer places orders as themselves: customer must be {:?} or left out",
                    self.sub
                ))),
                _ => Ok(self.sub.clone()),
            },
            Role::Admin => named
                .ok_or_else(|| ApiError::bad_request("customer is required when an admin places an order")),
            Role::Restaurant => Err(ApiError::forbidden("restaurant staff do not place orders")),
        }
    }

    /// The `(customer, restaurant)` filters of an order listing: a
    /// customer's own orders; a staff member's restaurant's (the one they
    /// work for, unless they name one of theirs); for an admin, as asked.
    pub(crate) fn order_filters(
        &self,
        customer: Option<String>,
        restaurant_id: Option<String>,
    ) -> Result<(String, String), ApiError> {
        let customer = customer.unwrap_or_default();
        let restaurant_id = restaurant_id.unwrap_or_default();
        match self.role {
            Role::Admin => Ok((customer, restaurant_id)),
            Role::Customer if customer.is_empty() || customer == self.sub => {
                Ok((self.sub.clone(), restaurant_id))
            }
            Role::Customer => Err(ApiError::forbidden("a customer lists only their own orders")),
            Role::Restaurant => Ok((customer, self.own_restaurant(restaurant_id, "orders")?)),
        }
    }

    /// Whether the caller may see `order`: its customer, its restaurant's
    /// staff, an admin.
    pub(crate) fn may_see(&self, order: &order::Order) -> bool {
        match self.role {
            Role::Customer => order.customer == self.sub,
            Role::Restaurant | Role::Admin => self.acts_for(&order.restaurant_id),
        }
    }

    /// Whether the caller may move `order` (which they may see) to
    /// `status`: staff and admins through every state the order's life
    /// allows, a customer only to cancelled.
    pub(crate) fn may_move(&self, status: order::OrderStatus) -> Result<(), ApiError> {
        if self.role == Role::Customer && status != order::OrderStatus::Cancelled {
            return Err(ApiError::forbidden(
                "a customer may only cancel an order; its restaurant moves it through the kitchen",
            ));
        }
        Ok(())
    }

    /// The recipient of a notification listing: a customer's own name; a
    /// staff member's restaurant (`restaurant:<id>`, the one they work
    /// for, unless they name one of theirs); for an admin, as asked.
    pub(crate) fn notification_recipient(&self, recipient: Option<String>) -> Result<String, ApiError> {
        let recipient = recipient.unwrap_or_default();
        match self.role {
            Role::Admin => Ok(recipient),
            Role::Customer if recipient.is_empty() || recipient == self.sub => Ok(self.sub.clone()),
            Role::Customer => Err(ApiError::forbidden(
                "a customer reads only their own notifications",
            )),
            Role::Restaurant => {
                let asked = match recipient.strip_prefix(RESTAURANT_RECIPIENT) {
                    Some(restaurant_id) => restaurant_id.to_owned(),
                    None if recipient.is_empty() => String::new(),
                    None => {
                        return Err(ApiError::forbidden(
                            "restaurant staff read only their restaurants' notifications (restaurant:<id>)",
                        ));
                    }
                };
                let restaurant_id = self.own_restaurant(asked, "notifications")?;
                Ok(format!("{RESTAURANT_RECIPIENT}{restaurant_id}"))
            }
        }
    }

    /// The restaurant a staff member asks about: `asked` if they work for
    /// it, or, asking none, the one they work for.
    fn own_restaurant(&self, asked: String, what: &str) -> Result<String, ApiError> {
        if asked.is_empty() {
            return match self.restaurants.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::bad_request(format!(
                    "you work for several restaurants: name the one whose {what} to list"
                ))),
            };
        }
        if self.acts_for(&asked) {
            Ok(asked)
        } else {
            Err(ApiError::forbidden(format!(
                "restaurant staff see only their restaurants' {what}"
            )))
        }
    }
}
