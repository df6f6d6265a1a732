//! The catalog, served from memory: every restaurant and menu as the store
//! has them, exactly.
//!
//! Restaurants and menus are small and read on nearly every request, and a
//! query per read costs more than all else a read does (sqlx hands each to
//! a thread of its own and back). So reads are answered from memory, kept
//! exact by the catalog's version in the store: every write raises it and
//! stamps the rows it writes (the store's triggers do, whoever writes: a
//! replica of an older build too), and every read first
//! reads the version (in place on SQLite, microseconds). If a write through
//! any replica sharing the store has moved it on, the read first fetches
//! the rows stamped since. A write is thus seen by every replica's reads as
//! soon as it has answered, as when reads went to the store.

use crate::{
    domain::{Menu, RestaurantFilter},
    store::{Changes, RestaurantStore},
};
use dishpatch::{error::ServiceError, proto::restaurant::v1 as pb};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ops::Bound,
    sync::{PoisonError, RwLock},
};

/// The catalog of one replica.
#[derive(Debug)]
pub(crate) struct Catalog {
    store: RestaurantStore,
    held: RwLock<Held>,
    /// Taken to fetch changes, so that reads finding the catalog behind
    /// together fetch once.
    fetching: tokio::sync::Mutex<()>,
}

/// What a replica holds: the catalog as of `version`.
#[derive(Debug, Default)]
pub(crate) struct Held {
    version: i64,
    /// By id, which is also creation order (ids begin with their time).
    restaurants: BTreeMap<String, pb::Restaurant>,
    /// Restaurant ids by lower-cased cuisine.
    by_cuisine: HashMap<String, BTreeSet<String>>,
    /// Each restaurant's menu (a restaurant without items has none here).
    menus: HashMap<String, Menu>,
}

impl Catalog {
    /// The catalog of `store`, loaded whole.
    pub(crate) async fn load(store: RestaurantStore) -> Result<Self, sqlx::Error> {
        let catalog = Self {
            store,
            held: RwLock::new(Held::default()),
            fetching: tokio::sync::Mutex::new(()),
        };
        catalog.catch_up(1).await?;
        Ok(catalog)
    }

    /// Runs `read` on the catalog as of now: with every write that has
    /// answered, through any replica.
    pub(crate) async fn read<T>(&self, read: impl FnOnce(&Held) -> T) -> Result<T, ServiceError> {
        let version = self.store.version().await?;
        if self.held().version < version {
            self.catch_up(version).await?;
        }
        Ok(read(&self.held()))
    }

    /// Fetches what changed, unless another read did while this one waited.
    async fn catch_up(&self, version: i64) -> Result<(), sqlx::Error> {
        let _fetching = self.fetching.lock().await;
        let since = self.held().version;
        if since >= version {
            return Ok(());
        }
        let changes = self.store.changes_since(since).await?;
        self.held
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(changes);
        Ok(())
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Held {
    fn apply(&mut self, changes: Changes) {
        for restaurant in changes.restaurants {
            let cuisine = restaurant.cuisine.to_lowercase();
            if let Some(old) = self.restaurants.get(&restaurant.id) {
                let old = old.cuisine.to_lowercase();
                if let Some(ids) = self.by_cuisine.get_mut(&old) {
                    ids.remove(&restaurant.id);
                }
            }
            self.by_cuisine
                .entry(cuisine)
                .or_default()
                .insert(restaurant.id.clone());
            self.restaurants.insert(restaurant.id.clone(), restaurant);
        }
        for item in changes.menu_items {
            self.menus
                .entry(item.restaurant_id.clone())
                .or_default()
                .insert(item.id.clone(), item);
        }
        // Last: should anything above panic, the next read fetches again.
        self.version = changes.version;
    }

    /// A restaurant; NOT_FOUND for an unknown one.
    pub(crate) fn restaurant(&self, id: &str) -> Result<&pb::Restaurant, ServiceError> {
        self.restaurants
            .get(id)
            .ok_or_else(|| ServiceError::NotFound(format!("restaurant {id} not found")))
    }

    /// A restaurant and its menu (items by id: in the order they were
    /// added); NOT_FOUND for an unknown restaurant.
    pub(crate) fn menu(&self, restaurant_id: &str) -> Result<(&pb::Restaurant, &Menu), ServiceError> {
        static EMPTY: Menu = BTreeMap::new();
        let restaurant = self.restaurant(restaurant_id)?;
        Ok((restaurant, self.menus.get(restaurant_id).unwrap_or(&EMPTY)))
    }

    /// One page of the restaurants `filter` selects, in id (creation)
    /// order, and whether more follow.
    pub(crate) fn list(&self, filter: &RestaurantFilter) -> (Vec<pb::Restaurant>, bool) {
        let after = filter.after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let ids: Box<dyn Iterator<Item = &String>> = match &filter.cuisine {
            Some(cuisine) => match self.by_cuisine.get(cuisine) {
                Some(ids) => Box::new(ids.range::<str, _>((after, Bound::Unbounded))),
                None => Box::new(std::iter::empty()),
            },
            None => Box::new(
                self.restaurants
                    .range::<str, _>((after, Bound::Unbounded))
                    .map(|(id, _)| id),
            ),
        };
        let page_size = usize::try_from(filter.page_size).expect("page sizes are positive");
        let rows = ids
            .filter_map(|id| self.restaurants.get(id))
            .filter(|restaurant| {
                filter
                    .name_contains
                    .as_deref()
                    .is_none_or(|text| restaurant.name.to_lowercase().contains(text))
            })
            .take(page_size + 1)
            .cloned()
            .collect();
        dishpatch::page::split(rows, filter.page_size)
    }
}
