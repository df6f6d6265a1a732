//! restaurant-svc's rules: what a valid restaurant, menu item and price
//! request is, and how lines are priced.

use dishpatch::{
    error::ServiceError,
    ids::{MENU_ITEM, RESTAURANT},
    proto::restaurant::v1 as pb,
    validate,
};
use std::collections::BTreeMap;

/// The most a menu item may cost, in cents.
pub(crate) const MAX_PRICE_CENTS: i64 = 1_000_000;

/// A restaurant to create.
#[derive(Debug)]
pub(crate) struct NewRestaurant {
    pub(crate) name: String,
    pub(crate) cuisine: String,
    pub(crate) address: String,
    pub(crate) rating: f64,
}

impl NewRestaurant {
    pub(crate) fn from_request(request: &pb::CreateRestaurantRequest) -> Result<Self, ServiceError> {
        Ok(Self {
            name: validate::required("name", &request.name, 100)?,
            cuisine: validate::required("cuisine", &request.cuisine, 50)?,
            address: validate::required("address", &request.address, 200)?,
            rating: rating(request.rating.unwrap_or(0.0))?,
        })
    }
}

fn rating(value: f64) -> Result<f64, ServiceError> {
    if (0.0..=5.0).contains(&value) {
        Ok(value)
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "rating must be between 0.0 and 5.0, got {value}"
        )))
    }
}

fn price_cents(field: &str, value: i64) -> Result<i64, ServiceError> {
    if (0..=MAX_PRICE_CENTS).contains(&value) {
        Ok(value)
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "{field} must be between 0 and {MAX_PRICE_CENTS} cents, got {value}"
        )))
    }
}

/// A menu item to add.
#[derive(Debug)]
pub(crate) struct NewMenuItem {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) price_cents: i64,
    pub(crate) available: bool,
}

impl NewMenuItem {
    pub(crate) fn from_request(request: &pb::AddMenuItemRequest) -> Result<Self, ServiceError> {
        RESTAURANT.check("restaurant_id", &request.restaurant_id)?;
        Ok(Self {
            name: validate::required("name", &request.name, 100)?,
            description: description(&request.description)?,
            price_cents: price_cents("price_cents", request.price_cents)?,
            available: request.available.unwrap_or(true),
        })
    }
}

fn description(value: &str) -> Result<String, ServiceError> {
    Ok(validate::optional("description", value, 500)?.unwrap_or_default())
}

/// Changes to a menu item: `None` leaves a field as it is.
#[derive(Debug)]
pub(crate) struct MenuItemChanges {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) price_cents: Option<i64>,
    pub(crate) available: Option<bool>,
}

impl MenuItemChanges {
    pub(crate) fn from_request(request: &pb::UpdateMenuItemRequest) -> Result<Self, ServiceError> {
        RESTAURANT.check("restaurant_id", &request.restaurant_id)?;
        MENU_ITEM.check("menu_item_id", &request.menu_item_id)?;
        let changes = Self {
            name: request
                .name
                .as_deref()
                .map(|name| validate::required("name", name, 100))
                .transpose()?,
            description: request.description.as_deref().map(description).transpose()?,
            price_cents: request
                .price_cents
                .map(|price| price_cents("price_cents", price))
                .transpose()?,
            available: request.available,
        };
        let nothing = changes.name.is_none()
            && changes.description.is_none()
            && changes.price_cents.is_none()
            && changes.available.is_none();
        if nothing {
            return Err(ServiceError::InvalidArgument(
                "nothing to update: set at least one of name, description, price_cents, available".into(),
            ));
        }
        Ok(changes)
    }
}

/// Which restaurants to list.
#[derive(Debug)]
pub(crate) struct RestaurantFilter {
    /// Lower-cased cuisine to match exactly.
    pub(crate) cuisine: Option<String>,
    /// Lower-cased text the name must contain.
    pub(crate) name_contains: Option<String>,
    pub(crate) page_size: i64,
    /// List only ids after this one.
    pub(crate) after: Option<String>,
}

impl RestaurantFilter {
    pub(crate) fn from_request(request: &pb::ListRestaurantsRequest) -> Result<Self, ServiceError> {
        let cuisine = validate::optional("cuisine", &request.cuisine, 50)?;
        let query = validate::optional("query", &request.query, 100)?;
        let after = (!request.page_token.is_empty())
            .then(|| {
                RESTAURANT
                    .check("page_token", &request.page_token)
                    .map(|()| request.page_token.clone())
            })
            .transpose()?;
        Ok(Self {
            cuisine: cuisine.map(|cuisine| cuisine.to_lowercase()),
            name_contains: query.map(|query| query.to_lowercase()),
            page_size: dishpatch::page::size(request.page_size)?,
            after,
        })
    }
}

