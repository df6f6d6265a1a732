//! Restaurants and their menus.

use super::{
    cursor,
    fields::{Address, Cuisine, Filter50, Filter100, Name, RestaurantIdOrEmpty, Text500},
    rfc3339,
};
use dishpatch::proto::restaurant::v1 as restaurant;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A restaurant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Restaurant {
    #[schema(example = "rst_000000000000700080005eed00010000")]
    id: String,
    name: String,
    cuisine: String,
    address: String,
    /// 0.0 to 5.0.
    rating: f64,
    /// When it was created (RFC 3339).
    #[schema(format = DateTime)]
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

/// A page of restaurants.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestaurantList {
    restaurants: Vec<Restaurant>,
    /// Pass as `cursor` for the next page; null on the last.
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

/// A restaurant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewRestaurant {
    #[schema(value_type = Name)]
    name: String,
    #[schema(value_type = Cuisine)]
    cuisine: String,
    #[schema(value_type = Address)]
    address: String,
    /// 0.0 to 5.0 (0.0 when left out).
    #[schema(minimum = 0.0, maximum = 5.0)]
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

/// Which restaurants to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RestaurantQuery {
    /// Only restaurants of this cuisine (any case).
    #[param(value_type = Option<Filter50>)]
    pub(crate) cuisine: Option<String>,
    /// Only restaurants whose name contains this (any case).
    #[param(value_type = Option<Filter100>)]
    pub(crate) q: Option<String>,
    /// Restaurants on a page: 1 to 100 (0 or none: 20).
    #[param(minimum = 0, maximum = 100)]
    pub(crate) limit: Option<i32>,
    /// The page after the one whose `nextCursor` this is.
    #[param(value_type = Option<RestaurantIdOrEmpty>)]
    pub(crate) cursor: Option<String>,
}

/// An item on a restaurant's menu.
#[derive(Debug, Serialize, ToSchema)]
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

/// A restaurant's menu.
#[derive(Debug, Serialize, ToSchema)]
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

/// A menu item to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewMenuItem {
    #[schema(value_type = Name)]
    name: String,
    #[serde(default)]
    #[schema(value_type = Text500, required = false)]
    description: String,
    /// Its price, in cents: 0 to 1,000,000.
    #[serde(deserialize_with = "super::whole_number")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    price_cents: i64,
    /// Whether it can be ordered (true when left out).
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
