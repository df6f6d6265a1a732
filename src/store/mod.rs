//! A service's store: SQLite by default, PostgreSQL when given a
//! `postgres://` URL. Queries go through sqlx's Any driver so one set of
//! queries serves both; they use `$1`-style parameters, which both accept.
//!
//! SQLite runs in WAL mode, so several replicas (OS processes) of one
//! service can share one file: readers never block, and writers take turns
//! ([`WriteTurn`]), with a busy timeout behind that for any other writer.
//!
//! A write made for a caller takes the caller's deadline: it waits for its
//! turn no longer than that, and it does not commit once that has passed
//! ([`WriteError::DeadlinePassed`]), so nothing is stored after its caller
//! was told it failed.

mod in_place;
mod metrics;
mod select;
mod write_turn;

pub use select::Select;
pub use write_turn::WriteTurn;

use in_place::InPlaceReader;
use sqlx::{Any, AnyPool, Executor, Transaction, any::AnyPoolOptions, migrate::Migrator};
use std::{fmt::Write as _, path::PathBuf, sync::Arc, time::Duration};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use write_turn::SqliteWriters;

/// How long a SQLite writer waits for its turn, and then for SQLite's lock,
/// before giving up (the caller sees the store as busy: UNAVAILABLE).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per process to a SQLite file. Each is a thread of sqlx's
/// that runs the statements, and SQLite writes one at a time anyway: a few
/// are enough, and more only add threads to wake.
const SQLITE_CONNECTIONS: u32 = 4;
/// Connections per process to PostgreSQL.
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long a PostgreSQL session of ours may sit idle inside a transaction
/// before the server ends it, rolling the transaction back. Our
/// transactions send their statements back to back, so one idle this long
/// belongs to a replica that is frozen or cut off (its host lost, say).
/// Without a limit its locks stay held until the server's TCP keepalive
/// gives up on the session, by default after two hours: a row it inserted
/// holds up every writer of the same key (an order's retry on another
/// replica, with its idempotency key), and the group commit that writer is
/// in holds up every order behind it.
const POSTGRES_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(2);

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// A service's embedded migrations, one set per backend (their DDL differs:
/// auto-increment, types).
#[derive(Debug)]
pub struct Migrations {
    /// Applied to SQLite stores.
    pub sqlite: &'static Migrator,
    /// Applied to PostgreSQL stores.
    pub postgres: &'static Migrator,
}

/// Defines `pub static MIGRATIONS: Migrations`: the migrations of the
/// service crate that invokes it, embedded from its `migrations/sqlite`
/// and `migrations/postgres` folders.
#[macro_export]
macro_rules! migrations {
    () => {
        /// This service's migrations, for both backends.
        pub static MIGRATIONS: $crate::store::Migrations = $crate::store::Migrations {
            sqlite: &::sqlx::migrate!("./migrations/sqlite"),
            postgres: &::sqlx::migrate!("./migrations/postgres"),
        };
    };
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("database URL {0:?} must start with sqlite: or postgres:")]
    UnknownScheme(String),
    /// The SQLite file's folder or lock file could not be made or locked.
    #[error("preparing the SQLite file {path}: {source}")]
    File {
        /// The file or folder concerned.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("connecting to the store: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrating the store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Why a write was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The caller's deadline passed before the write could commit: nothing
    /// was written.
    #[error("the caller's deadline passed before the write; nothing was written")]
    DeadlinePassed,
    /// The store failed before the commit: nothing was written.
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// The commit itself failed (a lost connection, say): the write may or
    /// may not have been made.
    #[error("committing: {0}")]
    CommitFailed(sqlx::Error),
}

/// An open, migrated store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// On SQLite, the turns of the file's writers.
    writers: Option<Arc<SqliteWriters>>,
    /// On SQLite, the connection for [`Store::read_integer`].
    in_place: Option<Arc<InPlaceReader>>,
    metrics: metrics::StoreMetrics,
    /// On SQLite, the task keeping the planner's statistics, stopped when
    /// the last copy of the store is dropped.
    _statistics: Option<Arc<AbortOnDropHandle<()>>>,
}

/// A write transaction, holding the writer's turn (SQLite).
/// Dereferences to the transaction; commit it, or drop it to roll back.
#[derive(Debug)]
pub struct WriteTransaction {
    transaction: Transaction<'static, Any>,
    deadline: Option<Instant>,
    /// What it does, for the store's metrics, and when it began.
    what: &'static str,
    began: Instant,
    metrics: metrics::StoreMetrics,
    _turn: WriteTurn,
}

