//! `bench seed`: fills order-svc's and notify-svc's stores with a year of
//! orders and their notifications, fast, to measure queries at scale
//! ([`crate::scale`]).
//!
//! Rows go straight into the services' tables (migrated by the services'
//! own migrations), 500 to a statement and 100 statements to a
//! transaction: on SQLite here, a million orders took 3.6 minutes and
//! three million notifications 4.2, where placing the orders through the
//! API alone would take over six. They are what the services
//! write, with two simplifications that lists do not see: an order has one
//! line, and its history holds the state it was placed in and the one it
//! is in, not every step between.

use dishpatch::{
    ids::{MENU_ITEM, NOTIFICATION, ORDER, RESTAURANT},
    store::{Store, placeholders},
};
use sqlx::{Any, Arguments, Encode, Type, any::AnyArguments};
use std::time::{Duration, Instant};

/// Rows in one `INSERT`.
const ROWS_PER_STATEMENT: usize = 500;
/// Statements in one transaction.
const STATEMENTS_PER_TRANSACTION: usize = 100;
/// Each order's states and how often an order is in it, in percent: most
/// orders of a year are long delivered.
const STATES: [(&str, u32); 7] = [
    ("placed", 2),
    ("accepted", 2),
    ("preparing", 2),
    ("ready", 2),
    ("out_for_delivery", 2),
    ("delivered", 80),
    ("cancelled", 10),
];
/// The time the seeded orders span, ending now.
const SPAN: Duration = Duration::from_secs(365 * 24 * 3600);

/// How much to seed.
#[derive(Debug, Clone)]
pub struct SeedSettings {
    /// Orders.
    pub orders: usize,
    /// Notifications, spread evenly over the orders (three an order for a
    /// million orders and three million notifications).
    pub notifications: usize,
    /// Restaurants the orders are from.
    pub restaurants: usize,
    /// Customers who placed them.
    pub customers: usize,
}

/// What was seeded, for choosing what to ask for.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The restaurants' ids.
    pub restaurants: Vec<String>,
    /// The customers' names.
    pub customers: Vec<String>,
    /// Every thousandth order from the 500th (or from the middle of
    /// fewer; each with older ones before it): (id, restaurant, customer).
    pub sample: Vec<(String, String, String)>,
    /// When the first and the last order was placed, microseconds since
    /// the Unix epoch.
    pub span_micros: (i64, i64),
    /// Notifications seeded: their seqs run from 1 to this on a new store.
    pub notifications: usize,
}

/// The name of the `n`th customer.
fn customer(n: usize) -> String {
    format!("customer-{n:05}")
}

/// Fills the stores at `order_url` and `notify_url` (new or empty ones:
/// the services' migrations run first).
pub async fn seed(order_url: &str, notify_url: &str, settings: &SeedSettings) -> Result<Seeded, String> {
    let orders = Store::open(order_url, &order_svc::MIGRATIONS)
        .await
        .map_err(|error| format!("opening {order_url}: {error}"))?;
    let notifications = Store::open(notify_url, &notify_svc::MIGRATIONS)
        .await
        .map_err(|error| format!("opening {notify_url}: {error}"))?;
    for (store, table) in [(&orders, "orders"), (&notifications, "notifications")] {
        let any: Option<i64> = sqlx::query_scalar(&format!("SELECT 1 FROM {table} LIMIT 1"))
            .fetch_optional(store.pool())
            .await
            .map_err(|error| error.to_string())?;
        if any.is_some() {
            // Seeded rows would not follow what is there (times rising along
            // the log, among others).
            return Err(format!(
                "{table} already holds rows: seed only new or empty stores"
            ));
        }
    }
    let mut random = fastrand::Rng::with_seed(7);
    let restaurants: Vec<String> = (0..settings.restaurants.max(1))
        .map(|_| RESTAURANT.generate())
        .collect();
    let customers: Vec<String> = (0..settings.customers.max(1)).map(customer).collect();
    let now = dishpatch::time::now_micros();
    let span = i64::try_from(SPAN.as_micros()).expect("a year of microseconds fits");
    let step = span / i64::try_from(settings.orders.max(1)).unwrap_or(i64::MAX);
    let started = Instant::now();

    // Orders in id order (ids are time-ordered), then their lines and
    // history, a table at a time so that each statement holds many rows.
    let mut placed = Vec::with_capacity(settings.orders);
    let mut writer = Writer::new(
        &orders,
        "orders (id, restaurant_id, restaurant_name, customer, status, total_cents, created_at, updated_at)",
    );
    for n in 0..settings.orders {
        let order = Placed {
            id: ORDER.generate(),
            restaurant: random.usize(..restaurants.len()),
            customer: random.usize(..customers.len()),
            state: pick_state(&mut random),
            at: now - span + step * i64::try_from(n).unwrap_or(i64::MAX),
        };
        let restaurant = &restaurants[order.restaurant];
        writer
            .row(|row| {
                row.add(order.id.clone())
                    .add(restaurant.clone())
                    .add(format!("Restaurant {}", &restaurant[restaurant.len() - 6..]))
                    .add(customers[order.customer].clone())
                    .add(order.state)
                    .add(1000_i64)
                    .add(order.at)
                    .add(order.updated_at())
            })
            .await?;
        placed.push(order);
    }
    writer.finish().await?;
    let dish = MENU_ITEM.generate();
    let mut writer = Writer::new(
        &orders,
        "order_items (order_id, line, menu_item_id, name, quantity, unit_price_cents, line_total_cents)",
    );
    for order in &placed {
        writer
            .row(|row| {
                row.add(order.id.clone())
                    .add(1_i64)
                    .add(dish.clone())
                    .add("Seeded dish")
                    .add(1_i64)
                    .add(1000_i64)
                    .add(1000_i64)
            })
            .await?;
    }
    writer.finish().await?;
    let history = "order_status_history (order_id, status, at)";
    let mut writer = Writer::new(&orders, history);
    for order in &placed {
        writer
            .row(|row| row.add(order.id.clone()).add("placed").add(order.at))
            .await?;
    }
    writer.finish().await?;
    let mut writer = Writer::new(&orders, history);
    for order in placed.iter().filter(|order| order.state != "placed") {
        writer
            .row(|row| row.add(order.id.clone()).add(order.state).add(order.updated_at()))
            .await?;
    }
    writer.finish().await?;
    eprintln!("seeded {} orders in {:.0?}", settings.orders, started.elapsed());

    // Notifications: each order's in a row, to the customer and the
    // kitchen in turn, their times rising along the log as the services'
    // do.
    let started = Instant::now();
    let per_order = settings.notifications.div_ceil(placed.len().max(1)).max(1);
    let apart = step / i64::try_from(per_order).unwrap_or(i64::MAX);
    let mut writer = Writer::new(
        &notifications,
        "notifications (id, event_id, order_id, recipient, kind, message, created_at, trace_id)",
    );
    for n in 0..settings.notifications {
        let Some(order) = placed.get(n / per_order) else {
            break;
        };
        let recipient = if n % 2 == 0 {
            customers[order.customer].clone()
        } else {
            format!("restaurant:{}", restaurants[order.restaurant])
        };
        let at = order.at + apart * i64::try_from(n % per_order).unwrap_or(0);
        writer
            .row(|row| {
                row.add(NOTIFICATION.generate())
                    .add(format!("seed-{n}"))
                    .add(order.id.clone())
                    .add(recipient)
                    .add("order.placed")
                    .add(format!("Order {} was placed", order.id))
                    .add(at)
                    .add("")
            })
            .await?;
    }
    writer.finish().await?;
    eprintln!(
        "seeded {} notifications in {:.0?}",
        settings.notifications,
        started.elapsed()
    );
    orders.close().await;
    notifications.close().await;
    let sample = placed
        .iter()
        .skip(500.min(placed.len() / 2))
        .step_by(1000)
        .map(|order| {
            (
                order.id.clone(),
                restaurants[order.restaurant].clone(),
                customers[order.customer].clone(),
            )
        })
        .collect();
    Ok(Seeded {
        restaurants,
        customers,
        sample,
        span_micros: (now - span, now),
        notifications: settings.notifications,
    })
}

