//! notify-svc's queries. Every query runs on SQLite and PostgreSQL alike.

use crate::domain::{NewNotification, NotificationFilter, Page};
use dishpatch::{
    ids::NOTIFICATION,
    proto::notify::v1 as pb,
    store::{Backend, Select, Store, WriteError, WriteTransaction, placeholders},
    time,
};
use sqlx::{Any, any::AnyArguments, query::QueryAs};
use tokio::time::Instant;

#[derive(Debug, sqlx::FromRow)]
struct NotificationRow {
    seq: i64,
    id: String,
    event_id: String,
    order_id: String,
    recipient: String,
    kind: String,
    message: String,
    created_at: i64,
    trace_id: String,
}

impl From<NotificationRow> for pb::Notification {
    fn from(row: NotificationRow) -> Self {
        Self {
            id: row.id,
            seq: u64::try_from(row.seq).expect("sequence numbers are positive"),
            event_id: row.event_id,
            order_id: row.order_id,
            recipient: row.recipient,
            kind: row.kind,
            message: row.message,
            created_at: Some(time::to_timestamp(row.created_at)),
            trace_id: row.trace_id,
        }
    }
}

const COLUMNS: &str = "seq, id, event_id, order_id, recipient, kind, message, created_at, trace_id";

/// An arbitrary constant naming notify-svc's PostgreSQL advisory lock.
const SEQUENCE_LOCK: i64 = 0x6e6f_7469_6679;

/// `INSERT` of `rows` notifications that skips known event ids and returns
/// the inserted ones.
fn insert_sql(backend: Backend, rows: usize) -> String {
    format!(
        "INSERT INTO notifications (id, event_id, order_id, recipient, kind, message, created_at, trace_id)
         VALUES {}
         ON CONFLICT (event_id) DO NOTHING
         RETURNING {COLUMNS}",
        placeholders(backend, rows, 8)
    )
}

/// [`insert_sql`] returning the notifications inserted, bound to `batch`
/// recorded at `now`.
fn insert<'q>(
    sql: &'q str,
    batch: &'q [NewNotification],
    now: i64,
) -> QueryAs<'q, Any, NotificationRow, AnyArguments<'q>> {
    let mut query = sqlx::query_as(sql);
    for new in batch {
        query = query
            .bind(NOTIFICATION.generate())
            .bind(&new.event_id)
            .bind(&new.order_id)
            .bind(&new.recipient)
            .bind(&new.kind)
            .bind(&new.message)
            .bind(now)
            .bind(&new.trace_id);
    }
    query
}

/// The query of [`NotificationStore::list`].
fn list_query(filter: &NotificationFilter, page: Page) -> Select<'_> {
    Select::new(format!("SELECT {COLUMNS} FROM notifications"))
        .and("seq > $", Some(i64::try_from(page.after_seq).unwrap_or(i64::MAX)))
        .and("order_id = $", filter.order_id.as_deref())
        .and("recipient = $", filter.recipient.as_deref())
        .and("created_at >= $", filter.since)
        .then("ORDER BY seq LIMIT $", page.size)
}

/// The query of where a `since` filter starts in the log: the first
/// notification recorded at or after `since`.
fn since_query(since: i64) -> Select<'static> {
    Select::new("SELECT seq FROM notifications")
        .and("created_at >= $", Some(since))
        .then("ORDER BY created_at, seq LIMIT $", 1_i64)
}

/// The notification log in a [`Store`].
#[derive(Debug, Clone)]
pub(crate) struct NotificationStore {
    store: Store,
}

