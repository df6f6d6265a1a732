//! A store per test: a SQLite file in a temporary folder, or a fresh
//! database on the private PostgreSQL cluster.

use std::path::PathBuf;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A database on the test process's PostgreSQL cluster.
    Postgres,
}

/// An isolated store, removed when dropped (SQLite) or with the cluster
/// (PostgreSQL).
#[derive(Debug)]
pub struct TestStore {
    url: String,
    _folder: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A new, empty store on `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("creating a temporary folder");
                let path: PathBuf = folder.path().join("store.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    _folder: Some(folder),
                }
            }
            Backend::Postgres => Self {
                url: crate::postgres::cluster().await.create_database().await,
                _folder: None,
            },
        }
    }

    /// The store's URL, for `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Asserts that SQLite answers `select` on `store` from indexes, every step
/// of its plan a `SEARCH` (such as `SEARCH orders USING INDEX
/// orders_by_customer (customer=?)`) and none a `SCAN` of a table; `what`
/// names the query in the failure.
pub async fn assert_served_by_index(
    store: &dishpatch::store::Store,
    select: dishpatch::store::Select<'_>,
    what: &dyn std::fmt::Debug,
) {
    let (sql, arguments) = select.build();
    let steps: Vec<(i64, i64, i64, String)> =
        sqlx::query_as_with(&format!("EXPLAIN QUERY PLAN {sql}"), arguments)
            .fetch_all(store.pool())
            .await
            .expect("SQLite explains the query");
    let plan: Vec<String> = steps.into_iter().map(|(_, _, _, detail)| detail).collect();
    assert!(
        plan.iter().all(|step| step.starts_with("SEARCH")),
        "{what:?}: {plan:?}"
    );
}