/// An order as seeded.
struct Placed {
    id: String,
    /// Indexes into the restaurants and the customers.
    restaurant: usize,
    customer: usize,
    state: &'static str,
    at: i64,
}

impl Placed {
    /// When it entered the state it is in: a minute after it was placed,
    /// unless it is still `placed`.
    fn updated_at(&self) -> i64 {
        if self.state == "placed" {
            self.at
        } else {
            self.at + 60_000_000
        }
    }
}

fn pick_state(random: &mut fastrand::Rng) -> &'static str {
    let mut roll = random.u32(0..100);
    for (state, percent) in STATES {
        if roll < percent {
            return state;
        }
        roll -= percent;
    }
    "delivered"
}

/// One row's values, added to its statement's in column order.
struct Row<'a> {
    arguments: &'a mut AnyArguments<'static>,
    columns: usize,
}

impl Row<'_> {
    fn add<T: 'static + Encode<'static, Any> + Type<Any>>(self, value: T) -> Self {
        self.arguments.add(value).expect("strings and integers encode");
        Self {
            arguments: self.arguments,
            columns: self.columns + 1,
        }
    }
}

/// Rows of one table gathered into multi-row `INSERT`s, committed a
/// transaction at a time.
struct Writer<'s> {
    store: &'s Store,
    /// `name (column, …)`.
    table: &'static str,
    /// The values of the statement being gathered, and its rows.
    arguments: AnyArguments<'static>,
    rows: usize,
    columns: usize,
    statements: Vec<(String, AnyArguments<'static>)>,
}

impl<'s> Writer<'s> {
    /// A writer of rows into `table` (`name (column, …)`).
    fn new(store: &'s Store, table: &'static str) -> Self {
        Self {
            store,
            table,
            arguments: AnyArguments::default(),
            rows: 0,
            columns: 0,
            statements: Vec::new(),
        }
    }

    /// Adds a row, its values given by `values`.
    async fn row(&mut self, values: impl for<'a> FnOnce(Row<'a>) -> Row<'a>) -> Result<(), String> {
        let row = values(Row {
            arguments: &mut self.arguments,
            columns: 0,
        });
        self.columns = row.columns;
        self.rows += 1;
        if self.rows == ROWS_PER_STATEMENT {
            self.end_statement();
        }
        if self.statements.len() == STATEMENTS_PER_TRANSACTION {
            self.commit().await?;
        }
        Ok(())
    }

    fn end_statement(&mut self) {
        if self.rows == 0 {
            return;
        }
        let sql = format!(
            "INSERT INTO {} VALUES {}",
            self.table,
            placeholders(self.store.backend(), self.rows, self.columns)
        );
        self.statements.push((sql, std::mem::take(&mut self.arguments)));
        self.rows = 0;
    }

    async fn commit(&mut self) -> Result<(), String> {
        let failed = |error: sqlx::Error| format!("seeding {}: {error}", self.table);
        let mut transaction = self.store.pool().begin().await.map_err(failed)?;
        for (sql, arguments) in self.statements.drain(..) {
            sqlx::query_with(&sql, arguments)
                .execute(&mut *transaction)
                .await
                .map_err(failed)?;
        }
        transaction.commit().await.map_err(failed)
    }

    async fn finish(mut self) -> Result<(), String> {
        self.end_statement();
        self.commit().await
    }
}
