//! restaurant-svc's queries. Every query runs on SQLite and PostgreSQL alike.

use crate::domain::{MenuItemChanges, NewMenuItem, NewRestaurant};
use dishpatch::{
    error::{ServiceError, is_unique_violation},
    ids::{MENU_ITEM, RESTAURANT},
    proto::restaurant::v1 as pb,
    store::{Select, Store},
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

const RESTAURANT_COLUMNS: &str = "id, name, cuisine, address, rating, created_at";
const MENU_ITEM_COLUMNS: &str = "id, restaurant_id, name, description, price_cents, available";

/// What changed in the catalog since a version: every restaurant and menu
/// item written since, as they are now.
#[derive(Debug)]
pub(crate) struct Changes {
    /// The version they bring the catalog to.
    pub(crate) version: i64,
    pub(crate) restaurants: Vec<pb::Restaurant>,
    pub(crate) menu_items: Vec<pb::MenuItem>,
}

/// The query for the rows of `table` written since `version`.
fn changed_since<'q>(columns: &str, table: &str, version: i64) -> Select<'q> {
    Select::new(format!("SELECT {columns} FROM {table}")).and("version > $", Some(version))
}

/// The catalog's version: read on every read of the catalog, so in place
/// on SQLite ([`Store::read_integer`]).
const VERSION: &str = "SELECT version FROM catalog_version WHERE id = 1";

/// Restaurants and menus in a [`Store`]. Each write raises the catalog's
/// version and stamps its rows with it: the store's triggers do (migration
/// 0003), whoever writes (see `crate::catalog`).
#[derive(Debug, Clone)]
pub(crate) struct RestaurantStore {
    store: Store,
}

impl RestaurantStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The catalog's version now.
    pub(crate) async fn version(&self) -> Result<i64, sqlx::Error> {
        self.store.read_integer(VERSION).await
    }

    /// Every restaurant and menu item written since `version`.
    pub(crate) async fn changes_since(&self, version: i64) -> Result<Changes, sqlx::Error> {
        // The version first: a row written after it is read now or at the
        // next change, never missed (rows are read as they are, so reading
        // one twice does no harm).
        let now = self.version().await?;
        let (sql, arguments) = changed_since(RESTAURANT_COLUMNS, "restaurants", version).build();
        let restaurants =
            sqlx::query_as_with::<_, RestaurantRow, _>(&sql, arguments).fetch_all(self.store.pool());
        let restaurants = self.store.timed("restaurants_changed", restaurants).await?;
        let (sql, arguments) = changed_since(MENU_ITEM_COLUMNS, "menu_items", version).build();
        let menu_items =
            sqlx::query_as_with::<_, MenuItemRow, _>(&sql, arguments).fetch_all(self.store.pool());
        let menu_items = self.store.timed("menu_items_changed", menu_items).await?;
        Ok(Changes {
            version: now,
            restaurants: restaurants.into_iter().map(Into::into).collect(),
            menu_items: menu_items.into_iter().map(Into::into).collect(),
        })
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

    /// A restaurant as the store has it (writes check against this; reads
    /// are answered by the catalog).
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

    /// Whether any restaurant exists.
    pub(crate) async fn is_empty(&self) -> Result<bool, sqlx::Error> {
        let any: Option<String> = sqlx::query_scalar("SELECT id FROM restaurants LIMIT 1")
            .fetch_optional(self.store.pool())
            .await?;
        Ok(any.is_none())
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

    /// What changed since a version is found by the version's index, in
    /// both tables: replicas read it after every write.
    async fn changes_are_found_by_their_version(backend: Backend) {
        let (_files, store) = plan_store(
            backend,
            &crate::MIGRATIONS,
            "WITH restaurants AS (
                 INSERT INTO restaurants (id, name, cuisine, address, rating, created_at, version)
                 SELECT 'rst_' || lpad(to_hex(g), 32, '0'), 'R' || g, 'C', 'A', 4.0, g, g
                 FROM generate_series(1, 5000) AS g
                 RETURNING id, version
             )
             INSERT INTO menu_items
                 (id, restaurant_id, name, description, price_cents, available, created_at, updated_at, version)
             SELECT 'itm_' || lpad(to_hex(version), 32, '0'), id, 'I', '', 100, 1, 0, 0, version
             FROM restaurants",
        )
        .await;
        for (columns, table) in [
            (RESTAURANT_COLUMNS, "restaurants"),
            (MENU_ITEM_COLUMNS, "menu_items"),
        ] {
            // The triggers stamp each row as it is written: the 10,000 rows
            // have versions 2 to 10,001 (restaurants first), and the last
            // ten menu items are those after 9,991.
            assert_served_by_index(&store, changed_since(columns, table, 9_991), &table).await;
        }
    }

    test_support::on_each_backend!(changes_are_found_by_their_version);
}
