//! order-svc's queries. Every query runs on SQLite and PostgreSQL alike.
//!
//! Writes go through [`Store::begin_write`]: on SQLite, one writer per
//! process at a time, each transaction taking the write lock at once.

use crate::domain::{NewOrder, OrderFilter, OrderStatus, OutboxEvent, notifications};
use dishpatch::{
    call::CallContext,
    error::ServiceError,
    ids::ORDER,
    proto::{order::v1 as pb, restaurant::v1::PriceItemsResponse},
    store::{Backend, Select, Store, WriteError, placeholders},
    time,
    trace::TraceContext,
};
use sqlx::{Any, Transaction};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};
use tokio::time::Instant;

#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    id: String,
    restaurant_id: String,
    restaurant_name: String,
    customer: String,
    status: String,
    total_cents: i64,
    delivery_address: Option<String>,
    note: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct LineRow {
    order_id: String,
    menu_item_id: String,
    name: String,
    quantity: i64,
    unit_price_cents: i64,
    line_total_cents: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct HistoryRow {
    order_id: String,
    status: String,
    at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: String,
    order_id: String,
    recipient: String,
    kind: String,
    message: String,
    traceparent: Option<String>,
    created_at: i64,
}

/// A notification waiting in the outbox.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) outbox_id: i64,
    /// When it entered the outbox (µs since the epoch).
    pub(crate) queued_at: i64,
    pub(crate) event: OutboxEvent,
}

/// A checked order, priced, to store.
#[derive(Debug)]
pub(crate) struct Placement {
    pub(crate) new: NewOrder,
    pub(crate) priced: PriceItemsResponse,
    /// The W3C traceparent of the call placing it, for its notifications.
    pub(crate) traceparent: Option<String>,
}

impl Placement {
    /// The order as stored under `id` at `now`.
    fn into_stored(self, id: String, now: i64) -> StoredOrder {
        let Self { new, priced, .. } = self;
        let placed_at = Some(time::to_timestamp(now));
        let order = pb::Order {
            id,
            restaurant_id: new.restaurant_id,
            customer: new.customer,
            items: priced
                .items
                .into_iter()
                .map(|item| pb::OrderLine {
                    menu_item_id: item.menu_item_id,
                    name: item.name,
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                    line_total_cents: item.line_total_cents,
                })
                .collect(),
            total_cents: priced.total_cents,
            status: OrderStatus::Placed.to_wire().into(),
            status_history: vec![pb::StatusChange {
                status: OrderStatus::Placed.to_wire().into(),
                at: placed_at,
            }],
            delivery_address: new.delivery_address,
            note: new.note,
            created_at: placed_at,
            updated_at: placed_at,
        };
        StoredOrder {
            order,
            restaurant_name: priced.restaurant_name,
            status: OrderStatus::Placed,
        }
    }
}

/// What became of an order given to [`OrderStore::insert_all`].
#[derive(Debug)]
pub(crate) enum Placed {
    /// Stored, as this.
    Stored(StoredOrder),
    /// Not stored: its customer already used its idempotency key. The order
    /// asked for comes back, to compare with the one that used the key.
    KeyUsed(NewOrder),
}

/// What became of a batch given to [`OrderStore::insert_all`].
#[derive(Debug)]
pub(crate) enum Batch {
    /// Committed: each order's fate, in the batch's order.
    Committed(Vec<Placed>),
    /// Rolled back, because just before the commit not every order in it
    /// was still wanted: the batch comes back.
    Withdrawn(Vec<Placement>),
}

/// An order as stored, with what its notifications need.
#[derive(Debug)]
pub(crate) struct StoredOrder {
    pub(crate) order: pb::Order,
    pub(crate) restaurant_name: String,
    pub(crate) status: OrderStatus,
}

const ORDER_COLUMNS: &str = "id, restaurant_id, restaurant_name, customer, status, total_cents, \
                             delivery_address, note, created_at, updated_at";

fn corrupt(what: String) -> ServiceError {
    ServiceError::Store(sqlx::Error::Protocol(what))
}

fn status_named(name: &str) -> Result<OrderStatus, ServiceError> {
    OrderStatus::from_name(name).ok_or_else(|| corrupt(format!("unknown order status {name:?} in the store")))
}

