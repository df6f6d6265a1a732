//! Read-only connections to a SQLite store that the process owns and reads
//! in place, on the calling thread: one per thread, so that no thread waits
//! for another's read (and a rare busy wait holds up only its own).
//!
//! Every sqlx query crosses to the thread of one of sqlx's connections and
//! back, which costs tens of microseconds of wake-ups; a point read on an
//! indexed row costs a few. A read made on every request (a change
//! counter, say) is made here instead.

use std::{cell::RefCell, collections::HashMap, io, path::PathBuf, time::Duration};

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// How long a read waits should SQLite be busy (in WAL mode a reader waits
/// only on rare recovery steps): short, since it waits on a runtime thread.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

thread_local! {
    /// This thread's connections, by file: opened at a thread's first read
    /// of a file (and again after a failed open), kept while it lives.
    static CONNECTIONS: RefCell<HashMap<PathBuf, Connection>> = RefCell::new(HashMap::new());
}

/// Reads in place from the SQLite file at `path`.
#[derive(Debug)]
pub(crate) struct InPlaceReader {
    path: PathBuf,
}

impl InPlaceReader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Runs `sql`, a query for one integer, on the calling thread.
    pub(crate) fn integer(&self, sql: &str) -> Result<i64, sqlx::Error> {
        CONNECTIONS.with_borrow_mut(|connections| {
            let connection = match connections.get_mut(&self.path) {
                Some(connection) => connection,
                None => connections
                    .entry(self.path.clone())
                    .or_insert(self.open().map_err(store_error)?),
            };
            // Cached, and reset after the row: no read transaction stays
            // open to hold back checkpoints.
            let mut statement = connection.prepare_cached(sql).map_err(store_error)?;
            statement.query_row([], |row| row.get(0)).map_err(store_error)
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(connection)
    }
}

/// As sqlx's errors, so callers handle one kind: contention is I/O (worth
/// retrying elsewhere), anything else a protocol error (internal).
fn store_error(error: rusqlite::Error) -> sqlx::Error {
    let busy = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if busy {
        sqlx::Error::Io(io::Error::other(error))
    } else {
        sqlx::Error::Protocol(format!("reading in place: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_another_connection_committed_since() {
        let files = tempfile::tempdir().unwrap();
        let path = files.path().join("store.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE counter (n INTEGER); INSERT INTO counter VALUES (1);")
            .unwrap();
        let reader = InPlaceReader::new(path);
        assert_eq!(reader.integer("SELECT n FROM counter").unwrap(), 1);
        writer.execute("UPDATE counter SET n = 2", []).unwrap();
        assert_eq!(reader.integer("SELECT n FROM counter").unwrap(), 2);
        // A failed query leaves the connection usable.
        assert!(matches!(
            reader.integer("SELECT n FROM nowhere"),
            Err(sqlx::Error::Protocol(_))
        ));
        assert_eq!(reader.integer("SELECT n FROM counter").unwrap(), 2);
    }
}
