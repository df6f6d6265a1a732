//! order-svc's queries. Every query runs on SQLite and PostgreSQL alike.
//!
//! Writes go through [`Store::begin_write`]: on SQLite, one writer per
//! process at a time, each transaction taking the write lock at once.

use crate::domain::{NewOrder, OrderFilter, OrderStatus, OutboxEvent, notifications};
use dishpatch::{
    error::{ServiceError, is_unique_violation},
    ids::ORDER,
    proto::{order::v1 as pb, restaurant::v1::PriceItemsResponse},
    store::Store,
    time,
};
use sqlx::{Any, Transaction};
use std::collections::HashMap;

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

/// `($1, $2, …), (…)`: placeholders for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(what: String) -> ServiceError {
    ServiceError::Store(sqlx::Error::Protocol(what))
}

fn status_named(name: &str) -> Result<OrderStatus, ServiceError> {
    OrderStatus::from_name(name).ok_or_else(|| corrupt(format!("unknown order status {name:?} in the store")))
}

/// Orders and the outbox in a [`Store`].
#[derive(Debug, Clone)]
pub(crate) struct OrderStore {
    store: Store,
}

impl OrderStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores a priced order with its first history entry and its
    /// notifications, in one transaction. `None` when the customer already
    /// used the order's idempotency key.
    pub(crate) async fn insert(
        &self,
        new: &NewOrder,
        priced: &PriceItemsResponse,
    ) -> Result<Option<StoredOrder>, ServiceError> {
        let id = ORDER.generate();
        let now = time::now_micros();
        let mut transaction = self.store.begin_write().await?;

        let inserted = sqlx::query(
            "INSERT INTO orders (id, restaurant_id, restaurant_name, customer, status, total_cents,
                                 delivery_address, note, idempotency_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(&new.restaurant_id)
        .bind(&priced.restaurant_name)
        .bind(&new.customer)
        .bind(OrderStatus::Placed.name())
        .bind(priced.total_cents)
        .bind(&new.delivery_address)
        .bind(&new.note)
        .bind(&new.idempotency_key)
        .bind(now)
        .execute(&mut **transaction)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) && new.idempotency_key.is_some() => return Ok(None),
            other => other?,
        };

        let sql = format!(
            "INSERT INTO order_items (order_id, line, menu_item_id, name, quantity, unit_price_cents, line_total_cents)
             VALUES {}",
            placeholders(priced.items.len(), 7)
        );
        let mut insert_lines = sqlx::query(&sql);
        for (line, item) in priced.items.iter().enumerate() {
            insert_lines = insert_lines
                .bind(&id)
                .bind(line as i64)
                .bind(&item.menu_item_id)
                .bind(&item.name)
                .bind(i64::from(item.quantity))
                .bind(item.unit_price_cents)
                .bind(item.line_total_cents);
        }
        insert_lines.execute(&mut **transaction).await?;

        let events = notifications(
            &id,
            &new.restaurant_id,
            &priced.restaurant_name,
            &new.customer,
            priced.total_cents,
            OrderStatus::Placed,
        );
        record_status(&mut transaction, &id, OrderStatus::Placed, now, &events).await?;
        transaction.commit().await?;

        let order = pb::Order {
            id,
            restaurant_id: new.restaurant_id.clone(),
            customer: new.customer.clone(),
            items: priced
                .items
                .iter()
                .map(|item| pb::OrderLine {
                    menu_item_id: item.menu_item_id.clone(),
                    name: item.name.clone(),
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                    line_total_cents: item.line_total_cents,
                })
                .collect(),
            total_cents: priced.total_cents,
            status: OrderStatus::Placed.to_wire().into(),
            status_history: vec![pb::StatusChange {
                status: OrderStatus::Placed.to_wire().into(),
                at: Some(time::to_timestamp(now)),
            }],
            delivery_address: new.delivery_address.clone(),
            note: new.note.clone(),
            created_at: Some(time::to_timestamp(now)),
            updated_at: Some(time::to_timestamp(now)),
        };
        Ok(Some(StoredOrder {
            order,
            restaurant_name: priced.restaurant_name.clone(),
            status: OrderStatus::Placed,
        }))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<StoredOrder>, ServiceError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(self.complete(row.into_iter().collect()).await?.pop())
    }

    /// The order a customer placed with an idempotency key, if any.
    pub(crate) async fn by_idempotency_key(
        &self,
        customer: &str,
        key: &str,
    ) -> Result<Option<StoredOrder>, ServiceError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE customer = $1 AND idempotency_key = $2");
        let row = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(customer)
            .bind(key)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(self.complete(row.into_iter().collect()).await?.pop())
    }

    /// One page of orders, newest first, and whether more follow.
    pub(crate) async fn list(&self, filter: &OrderFilter) -> Result<(Vec<pb::Order>, bool), ServiceError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders
             WHERE ($1 IS NULL OR status = $1)
               AND ($2 IS NULL OR restaurant_id = $2)
               AND ($3 IS NULL OR customer = $3)
               AND ($4 IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        );
        let rows = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(filter.status.map(OrderStatus::name))
            .bind(&filter.restaurant_id)
            .bind(&filter.customer)
            .bind(&filter.before)
            .bind(filter.page_size + 1)
            .fetch_all(self.store.pool())
            .await?;
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
        let in_list = placeholders(1, rows.len());
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
        for line in lines_query.fetch_all(self.store.pool()).await? {
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
        for entry in history_query.fetch_all(self.store.pool()).await? {
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
    /// history entry and notifications, in one transaction. False when the
    /// order's status changed since it was read (another call moved it).
    pub(crate) async fn move_status(
        &self,
        order: &StoredOrder,
        next: OrderStatus,
    ) -> Result<bool, ServiceError> {
        let now = time::now_micros();
        let mut transaction = self.store.begin_write().await?;
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
        );
        record_status(&mut transaction, &order.order.id, next, now, &events).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// The oldest `limit` notifications not yet delivered, with their
    /// outbox ids.
    pub(crate) async fn pending_outbox(&self, limit: i64) -> Result<Vec<(i64, OutboxEvent)>, sqlx::Error> {
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT id, event_id, order_id, recipient, kind, message FROM outbox ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let event = OutboxEvent {
                    event_id: row.event_id,
                    order_id: row.order_id,
                    recipient: row.recipient,
                    kind: row.kind,
                    message: row.message,
                };
                (row.id, event)
            })
            .collect())
    }

    /// Forgets delivered notifications, in one statement.
    pub(crate) async fn delivered(&self, outbox_ids: &[i64]) -> Result<(), sqlx::Error> {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN {}",
            placeholders(1, outbox_ids.len())
        );
        let mut delete = sqlx::query(&sql);
        for id in outbox_ids {
            delete = delete.bind(id);
        }
        let _turn = self.store.write_turn().await;
        delete.execute(self.store.pool()).await?;
        Ok(())
    }
}

/// Writes a history entry and the notifications of entering `status`.
async fn record_status(
    transaction: &mut Transaction<'_, Any>,
    order_id: &str,
    status: OrderStatus,
    at: i64,
    events: &[OutboxEvent],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_status_history (order_id, status, at) VALUES ($1, $2, $3)")
        .bind(order_id)
        .bind(status.name())
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    let sql = format!(
        "INSERT INTO outbox (event_id, order_id, recipient, kind, message, created_at) VALUES {}",
        placeholders(events.len(), 6)
    );
    let mut insert = sqlx::query(&sql);
    for event in events {
        insert = insert
            .bind(&event.event_id)
            .bind(&event.order_id)
            .bind(&event.recipient)
            .bind(&event.kind)
            .bind(&event.message)
            .bind(at);
    }
    insert.execute(&mut **transaction).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn numbers_placeholders_row_by_row() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 2), "($1, $2)");
    }
}
