//! Restaurants and their menus.

use super::{cursor, rfc3339};
use dishpatch::proto::restaurant::v1 as restaurant;
use serde::{Deserialize, Serialize};

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
