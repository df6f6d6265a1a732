//! The scenarios: what each worker sends, one operation after another.
//!
//! - `read`: one restaurant (`GET /api/restaurants/{id}`, `GetRestaurant`).
//! - `menu`: one restaurant's menu.
//! - `list`: the first page of restaurants.
//! - `order`: place an order, each with its own idempotency key and a
//!   different mix of items and quantities.
//! - `lifecycle`: place an order, then move it through every state to
//!   delivered (six requests per order).
//! - `mixed`: 90% reads, 10% writes, in every twenty operations: twelve
//!   restaurant reads, four menus, two lists, one order placed and one
//!   status move of an order this worker placed.

use serde::Serialize;
use std::sync::Arc;

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// One restaurant.
    Read,
    /// One restaurant's menu.
    Menu,
    /// The first page of restaurants.
    List,
    /// Place orders.
    Order,
    /// Place an order and walk it to delivered.
    Lifecycle,
    /// Reads and writes, 9 to 1.
    Mixed,
}

impl Scenario {
    /// Whether the scenario writes (needs order-svc behind the target).
    pub fn writes(self) -> bool {
        matches!(self, Self::Order | Self::Lifecycle | Self::Mixed)
    }
}

/// The restaurants the load uses, each with the ids of its available items.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) restaurants: Vec<(String, Vec<String>)>,
}

/// One request to send.
#[derive(Debug, Clone)]
pub enum Operation {
    /// One restaurant.
    GetRestaurant(String),
    /// One menu.
    GetMenu(String),
    /// The first page of restaurants.
    ListRestaurants,
    /// A new order.
    PlaceOrder {
        /// Where.
        restaurant_id: String,
        /// Who.
        customer: String,
        /// (menu item id, quantity).
        items: Vec<(String, i32)>,
        /// Unique per order.
        idempotency_key: String,
    },
    /// An order to its next state.
    MoveOrder {
        /// Which order.
        order_id: String,
        /// The REST name of the state.
        status: &'static str,
    },
}

/// The states an order walks through after `placed`.
const LIFE: [&str; 5] = ["accepted", "preparing", "ready", "out_for_delivery", "delivered"];

/// One worker's way through a scenario.
#[derive(Debug)]
pub struct Walk {
    scenario: Scenario,
    catalog: Arc<Catalog>,
    /// Distinguishes this run's and this worker's idempotency keys.
    key_prefix: String,
    step: u64,
    /// An order this worker placed and how far it has moved.
    order: Option<(String, usize)>,
}

impl Walk {
    /// Worker `worker`'s walk; `run_id` makes its keys unique to the run.
    pub fn new(scenario: Scenario, catalog: Arc<Catalog>, run_id: &str, worker: usize) -> Self {
        Self {
            scenario,
            catalog,
            key_prefix: format!("bench-{run_id}-{worker}"),
            step: 0,
            order: None,
        }
    }

    /// The next request to send.
    pub fn next_operation(&mut self) -> Operation {
        let step = self.step;
        self.step += 1;
        let (restaurant_id, _) = self.restaurant(step);
        match self.scenario {
            Scenario::Read => Operation::GetRestaurant(restaurant_id.clone()),
            Scenario::Menu => Operation::GetMenu(restaurant_id.clone()),
            Scenario::List => Operation::ListRestaurants,
            Scenario::Order => self.place(step),
            Scenario::Lifecycle => self.move_or_place(step),
            Scenario::Mixed => match step % 20 {
                0..12 => Operation::GetRestaurant(restaurant_id.clone()),
                12..16 => Operation::GetMenu(restaurant_id.clone()),
                16..18 => Operation::ListRestaurants,
                18 => self.place(step),
                _ => self.move_or_place(step),
            },
        }
    }

    /// Learns the id of an order this worker placed.
    pub fn placed(&mut self, order_id: String) {
        self.order = Some((order_id, 0));
    }

    fn restaurant(&self, step: u64) -> &(String, Vec<String>) {
        let restaurants = &self.catalog.restaurants;
        &restaurants[(step as usize) % restaurants.len()]
    }

    fn place(&self, step: u64) -> Operation {
        let (restaurant_id, menu) = self.restaurant(step);
        // One to three different items, quantities one to three: every
        // order a little different.
        let lines = 1 + (step as usize % 3).min(menu.len() - 1);
        let items = (0..lines)
            .map(|line| {
                (
                    menu[(step as usize + line) % menu.len()].clone(),
                    1 + ((step as usize + line) % 3) as i32,
                )
            })
            .collect();
        Operation::PlaceOrder {
            restaurant_id: restaurant_id.clone(),
            customer: format!("bench-customer-{}", step % 1000),
            items,
            idempotency_key: format!("{}-{step}", self.key_prefix),
        }
    }

    fn move_or_place(&mut self, step: u64) -> Operation {
        match &mut self.order {
            Some((order_id, moved)) if *moved < LIFE.len() => {
                let status = LIFE[*moved];
                *moved += 1;
                Operation::MoveOrder {
                    order_id: order_id.clone(),
                    status,
                }
            }
            _ => self.place(step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog {
            restaurants: vec![(
                "rst_a".into(),
                vec!["itm_1".into(), "itm_2".into(), "itm_3".into()],
            )],
        })
    }

    #[test]
    fn lifecycle_walks_an_order_to_delivered_then_places_another() {
        let mut walk = Walk::new(Scenario::Lifecycle, catalog(), "run", 0);
        assert!(matches!(walk.next_operation(), Operation::PlaceOrder { .. }));
        walk.placed("ord_1".into());
        let moves: Vec<&str> = (0..5)
            .map(|_| match walk.next_operation() {
                Operation::MoveOrder { status, .. } => status,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(moves, LIFE);
        assert!(matches!(walk.next_operation(), Operation::PlaceOrder { .. }));
    }

    #[test]
    fn orders_have_unique_keys_and_valid_lines() {
        let mut walk = Walk::new(Scenario::Order, catalog(), "run", 3);
        let mut keys = std::collections::HashSet::new();
        for _ in 0..50 {
            let Operation::PlaceOrder {
                idempotency_key,
                items,
                ..
            } = walk.next_operation()
            else {
                panic!()
            };
            assert!(keys.insert(idempotency_key));
            let ids: std::collections::HashSet<_> = items.iter().map(|(id, _)| id.clone()).collect();
            assert_eq!(ids.len(), items.len(), "an item once per order");
            assert!(items.iter().all(|(_, q)| (1..=3).contains(q)));
        }
    }

    #[test]
    fn mixed_is_nine_reads_to_one_write() {
        let mut walk = Walk::new(Scenario::Mixed, catalog(), "run", 0);
        let writes = (0..200)
            .filter(|_| {
                matches!(
                    walk.next_operation(),
                    Operation::PlaceOrder { .. } | Operation::MoveOrder { .. }
                )
            })
            .count();
        assert_eq!(writes, 20);
    }
}