impl WriteTransaction {
    /// Commits, then gives up the turn; rolls back instead if the caller's
    /// deadline has passed.
    pub async fn commit(self) -> Result<(), WriteError> {
        if self.deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            return Err(WriteError::DeadlinePassed);
        }
        let committed = self.transaction.commit().await;
        // Counted whether it committed or not: a failing write is one to see.
        self.metrics.took(self.what, self.began.elapsed());
        committed.map_err(WriteError::CommitFailed)?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.transaction
    }
}

/// The default store of a service: `data/<service>.db` under the working
/// directory.
pub fn default_url(service: &str) -> String {
    format!("sqlite://data/{service}.db")
}

impl Store {
    /// Opens the store at `url` (creating a SQLite file and its folder if
    /// need be) and applies the migrations not yet applied. Safe to call from
    /// several replicas at once: migrations are serialized (a lock file for
    /// SQLite, an advisory lock for PostgreSQL).
    pub async fn open(url: &str, migrations: &Migrations) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(OpenError::UnknownScheme(url.to_owned()));
        };

        let store = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                let writers =
                    SqliteWriters::open(&path).map_err(|(path, source)| OpenError::File { path, source })?;
                // Migrating is writing: replicas starting together take
                // turns, and the later ones find nothing left to apply.
                let turn = writers.turn().await.map_err(|source| OpenError::File {
                    path: path.clone(),
                    source,
                })?;
                let url = sqlite_url_creating(url);
                let preparing = Self::connect(&url, backend).await?;
                // WAL is a property of the file, set once; it lets readers run
                // beside a writer, across processes.
                preparing.execute("PRAGMA journal_mode = WAL").await?;
                migrations.sqlite.run(&preparing).await?;
                preparing.execute(OPTIMIZE).await?;
                // A connection plans with the statistics it read when it
                // opened, not with those gathered since by another: one
                // that opened before them plans as if it knew nothing (a
                // customer's orders at a restaurant found by walking the
                // restaurant's 10,000: 25 ms where 0.3 would do). So the
                // store's connections open after them.
                preparing.close().await;
                let pool = Self::connect(&url, backend).await?;
                drop(turn);
                let writers = Arc::new(writers);
                let statistics = tokio::spawn(keep_statistics(pool.clone(), writers.clone()));
                Self {
                    pool,
                    backend,
                    writers: Some(writers),
                    in_place: Some(Arc::new(InPlaceReader::new(path))),
                    metrics: metrics::StoreMetrics::default(),
                    _statistics: Some(Arc::new(AbortOnDropHandle::new(statistics))),
                }
            }
            Backend::Postgres => {
                let pool = Self::connect(url, backend).await?;
                migrations.postgres.run(&pool).await?;
                Self {
                    pool,
                    backend,
                    writers: None,
                    in_place: None,
                    metrics: metrics::StoreMetrics::default(),
                    _statistics: None,
                }
            }
        };
        Ok(store)
    }

    async fn connect(url: &str, backend: Backend) -> Result<AnyPool, sqlx::Error> {
        let connections = match backend {
            Backend::Sqlite => SQLITE_CONNECTIONS,
            Backend::Postgres => POSTGRES_CONNECTIONS,
        };
        AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    let settings = match backend {
                        // temp_store: a statement writing many rows (a
                        // batch of orders) keeps each page it changes in a
                        // statement journal, to undo the statement alone
                        // should it fail; past 64 KiB that journal went to a
                        // temporary file, a write syscall a page (~5% of
                        // order-svc's CPU under `order`). It stays in memory.
                        Backend::Sqlite => format!(
                            "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                             PRAGMA temp_store = MEMORY;",
                            SQLITE_BUSY_TIMEOUT.as_millis()
                        ),
                        Backend::Postgres => format!(
                            "SET idle_in_transaction_session_timeout = {}",
                            POSTGRES_IDLE_IN_TRANSACTION.as_millis()
                        ),
                    };
                    connection.execute(settings.as_str()).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
    }

    /// The turn to write, for a single write statement made for a caller
    /// whose deadline is `deadline`: held until dropped on SQLite, nothing
    /// to wait for on PostgreSQL. It is not waited for past the deadline,
    /// nor given once that has passed.
    pub async fn write_turn(&self, deadline: Option<Instant>) -> Result<WriteTurn, WriteError> {
        let passed = || deadline.is_some_and(|deadline| deadline <= Instant::now());
        if passed() {
            return Err(WriteError::DeadlinePassed);
        }
        let turn = match &self.writers {
            Some(writers) => {
                let started = Instant::now();
                let patience = deadline.map_or(SQLITE_BUSY_TIMEOUT, |deadline| {
                    SQLITE_BUSY_TIMEOUT.min(deadline.saturating_duration_since(started))
                });
                let turn = writers.turn_within(patience).await;
                self.metrics.waited_for_turn(started.elapsed());
                turn
            }
            None => Ok(WriteTurn::none()),
        };
        match turn {
            Ok(turn) if !passed() => Ok(turn),
            Ok(_) => Err(WriteError::DeadlinePassed),
            Err(_) if passed() => Err(WriteError::DeadlinePassed),
            Err(error) => Err(sqlx::Error::Io(error).into()),
        }
    }

    /// Begins a transaction that writes for a caller whose deadline is
    /// `deadline` (see [`Store::write_turn`] and [`WriteTransaction::commit`]);
    /// `what` names it in the store's metrics, which count the time from its
    /// beginning to its commit.
    /// On SQLite it waits for the turn and begins IMMEDIATE, taking the
    /// write lock at once: a transaction that read first and wrote later
    /// could fail instead of waiting, should a writer outside the turns
    /// write in between.
    pub async fn begin_write(
        &self,
        what: &'static str,
        deadline: Option<Instant>,
    ) -> Result<WriteTransaction, WriteError> {
        let turn = self.write_turn(deadline).await?;
        let began = Instant::now();
        let transaction = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTransaction {
            transaction,
            deadline,
            what,
            began,
            metrics: self.metrics.clone(),
            _turn: turn,
        })
    }

    /// Runs `sql`, a query for one integer made on every request of some
    /// kind (a change counter, say). On SQLite it runs in place, on the
    /// calling thread, on a read-only connection of this process's: a few
    /// microseconds where a query through the pool crosses threads twice.
    /// On PostgreSQL it is a query through the pool.
    pub async fn read_integer(&self, sql: &'static str) -> Result<i64, sqlx::Error> {
        match &self.in_place {
            Some(reader) => reader.integer(sql),
            None => sqlx::query_scalar(sql).fetch_one(&self.pool).await,
        }
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `work` (queries, or a write's transaction after its turn came),
    /// counting its time in the store's metrics as `query`.
    pub async fn timed<T>(&self, query: &'static str, work: impl std::future::Future<Output = T>) -> T {
        self.metrics.time(query, work).await
    }

    /// Registers the store's metrics in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for checked-out connections to return, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite's planner chooses among a table's indexes by their statistics;
/// without any (a new store) it guesses, and at a million orders it chose
/// an index that read 10,000 rows for 2 (30 ms instead of 0.3). This
/// gathers them for every table that has none or changed much since, each
/// from a bounded sample (0x10: `analysis_limit`; 0.3 s at a million rows,
/// 3 s without), as SQLite advises: at open, then now and then.
const OPTIMIZE: &str = "PRAGMA optimize=0x10012";
/// How often a SQLite store gathers its statistics again.
const OPTIMIZE_EVERY: Duration = Duration::from_secs(3600);

/// Gathers SQLite's statistics again every [`OPTIMIZE_EVERY`], in a write
/// turn (`ANALYZE` writes them), until the pool is closed or the store
/// dropped (which aborts this task).
async fn keep_statistics(pool: AnyPool, writers: Arc<SqliteWriters>) {
    loop {
        tokio::select! {
            () = pool.close_event() => return,
            () = tokio::time::sleep(OPTIMIZE_EVERY) => {}
        }
        let optimized = match writers.turn_within(SQLITE_BUSY_TIMEOUT).await {
            Ok(_turn) => pool
                .execute(OPTIMIZE)
                .await
                .map(drop)
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = optimized {
            tracing::warn!(%error, "gathering SQLite's statistics failed; trying again later");
        }
    }
}

/// Placeholders for `rows` rows of `columns` values, bound in order, in a
/// statement that has no others: `($1, $2, …), (…)` on PostgreSQL,
/// `(?, ?, …), (…)` on SQLite.
///
/// SQLite keeps numbered placeholders' names in a list that sqlx searches
/// once per value it binds (`sqlite3_bind_parameter_name`), so a batch's
/// statement of hundreds of values took time quadratic in their number,
/// inside the write turn: 8.5% of order-svc's CPU under order load. An
/// anonymous `?` has no name.
pub fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 1..=columns {
            if column > 1 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    write!(sql, "${}", row * columns + column).expect("writing to a String does not fail");
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// The file a `sqlite:` URL names (`sqlite://data/x.db`, `sqlite:data/x.db`
/// and `sqlite:///abs/x.db` all work; the query string is not part of it).
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// The URL with `mode=rwc` added unless it sets a mode, so a missing file is
/// created.
fn sqlite_url_creating(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Backend::Postgres, 1, 2), "($1, $2)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://data/x.db"), PathBuf::from("data/x.db"));
        assert_eq!(
            sqlite_path("sqlite:data/x.db?mode=ro"),
            PathBuf::from("data/x.db")
        );
        assert_eq!(sqlite_path("sqlite:///tmp/x.db"), PathBuf::from("/tmp/x.db"));
        assert_eq!(sqlite_url_creating("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(
            sqlite_url_creating("sqlite://x.db?cache=shared"),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
    }
}