/// A restaurant's menu: its items by id, which is the order they were
/// added in (ids begin with their time).
pub(crate) type Menu = BTreeMap<String, pb::MenuItem>;

/// A checked price request: the restaurant and its lines.
#[derive(Debug)]
pub(crate) struct PriceRequest<'a> {
    pub(crate) restaurant_id: &'a str,
    pub(crate) lines: &'a [pb::ItemQuantity],
}

impl<'a> PriceRequest<'a> {
    pub(crate) fn from_request(request: &'a pb::PriceItemsRequest) -> Result<Self, ServiceError> {
        RESTAURANT.check("restaurant_id", &request.restaurant_id)?;
        let lines = &request.items;
        validate::order_lines(
            lines
                .iter()
                .map(|line| (line.menu_item_id.as_str(), line.quantity)),
        )?;
        Ok(Self {
            restaurant_id: &request.restaurant_id,
            lines,
        })
    }

    /// Prices the lines from `menu` (the restaurant's items).
    pub(crate) fn price(
        &self,
        restaurant_name: &str,
        menu: &Menu,
    ) -> Result<pb::PriceItemsResponse, ServiceError> {
        let mut items = Vec::with_capacity(self.lines.len());
        for line in self.lines {
            let Some(item) = menu.get(line.menu_item_id.as_str()) else {
                return Err(ServiceError::NotFound(format!(
                    "menu item {} is not on the menu of restaurant {}",
                    line.menu_item_id, self.restaurant_id
                )));
            };
            if !item.available {
                return Err(ServiceError::FailedPrecondition(format!(
                    "menu item {} ({}) is not available at {restaurant_name} right now",
                    item.id, item.name
                )));
            }
            items.push(pb::PricedItem {
                menu_item_id: item.id.clone(),
                name: item.name.clone(),
                quantity: line.quantity,
                unit_price_cents: item.price_cents,
                line_total_cents: item.price_cents * i64::from(line.quantity),
            });
        }
        Ok(pb::PriceItemsResponse {
            restaurant_id: self.restaurant_id.to_owned(),
            restaurant_name: restaurant_name.to_owned(),
            total_cents: items.iter().map(|item| item.line_total_cents).sum(),
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, price_cents: i64, available: bool) -> pb::MenuItem {
        pb::MenuItem {
            id: id.into(),
            restaurant_id: String::new(),
            name: format!("dish {id}"),
            description: String::new(),
            price_cents,
            available,
        }
    }

    #[test]
    fn prices_lines_and_totals() {
        let (a, b) = (MENU_ITEM.generate(), MENU_ITEM.generate());
        let request = pb::PriceItemsRequest {
            restaurant_id: RESTAURANT.generate(),
            items: vec![
                pb::ItemQuantity {
                    menu_item_id: a.clone(),
                    quantity: 3,
                },
                pb::ItemQuantity {
                    menu_item_id: b.clone(),
                    quantity: 1,
                },
            ],
        };
        let (item_a, item_b) = (item(&a, 250, true), item(&b, 1000, true));
        let menu = Menu::from([(a.clone(), item_a), (b.clone(), item_b)]);
        let priced = PriceRequest::from_request(&request)
            .unwrap()
            .price("Luigi's", &menu)
            .unwrap();
        assert_eq!(priced.items[0].line_total_cents, 750);
        assert_eq!(priced.total_cents, 1750);
    }

    #[test]
    fn refuses_unavailable_and_unknown_items() {
        let (a, unknown) = (MENU_ITEM.generate(), MENU_ITEM.generate());
        let item_a = item(&a, 250, false);
        let menu = Menu::from([(a.clone(), item_a)]);
        let price = |id: &str| {
            let request = pb::PriceItemsRequest {
                restaurant_id: RESTAURANT.generate(),
                items: vec![pb::ItemQuantity {
                    menu_item_id: id.into(),
                    quantity: 1,
                }],
            };
            PriceRequest::from_request(&request)
                .unwrap()
                .price("Luigi's", &menu)
                .unwrap_err()
        };
        assert!(matches!(price(&a), ServiceError::FailedPrecondition(m) if m.contains("not available")));
        assert!(matches!(price(&unknown), ServiceError::NotFound(_)));
    }
}