/// The query of [`OrderStore::list`]: one page of orders passing `filter`,
/// newest first, one more than the page to tell whether more follow.
fn list_query(filter: &OrderFilter) -> Select<'_> {
    Select::new(format!("SELECT {ORDER_COLUMNS} FROM orders"))
        .and("status = $", filter.status.map(OrderStatus::name))
        .and("restaurant_id = $", filter.restaurant_id.as_deref())
        .and("customer = $", filter.customer.as_deref())
        .and("id < $", filter.before.as_deref())
        .then("ORDER BY id DESC LIMIT $", filter.page_size + 1)
}

/// Orders and the outbox in a [`Store`].
#[derive(Debug, Clone)]
pub(crate) struct OrderStore {
    store: Store,
    /// This replica's number in the outbox: the notifications its writes
    /// queue are its own to relay (see [`Self::pending_outbox`]). Drawn at
    /// start, so a restarted replica's old rows count as another's.
    relayer: i64,
}

impl OrderStore {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            relayer: fastrand::i64(1..),
        }
    }

    /// Stores priced orders with their first history entries and their
    /// notifications, all in one transaction (four statements however many
    /// orders), for callers the last of whose deadlines is `deadline`.
    /// Answers in the batch's order; an order whose customer already used
    /// its idempotency key (in the store, or earlier in the batch) comes
    /// back as [`Placed::KeyUsed`]. Commits only if `still_wanted` says so
    /// just before: otherwise the batch is withdrawn.
    pub(crate) async fn insert_all(
        &self,
        batch: Vec<Placement>,
        deadline: Option<Instant>,
        still_wanted: impl Fn() -> bool,
    ) -> Result<Batch, WriteError> {
        let now = time::now_micros();
        let ids: Vec<String> = batch.iter().map(|_| ORDER.generate()).collect();
        let mut transaction = self.store.begin_write("insert_orders", deadline).await?;

        let sql = format!(
            "INSERT INTO orders (id, restaurant_id, restaurant_name, customer, status, total_cents,
                                 delivery_address, note, idempotency_key, created_at, updated_at)
             VALUES {}
             ON CONFLICT DO NOTHING
             RETURNING id",
            placeholders(self.store.backend(), batch.len(), 11)
        );
        let mut insert_orders = sqlx::query_scalar::<_, String>(&sql);
        for (id, Placement { new, priced, .. }) in ids.iter().zip(&batch) {
            insert_orders = insert_orders
                .bind(id)
                .bind(&new.restaurant_id)
                .bind(&priced.restaurant_name)
                .bind(&new.customer)
                .bind(OrderStatus::Placed.name())
                .bind(priced.total_cents)
                .bind(&new.delivery_address)
                .bind(&new.note)
                .bind(&new.idempotency_key)
                .bind(now)
                .bind(now);
        }
        let inserted: HashSet<String> = insert_orders
            .fetch_all(&mut **transaction)
            .await?
            .into_iter()
            .collect();
        let placed: Vec<(&str, &Placement)> = ids
            .iter()
            .zip(&batch)
            .filter(|(id, _)| inserted.contains(*id))
            .map(|(id, placement)| (id.as_str(), placement))
            .collect();
        if !placed.is_empty() {
            insert_details(&mut transaction, self.outbox(), &placed, now).await?;
        }
        if !still_wanted() {
            // Rolled back as the transaction drops.
            return Ok(Batch::Withdrawn(batch));
        }
        transaction.commit().await?;

        Ok(Batch::Committed(
            ids.into_iter()
                .zip(batch)
                .map(|(id, placement)| {
                    if inserted.contains(&id) {
                        Placed::Stored(placement.into_stored(id, now))
                    } else {
                        Placed::KeyUsed(placement.new)
                    }
                })
                .collect(),
        ))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<StoredOrder>, ServiceError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let query = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(id)
            .fetch_optional(self.store.pool());
        let row = self.store.timed("order", query).await?;
        Ok(self.complete(row.into_iter().collect()).await?.pop())
    }

    /// The order a customer placed with an idempotency key, if any.
    pub(crate) async fn by_idempotency_key(
        &self,
        customer: &str,
        key: &str,
    ) -> Result<Option<StoredOrder>, ServiceError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE customer = $1 AND idempotency_key = $2");
        let query = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(customer)
            .bind(key)
            .fetch_optional(self.store.pool());
        let row = self.store.timed("order_by_idempotency_key", query).await?;
        Ok(self.complete(row.into_iter().collect()).await?.pop())
    }

    /// One page of orders, newest first, and whether more follow.
    pub(crate) async fn list(&self, filter: &OrderFilter) -> Result<(Vec<pb::Order>, bool), ServiceError> {
        let (sql, arguments) = list_query(filter).build();
        let rows = sqlx::query_as_with::<_, OrderRow, _>(&sql, arguments).fetch_all(self.store.pool());
        let rows = self.store.timed("list_orders", rows).await?;
        let (rows, more) = dishpatch::page::split(rows, filter.page_size);
        let orders = self
            .complete(rows)
            .await?
            .into_iter()
            .map(|stored| stored.order)
            .collect();
        Ok((orders, more))
    }

    /// Adds lines and history to order rows (two queries for any number of
    /// orders), keeping the rows' order.
    async fn complete(&self, rows: Vec<OrderRow>) -> Result<Vec<StoredOrder>, ServiceError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let in_list = placeholders(self.store.backend(), 1, rows.len());
        let lines_sql = format!(
            "SELECT order_id, menu_item_id, name, quantity, unit_price_cents, line_total_cents
             FROM order_items WHERE order_id IN {in_list} ORDER BY order_id, line"
        );
        let history_sql =
            format!("SELECT order_id, status, at FROM order_status_history WHERE order_id IN {in_list}");
        let mut lines_query = sqlx::query_as::<_, LineRow>(&lines_sql);
        let mut history_query = sqlx::query_as::<_, HistoryRow>(&history_sql);
        for row in &rows {
            lines_query = lines_query.bind(&row.id);
            history_query = history_query.bind(&row.id);
        }
        let mut lines: HashMap<String, Vec<pb::OrderLine>> = HashMap::new();
        let lines_query = lines_query.fetch_all(self.store.pool());
        for line in self.store.timed("order_lines", lines_query).await? {
            lines.entry(line.order_id).or_default().push(pb::OrderLine {
                menu_item_id: line.menu_item_id,
                name: line.name,
                quantity: i32::try_from(line.quantity)
                    .map_err(|_| corrupt("quantity out of range".into()))?,
                unit_price_cents: line.unit_price_cents,
                line_total_cents: line.line_total_cents,
            });
        }
        let mut histories: HashMap<String, Vec<(i64, OrderStatus)>> = HashMap::new();
        let history_query = history_query.fetch_all(self.store.pool());
        for entry in self.store.timed("order_history", history_query).await? {
            let status = status_named(&entry.status)?;
            histories
                .entry(entry.order_id)
                .or_default()
                .push((entry.at, status));
        }

        rows.into_iter()
            .map(|row| {
                let status = status_named(&row.status)?;
                let mut history = histories.remove(&row.id).unwrap_or_default();
                history.sort_by_key(|&(at, status)| (at, status.rank()));
                let order = pb::Order {
                    items: lines.remove(&row.id).unwrap_or_default(),
                    status_history: history
                        .into_iter()
                        .map(|(at, status)| pb::StatusChange {
                            status: status.to_wire().into(),
                            at: Some(time::to_timestamp(at)),
                        })
                        .collect(),
                    id: row.id,
                    restaurant_id: row.restaurant_id,
                    customer: row.customer,
                    total_cents: row.total_cents,
                    status: status.to_wire().into(),
                    delivery_address: row.delivery_address,
                    note: row.note,
                    created_at: Some(time::to_timestamp(row.created_at)),
                    updated_at: Some(time::to_timestamp(row.updated_at)),
                };
                Ok(StoredOrder {
                    order,
                    restaurant_name: row.restaurant_name,
                    status,
                })
            })
            .collect()
    }

    /// Moves `order` from the status it was read with to `next`, with its
    /// history entry and notifications, in one transaction, for the call
    /// whose context is `context` (its deadline, its trace). False when the
    /// order's status changed since it was read (another call moved it).
    pub(crate) async fn move_status(
        &self,
        order: &StoredOrder,
        next: OrderStatus,
        context: &CallContext,
    ) -> Result<bool, ServiceError> {
        let now = time::now_micros();
        let mut transaction = self.store.begin_write("move_status", context.deadline()).await?;
        let moved =
            sqlx::query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
                .bind(next.name())
                .bind(now)
                .bind(&order.order.id)
                .bind(order.status.name())
                .execute(&mut **transaction)
                .await?
                .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        let events = notifications(
            &order.order.id,
            &order.order.restaurant_id,
            &order.restaurant_name,
            &order.order.customer,
            order.order.total_cents,
            next,
            context.trace().map(TraceContext::traceparent).as_deref(),
        );
        record_statuses(
            &mut transaction,
            self.outbox(),
            &[(&order.order.id, next)],
            now,
            &events,
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Where this replica's writes queue notifications.
    fn outbox(&self) -> Outbox {
        Outbox {
            backend: self.store.backend(),
            relayer: self.relayer,
        }
    }

    /// The oldest `limit` notifications not yet delivered that are this
    /// replica's to relay: those its writes queued, and any that has waited
    /// longer than `takeover`, whose relayer has had its time and may have
    /// stopped. So two replicas do not both send, and
    /// delete, every notification; one left by a replica that stopped is
    /// still delivered (perhaps twice, which notify-svc takes as once).
    pub(crate) async fn pending_outbox(
        &self,
        limit: i64,
        takeover: Duration,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        let orphaned_before = time::now_micros().saturating_sub_unsigned(takeover.as_micros() as u64);
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT id, event_id, order_id, recipient, kind, message, traceparent, created_at
             FROM outbox WHERE relayer = $1 OR created_at < $2 ORDER BY id LIMIT $3",
        )
        .bind(self.relayer)
        .bind(orphaned_before)
        .bind(limit)
        .fetch_all(self.store.pool());
        let rows = self.store.timed("pending_outbox", rows).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let event = OutboxEvent {
                    event_id: row.event_id,
                    order_id: row.order_id,
                    recipient: row.recipient,
                    kind: row.kind,
                    message: row.message,
                    traceparent: row.traceparent,
                };
                Pending {
                    outbox_id: row.id,
                    queued_at: row.created_at,
                    event,
                }
            })
            .collect())
    }

    /// How many notifications wait in the outbox.
    pub(crate) async fn outbox_depth(&self) -> Result<i64, sqlx::Error> {
        let count = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(self.store.pool());
        self.store.timed("outbox_depth", count).await
    }

    /// Forgets delivered notifications, in one statement.
    pub(crate) async fn delivered(&self, outbox_ids: &[i64]) -> Result<(), WriteError> {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN {}",
            placeholders(self.store.backend(), 1, outbox_ids.len())
        );
        let mut delete = sqlx::query(&sql);
        for id in outbox_ids {
            delete = delete.bind(id);
        }
        let _turn = self.store.write_turn(None).await?;
        self.store
            .timed("delete_delivered_outbox", delete.execute(self.store.pool()))
            .await?;
        Ok(())
    }
}

