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

/// Asserts that `store` answers `select` from indexes: on SQLite its plan
/// (`EXPLAIN QUERY PLAN`) finds rows by `SEARCH` (such as `SEARCH orders
/// USING INDEX orders_by_customer (customer=?)`), never by a `SCAN` of a
/// table or an index, nor sorts them in a temporary B-tree; on PostgreSQL
/// (`EXPLAIN`, on a table with rows enough and analyzed, so that a scan
/// would be chosen if it were cheaper) it searches an index by a condition
/// and never scans the table (it may sort the few rows an index found). `what` names the
/// query in the failure.
pub async fn assert_served_by_index(
    store: &dishpatch::store::Store,
    select: dishpatch::store::Select<'_>,
    what: &dyn std::fmt::Debug,
) {
    let (sql, arguments) = select.build();
    let (plan, uses_index, reads_all) = match store.backend() {
        dishpatch::store::Backend::Sqlite => {
            let steps: Vec<(i64, i64, i64, String)> =
                sqlx::query_as_with(&format!("EXPLAIN QUERY PLAN {sql}"), arguments)
                    .fetch_all(store.pool())
                    .await
                    .expect("SQLite explains the query");
            let plan: Vec<String> = steps.into_iter().map(|(_, _, _, detail)| detail).collect();
            let searches = plan.iter().any(|step| step.starts_with("SEARCH"));
            let reads_all = plan
                .iter()
                .any(|step| step.starts_with("SCAN") || step.contains("TEMP B-TREE"));
            (plan, searches, reads_all)
        }
        dishpatch::store::Backend::Postgres => {
            let plan: Vec<String> = sqlx::query_scalar_with(&format!("EXPLAIN {sql}"), arguments)
                .fetch_all(store.pool())
                .await
                .expect("PostgreSQL explains the query");
            // An index walked whole, filtering, would be a scan too: one
            // must be searched by a condition.
            let uses_index = plan.iter().any(|node| node.contains("Index Cond"));
            let reads_all = plan.iter().any(|node| node.contains("Seq Scan"));
            (plan, uses_index, reads_all)
        }
    };
    assert!(uses_index && !reads_all, "{what:?}: {plan:#?}");
}

/// A store on `backend` migrated by `migrations`, for plan tests: on
/// PostgreSQL, where an empty table is scanned whatever its indexes, filled
/// by `fill` and analyzed. The [`TestStore`] keeps its files.
pub async fn plan_store(
    backend: Backend,
    migrations: &dishpatch::store::Migrations,
    fill: &str,
) -> (TestStore, dishpatch::store::Store) {
    let test_store = TestStore::new(backend).await;
    let store = dishpatch::store::Store::open(test_store.url(), migrations)
        .await
        .expect("the store opens");
    if backend == Backend::Postgres {
        for statement in [fill, "ANALYZE"] {
            sqlx::query(statement)
                .execute(store.pool())
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"));
        }
    }
    (test_store, store)
}
