//! restaurant-svc's queries. Every query runs on SQLite and PostgreSQL alike.

use crate::domain::{MenuItemChanges, NewMenuItem, NewRestaurant, RestaurantFilter};
use dishpatch::{
    error::{ServiceError, is_unique_violation},
    ids::{MENU_ITEM, RESTAURANT},
    proto::restaurant::v1 as pb,
    store::{Select, Store, placeholders_after},
    time,
};
use tokio::time::Instant;

#[derive(Debug, sqlx::FromRow)]
struct RestaurantRow {
    id: String,
    name: String,
    cuisine: String,
    address: String,
    rating: f64,
    created_at: i64,
}

impl From<RestaurantRow> for pb::Restaurant {
    fn from(row: RestaurantRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            cuisine: row.cuisine,
            address: row.address,
            rating: row.rating,
            created_at: Some(time::to_timestamp(row.created_at)),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct MenuItemRow {
    id: String,
    restaurant_id: String,
    name: String,
    description: String,
    price_cents: i64,
    available: i64,
}

impl From<MenuItemRow> for pb::MenuItem {
    fn from(row: MenuItemRow) -> Self {
        Self {
            id: row.id,
            restaurant_id: row.restaurant_id,
            name: row.name,
            description: row.description,
            price_cents: row.price_cents,
            available: row.available != 0,
        }
    }
}

/// A menu item beside its restaurant's name.
#[derive(Debug, sqlx::FromRow)]
struct NamedMenuItemRow {
    restaurant_name: String,
    #[sqlx(flatten)]
    item: MenuItemRow,
}

const RESTAURANT_COLUMNS: &str = "id, name, cuisine, address, rating, created_at";
const MENU_ITEM_COLUMNS: &str = "id, restaurant_id, name, description, price_cents, available";

/// The query of [`RestaurantStore::list_restaurants`]: one page, one more
/// than the page to tell whether more follow.
fn list_query(filter: &RestaurantFilter) -> Select<'_> {
    Select::new(format!("SELECT {RESTAURANT_COLUMNS} FROM restaurants"))
        .and("lower(cuisine) = $", filter.cuisine.as_deref())
        .and("lower(name) LIKE $ ESCAPE '\\'", filter.name_pattern.as_deref())
        .and("id > $", filter.after.as_deref())
        .then("ORDER BY id LIMIT $", filter.page_size + 1)
}

/// Restaurants and menus in a [`Store`].
#[derive(Debug, Clone)]
pub(crate) struct RestaurantStore {
    store: Store,
}

impl RestaurantStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Inserts a restaurant (under `id`, or a new one) for a caller whose
    /// deadline is `deadline`.
    pub(crate) async fn insert_restaurant(
        &self,
        id: Option<String>,
        restaurant: &NewRestaurant,
        deadline: Option<Instant>,
    ) -> Result<pb::Restaurant, ServiceError> {
        let row = RestaurantRow {
            id: id.unwrap_or_else(|| RESTAURANT.generate()),
            name: restaurant.name.clone(),
            cuisine: restaurant.cuisine.clone(),
            address: restaurant.address.clone(),
            rating: restaurant.rating,
            created_at: time::now_micros(),
        };
        let insert = sqlx::query(
            "INSERT INTO restaurants (id, name, cuisine, address, rating, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.cuisine)
        .bind(&row.address)
        .bind(row.rating)
        .bind(row.created_at);
        let _turn = self.store.write_turn(deadline).await?;
        let insert = insert.execute(self.store.pool());
        self.store.timed("insert_restaurant", insert).await?;
        Ok(row.into())
    }

    pub(crate) async fn restaurant(&self, id: &str) -> Result<pb::Restaurant, ServiceError> {
        let sql = format!("SELECT {RESTAURANT_COLUMNS} FROM restaurants WHERE id = $1");
        let query = sqlx::query_as::<_, RestaurantRow>(&sql)
            .bind(id)
            .fetch_optional(self.store.pool());
        self.store
            .timed("restaurant", query)
            .await?
            .map(Into::into)
            .ok_or_else(|| ServiceError::NotFound(format!("restaurant {id} not found")))
    }

    /// One page of restaurants in id (creation) order, and whether more follow.
    pub(crate) async fn list_restaurants(
        &self,
        filter: &RestaurantFilter,
    ) -> Result<(Vec<pb::Restaurant>, bool), ServiceError> {
        let (sql, arguments) = list_query(filter).build();
        let query = sqlx::query_as_with::<_, RestaurantRow, _>(&sql, arguments).fetch_all(self.store.pool());
        let rows = self.store.timed("list_restaurants", query).await?;
        let (rows, more) = dishpatch::page::split(rows, filter.page_size);
        Ok((rows.into_iter().map(Into::into).collect(), more))
    }

    /// Whether any restaurant exists.
    pub(crate) async fn is_empty(&self) -> Result<bool, sqlx::Error> {
        let any: Option<String> = sqlx::query_scalar("SELECT id FROM restaurants LIMIT 1")
            .fetch_optional(self.store.pool())
            .await?;
        Ok(any.is_none())
    }

    /// Every item of a restaurant's menu, in the order they were added.
    /// NOT_FOUND for an unknown restaurant; its name comes back too.
    pub(crate) async fn menu(
        &self,
        restaurant_id: &str,
    ) -> Result<(String, Vec<pb::MenuItem>), ServiceError> {
        let restaurant = self.restaurant(restaurant_id).await?;
        let sql = format!("SELECT {MENU_ITEM_COLUMNS} FROM menu_items WHERE restaurant_id = $1 ORDER BY id");
        let query = sqlx::query_as::<_, MenuItemRow>(&sql)
            .bind(restaurant_id)
            .fetch_all(self.store.pool());
        let rows = self.store.timed("menu", query).await?;
        Ok((restaurant.name, rows.into_iter().map(Into::into).collect()))
    }

    /// The items of a restaurant's menu among `ids`, with the restaurant's
    /// name, in one query (pricing an order needs no more). NOT_FOUND for an
    /// unknown restaurant.
    pub(crate) async fn menu_items<'a>(
        &self,
        restaurant_id: &str,
        ids: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<(String, Vec<pb::MenuItem>), ServiceError> {
        let sql = format!(
            "SELECT r.name AS restaurant_name, m.id, m.restaurant_id, m.name, m.description,
                    m.price_cents, m.available
             FROM menu_items m JOIN restaurants r ON r.id = m.restaurant_id
             WHERE m.restaurant_id = $1 AND m.id IN {}",
            placeholders_after(1, 1, ids.len())
        );
        let mut query = sqlx::query_as::<_, NamedMenuItemRow>(&sql).bind(restaurant_id);
        for id in ids {
            query = query.bind(id);
        }
        let rows = self
            .store
            .timed("menu_items", query.fetch_all(self.store.pool()))
            .await?;
        let Some(first) = rows.first() else {
            // None of those items: the restaurant may still exist.
            return Ok((self.restaurant(restaurant_id).await?.name, Vec::new()));
        };
        let restaurant_name = first.restaurant_name.clone();
        Ok((
            restaurant_name,
            rows.into_iter().map(|row| row.item.into()).collect(),
        ))
    }

    /// Adds a menu item (under `id`, or a new one) for a caller whose
    /// deadline is `deadline`.
    pub(crate) async fn insert_menu_item(
        &self,
        id: Option<String>,
        restaurant_id: &str,
        item: &NewMenuItem,
        deadline: Option<Instant>,
    ) -> Result<pb::MenuItem, ServiceError> {
        let restaurant = self.restaurant(restaurant_id).await?;
        let now = time::now_micros();
        let row = MenuItemRow {
            id: id.unwrap_or_else(|| MENU_ITEM.generate()),
            restaurant_id: restaurant_id.to_owned(),
            name: item.name.clone(),
            description: item.description.clone(),
            price_cents: item.price_cents,
            available: i64::from(item.available),
        };
        let insert = sqlx::query(
            "INSERT INTO menu_items
                 (id, restaurant_id, name, description, price_cents, available, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&row.id)
        .bind(&row.restaurant_id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(row.price_cents)
        .bind(row.available)
        .bind(now);
        let turn = self.store.write_turn(deadline).await?;
        let inserted = self
            .store
            .timed("insert_menu_item", insert.execute(self.store.pool()))
            .await;
        drop(turn);
        match inserted {
            Ok(_) => Ok(row.into()),
            Err(error) if is_unique_violation(&error) => Err(ServiceError::AlreadyExists(format!(
                "{} already has a menu item named {:?}",
                restaurant.name, item.name
            ))),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn update_menu_item(
        &self,
        restaurant_id: &str,
        item_id: &str,
        changes: &MenuItemChanges,
        deadline: Option<Instant>,
    ) -> Result<pb::MenuItem, ServiceError> {
        let sql = format!(
            "UPDATE menu_items SET
                 name = COALESCE($3, name),
                 description = COALESCE($4, description),
                 price_cents = COALESCE($5, price_cents),
                 available = COALESCE($6, available),
                 updated_at = $7
             WHERE id = $1 AND restaurant_id = $2
             RETURNING {MENU_ITEM_COLUMNS}"
        );
        let update = sqlx::query_as::<_, MenuItemRow>(&sql)
            .bind(item_id)
            .bind(restaurant_id)
            .bind(&changes.name)
            .bind(&changes.description)
            .bind(changes.price_cents)
            .bind(changes.available.map(i64::from))
            .bind(time::now_micros());
        let turn = self.store.write_turn(deadline).await?;
        let updated = self
            .store
            .timed("update_menu_item", update.fetch_optional(self.store.pool()))
            .await;
        drop(turn);
        match updated {
            Ok(Some(row)) => Ok(row.into()),
            Ok(None) => {
                // Say which of the two is unknown.
                self.restaurant(restaurant_id).await?;
                Err(ServiceError::NotFound(format!(
                    "menu item {item_id} is not on the menu of restaurant {restaurant_id}"
                )))
            }
            Err(error) if is_unique_violation(&error) => Err(ServiceError::AlreadyExists(format!(
                "restaurant {restaurant_id} already has a menu item named {:?}",
                changes.name.as_deref().unwrap_or_default()
            ))),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{
        Backend,
        stores::{assert_served_by_index, plan_store},
    };

    /// A cuisine is found by its index, with or without a page token. (A
    /// name matches anywhere in it, which no index can serve.)
    async fn a_cuisine_is_found_by_its_index(backend: Backend) {
        let (_files, store) = plan_store(
            backend,
            &crate::MIGRATIONS,
            "INSERT INTO restaurants (id, name, cuisine, address, rating, created_at)
               SELECT 'rst_' || lpad(to_hex(g), 32, '0'), 'R' || g, 'cuisine-' || (g % 500), 'A', 4.0, g
               FROM generate_series(1, 20000) AS g",
        )
        .await;
        for after in [None, Some("rst_00000000000000000000000000000100".to_owned())] {
            let filter = RestaurantFilter {
                cuisine: Some("cuisine-7".to_owned()),
                name_pattern: None,
                page_size: 20,
                after,
            };
            assert_served_by_index(&store, list_query(&filter), &filter).await;
        }
    }

    test_support::on_each_backend!(a_cuisine_is_found_by_its_index);
}