/// Where a write queues its notifications: the store's kind, and the
/// replica that will relay them.
#[derive(Debug, Clone, Copy)]
struct Outbox {
    backend: Backend,
    relayer: i64,
}

/// Writes the lines, first history entries and notifications of orders
/// just inserted under their ids.
async fn insert_details(
    transaction: &mut Transaction<'_, Any>,
    outbox: Outbox,
    placed: &[(&str, &Placement)],
    now: i64,
) -> Result<(), sqlx::Error> {
    let lines = placed
        .iter()
        .map(|(_, placement)| placement.priced.items.len())
        .sum();
    let sql = format!(
        "INSERT INTO order_items (order_id, line, menu_item_id, name, quantity, unit_price_cents, line_total_cents)
         VALUES {}",
        placeholders(outbox.backend, lines, 7)
    );
    let mut insert_lines = sqlx::query(&sql);
    for (id, placement) in placed {
        for (line, item) in placement.priced.items.iter().enumerate() {
            insert_lines = insert_lines
                .bind(*id)
                .bind(line as i64)
                .bind(&item.menu_item_id)
                .bind(&item.name)
                .bind(i64::from(item.quantity))
                .bind(item.unit_price_cents)
                .bind(item.line_total_cents);
        }
    }
    insert_lines.execute(&mut **transaction).await?;

    let changes: Vec<(&str, OrderStatus)> = placed.iter().map(|(id, _)| (*id, OrderStatus::Placed)).collect();
    let events: Vec<OutboxEvent> = placed
        .iter()
        .flat_map(|(id, placement)| {
            let Placement {
                new,
                priced,
                traceparent,
            } = placement;
            notifications(
                id,
                &new.restaurant_id,
                &priced.restaurant_name,
                &new.customer,
                priced.total_cents,
                OrderStatus::Placed,
                traceparent.as_deref(),
            )
        })
        .collect();
    record_statuses(transaction, outbox, &changes, now, &events).await
}

