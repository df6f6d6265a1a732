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