impl NotificationStore {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Begins a write transaction in which seq numbers commit in the order
    /// they are handed out.
    async fn begin_sequenced(
        &self,
        what: &'static str,
        deadline: Option<Instant>,
    ) -> Result<WriteTransaction, WriteError> {
        let mut transaction = self.store.begin_write(what, deadline).await?;
        if self.store.backend() == Backend::Postgres {
            // PostgreSQL hands out identity values before commit, so without
            // this a subscriber could see seq 11 commit before seq 10 and
            // skip 10. SQLite has one writer at a time already.
            sqlx::query("SELECT count(*) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(SEQUENCE_LOCK)
                .execute(&mut **transaction)
                .await?;
        }
        Ok(transaction)
    }

    /// When notifications written in `transaction` are recorded: now, or
    /// the last one's time if this clock reads earlier (another replica's,
    /// or one stepped back), so that times never decrease along the log
    /// and a `since` filter finds where it starts by one seek.
    async fn record_time(transaction: &mut WriteTransaction) -> Result<i64, sqlx::Error> {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(created_at) FROM notifications")
            .fetch_one(&mut ***transaction)
            .await?;
        Ok(time::now_micros().max(last.unwrap_or(0)))
    }

    /// Records a notification unless its event id is known; returns the
    /// notification with that event id and whether it was already there.
    pub(crate) async fn record(
        &self,
        new: &NewNotification,
        deadline: Option<Instant>,
    ) -> Result<(pb::Notification, bool), WriteError> {
        let mut transaction = self.begin_sequenced("record_notification", deadline).await?;
        let now = Self::record_time(&mut transaction).await?;
        let sql = insert_sql(self.store.backend(), 1);
        let inserted = insert(&sql, std::slice::from_ref(new), now)
            .fetch_optional(&mut **transaction)
            .await?;
        let recorded = match inserted {
            Some(row) => (row.into(), false),
            None => {
                let sql = format!("SELECT {COLUMNS} FROM notifications WHERE event_id = $1");
                let row = sqlx::query_as::<_, NotificationRow>(&sql)
                    .bind(&new.event_id)
                    .fetch_one(&mut **transaction)
                    .await?;
                (row.into(), true)
            }
        };
        transaction.commit().await?;
        Ok(recorded)
    }

    /// Records the notifications whose event ids are not known yet, in one
    /// statement, seq numbers in the order given; returns how many were new.
    pub(crate) async fn record_all(
        &self,
        batch: &[NewNotification],
        deadline: Option<Instant>,
    ) -> Result<usize, WriteError> {
        let mut transaction = self.begin_sequenced("record_notifications", deadline).await?;
        let now = Self::record_time(&mut transaction).await?;
        let sql = insert_sql(self.store.backend(), batch.len());
        let inserted = insert(&sql, batch, now).fetch_all(&mut **transaction).await?;
        transaction.commit().await?;
        Ok(inserted.len())
    }

    /// Up to `page.size` notifications after `page.after_seq` that pass
    /// `filter`, in sequence order.
    pub(crate) async fn list(
        &self,
        filter: &NotificationFilter,
        page: Page,
    ) -> Result<Vec<pb::Notification>, sqlx::Error> {
        let mut page = page;
        if let Some(since) = filter.since {
            // Times never decrease along the log (`record_time`), so what
            // `since` asks for is the log from its first notification on:
            // found by one seek, and read from there by seq (a seq bound
            // and a time bound together, SQLite would use only the first).
            let (sql, arguments) = since_query(since).build();
            let first =
                sqlx::query_scalar_with::<_, i64, _>(&sql, arguments).fetch_optional(self.store.pool());
            let Some(first) = self.store.timed("find_notifications_since", first).await? else {
                return Ok(Vec::new());
            };
            page.after_seq = page.after_seq.max(u64::try_from(first - 1).unwrap_or(0));
        }
        let (sql, arguments) = list_query(filter, page).build();
        let rows = sqlx::query_as_with::<_, NotificationRow, _>(&sql, arguments).fetch_all(self.store.pool());
        let rows = self.store.timed("list_notifications", rows).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The highest sequence number recorded, 0 for an empty log.
    pub(crate) async fn last_seq(&self) -> Result<u64, sqlx::Error> {
        let last = sqlx::query_scalar("SELECT max(seq) FROM notifications").fetch_one(self.store.pool());
        let last: Option<i64> = self.store.timed("last_notification_seq", last).await?;
        Ok(last.map_or(0, |seq| u64::try_from(seq).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{
        Backend,
        stores::{assert_served_by_index, plan_store},
    };

    /// Whatever a list or a replay filters on, an index finds it: none
    /// reads the log from its start.
    async fn every_list_filter_is_served_by_an_index(backend: Backend) {
        let (_files, store) = plan_store(
            backend,
            &crate::MIGRATIONS,
            "INSERT INTO notifications (id, event_id, order_id, recipient, kind, message, created_at)
               SELECT 'ntf_' || g, 'event-' || g, 'ord_' || lpad(to_hex(g % 20000), 32, '0'),
                      'customer-' || (g % 3000), 'order.placed', 'placed', g
               FROM generate_series(1, 60000) AS g",
        )
        .await;
        let some = |value: &str| Some(value.to_owned());
        let order = "ord_00000000000000000000000000000042";
        let filters = [
            (None, None, None),
            (some(order), None, None),
            (None, some("customer-7"), None),
            (None, None, Some(59_000)),
            (None, some("customer-7"), Some(59_000)),
            (some(order), some("customer-7"), Some(1)),
        ];
        for (order_id, recipient, since) in filters {
            let filter = NotificationFilter {
                order_id,
                recipient,
                since,
            };
            let page = Page {
                after_seq: 7,
                size: 50,
            };
            assert_served_by_index(&store, list_query(&filter, page), &filter).await;
        }
        assert_served_by_index(&store, since_query(59_000), &"since").await;
    }

    test_support::on_each_backend!(every_list_filter_is_served_by_an_index);
}