/// Writes the history entries of orders entering a status, and the
/// notifications of those changes.
async fn record_statuses(
    transaction: &mut Transaction<'_, Any>,
    outbox: Outbox,
    changes: &[(&str, OrderStatus)],
    at: i64,
    events: &[OutboxEvent],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO order_status_history (order_id, status, at) VALUES {}",
        placeholders(outbox.backend, changes.len(), 3)
    );
    let mut insert = sqlx::query(&sql);
    for (order_id, status) in changes {
        insert = insert.bind(*order_id).bind(status.name()).bind(at);
    }
    insert.execute(&mut **transaction).await?;

    let sql = format!(
        "INSERT INTO outbox (event_id, order_id, recipient, kind, message, traceparent, created_at, relayer)
         VALUES {}",
        placeholders(outbox.backend, events.len(), 8)
    );
    let mut insert = sqlx::query(&sql);
    for event in events {
        insert = insert
            .bind(&event.event_id)
            .bind(&event.order_id)
            .bind(&event.recipient)
            .bind(&event.kind)
            .bind(&event.message)
            .bind(&event.traceparent)
            .bind(at)
            .bind(outbox.relayer);
    }
    insert.execute(&mut **transaction).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{
        Backend,
        stores::{assert_served_by_index, plan_store},
    };

    /// Whatever a list filters on, an index finds it: none reads the table
    /// (at 100k orders a scan took 0.2-0.5 s per request).
    async fn every_list_filter_is_served_by_an_index(backend: Backend) {
        let (_files, store) = plan_store(
            backend,
            &crate::MIGRATIONS,
            "INSERT INTO orders (id, restaurant_id, restaurant_name, customer, status, total_cents,
                                   created_at, updated_at)
               SELECT 'ord_' || lpad(to_hex(g), 32, '0'), 'rst_' || lpad(to_hex(g % 100), 32, '0'), 'R',
                      'customer-' || (g % 5000),
                      CASE WHEN g % 50 = 0 THEN 'placed' WHEN g % 10 = 1 THEN 'cancelled'
                           ELSE 'delivered' END,
                      1000, g, g
               FROM generate_series(1, 50000) AS g",
        )
        .await;
        let some = |value: &str| Some(value.to_owned());
        let (restaurant, order) = (
            "rst_00000000000000000000000000000007",
            "ord_00000000000000000000000000002000",
        );
        let filters = [
            (Some(OrderStatus::Placed), None, None, None),
            (Some(OrderStatus::Delivered), None, None, some(order)),
            (None, some(restaurant), None, None),
            (None, some(restaurant), None, some(order)),
            (None, None, some("customer-7"), None),
            (None, None, some("customer-7"), some(order)),
            (Some(OrderStatus::Placed), some(restaurant), None, None),
            (Some(OrderStatus::Delivered), None, some("customer-7"), None),
            (None, some(restaurant), some("customer-7"), None),
            (
                Some(OrderStatus::Ready),
                some(restaurant),
                some("customer-7"),
                some(order),
            ),
        ];
        for (status, restaurant_id, customer, before) in filters {
            let filter = OrderFilter {
                status,
                restaurant_id,
                customer,
                page_size: 20,
                before,
            };
            assert_served_by_index(&store, list_query(&filter), &filter).await;
        }
    }

    /// Two replicas on one store each relay the notifications their own
    /// writes queued, and the other's only once those have waited past the
    /// takeover time: before, both relays sent (and deleted) every row.
    async fn each_replica_relays_its_own_notifications_until_takeover(backend: Backend) {
        let files = test_support::TestStore::new(backend).await;
        let store = Store::open(files.url(), &crate::MIGRATIONS).await.unwrap();
        let (first, second) = (OrderStore::new(store.clone()), OrderStore::new(store.clone()));
        let placement = |customer: &str| Placement {
            new: NewOrder {
                restaurant_id: "rst_00000000000000000000000000000001".into(),
                customer: customer.into(),
                lines: Vec::new(),
                delivery_address: None,
                note: None,
                idempotency_key: None,
            },
            priced: PriceItemsResponse {
                restaurant_name: "R".into(),
                items: vec![dishpatch::proto::restaurant::v1::PricedItem {
                    quantity: 1,
                    unit_price_cents: 100,
                    line_total_cents: 100,
                    ..Default::default()
                }],
                total_cents: 100,
                ..Default::default()
            },
            traceparent: None,
        };
        let mut placed = Vec::new();
        for (replica, customer) in [(&first, "ada"), (&second, "bob")] {
            match replica.insert_all(vec![placement(customer)], None, || true).await {
                Ok(Batch::Committed(mut orders)) => match orders.pop() {
                    Some(Placed::Stored(stored)) => placed.push(stored.order.id),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        }
        // Whose notifications (each order has two: customer, restaurant).
        let orders_of = |pending: Vec<Pending>| -> Vec<String> {
            pending
                .into_iter()
                .map(|pending| pending.event.order_id)
                .collect()
        };
        for (replica, order) in [(&first, &placed[0]), (&second, &placed[1])] {
            let own = orders_of(
                replica
                    .pending_outbox(100, Duration::from_secs(60))
                    .await
                    .unwrap(),
            );
            assert_eq!(own, [order.clone(), order.clone()]);
        }
        // Rows queued before replicas named themselves (migration 0004)
        // are nobody's own: only a takeover sends them.
        sqlx::query("UPDATE outbox SET relayer = 0 WHERE order_id = $1")
            .bind(&placed[1])
            .execute(store.pool())
            .await
            .unwrap();
        let own = orders_of(second.pending_outbox(100, Duration::from_secs(60)).await.unwrap());
        assert!(own.is_empty(), "{own:?}");
        // Once they have waited past the takeover time, every row is either's.
        let all = orders_of(first.pending_outbox(100, Duration::ZERO).await.unwrap());
        assert_eq!(all.len(), 4, "{all:?}");
    }

    test_support::on_each_backend!(
        every_list_filter_is_served_by_an_index,
        each_replica_relays_its_own_notifications_until_takeover,
    );

    /// A SQLite connection plans with the statistics it read as it opened.
    /// A store opened on a file with rows and no statistics gathers them,
    /// and every one of its connections then finds a customer's orders at
    /// a restaurant by the customer (10 rows here), not by the restaurant
    /// (2,000): planned blind, it took the restaurant's index, 25 ms at a
    /// million orders.
    #[tokio::test]
    async fn every_sqlite_connection_plans_with_the_statistics() {
        let files = test_support::TestStore::new(Backend::Sqlite).await;
        let filling = Store::open(files.url(), &crate::MIGRATIONS).await.unwrap();
        for statement in [
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
             INSERT INTO orders (id, restaurant_id, restaurant_name, customer, status, total_cents,
                                 created_at, updated_at)
             SELECT printf('ord_%032x', n), printf('rst_%032x', n % 10), 'R', 'customer-' || (n % 2000),
                    'delivered', 1000, n, n
             FROM g",
            "DELETE FROM sqlite_stat1 WHERE tbl = 'orders'",
        ] {
            sqlx::query(statement).execute(filling.pool()).await.unwrap();
        }
        filling.pool().close().await;

        let store = Store::open(files.url(), &crate::MIGRATIONS).await.unwrap();
        let filter = OrderFilter {
            status: None,
            restaurant_id: Some("rst_00000000000000000000000000000007".to_owned()),
            customer: Some("customer-7".to_owned()),
            page_size: 20,
            before: None,
        };
        // Every connection the pool holds at once, old and new.
        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(store.pool().acquire().await.unwrap());
        }
        for connection in &mut connections {
            let (sql, arguments) = list_query(&filter).build();
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as_with(&format!("EXPLAIN QUERY PLAN {sql}"), arguments)
                    .fetch_all(&mut **connection)
                    .await
                    .unwrap();
            assert!(
                plan.iter().any(|(_, _, _, step)| step.contains("(customer=?")),
                "{plan:#?}"
            );
        }
    }
}
