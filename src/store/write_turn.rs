//! Whose turn it is to write a SQLite file.
//!
//! SQLite lets one writer at a time into a file, and one that finds it
//! locked waits in its busy handler, which sleeps 1, 2, 5, 10, … ms between
//! tries. Two replicas writing one file at load then spend most of their
//! time asleep while the lock is free (BENCHMARKS.md: two order-svc replicas
//! placed fewer orders than one). So writers take turns before they touch
//! SQLite: in this process on a FIFO mutex, and across processes on an
//! exclusive lock of a file beside the database, which the kernel hands to
//! a waiter the moment it is let go. SQLite's own lock still guards
//! correctness; it is merely found free.

use std::{
    fs::{File, TryLockError},
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The turns of one SQLite file's writers in this process.
#[derive(Debug)]
pub(super) struct SqliteWriters {
    in_process: Arc<Mutex<()>>,
    lock_file: Arc<File>,
}

/// A writer's turn: while it lives, no other writer of this process or of
/// any other process that takes turns on the same file writes. Dropping it
/// passes the turn on.
#[derive(Debug)]
pub struct WriteTurn {
    _held: Option<Held>,
}

/// Both locks of a turn taken, dropped in this order: the other processes'
/// first, then this one's.
#[derive(Debug)]
struct Held {
    _across_processes: FileLock,
    _in_process: OwnedMutexGuard<()>,
}

/// An exclusive lock of the lock file, let go when dropped.
#[derive(Debug)]
struct FileLock(Arc<File>);

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing would let go too, but the file stays open for the next turn.
        self.0.unlock().ok();
    }
}

impl SqliteWriters {
    /// Opens (creating if need be) the lock file beside `database`, and its
    /// folder.
    pub(super) fn open(database: &Path) -> Result<Self, (PathBuf, io::Error)> {
        if let Some(folder) = database.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|error| (folder.to_owned(), error))?;
        }
        let mut path = database.as_os_str().to_owned();
        path.push(".write-lock");
        let path = PathBuf::from(path);
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| (path, error))?;
        Ok(Self {
            in_process: Arc::new(Mutex::new(())),
            lock_file: Arc::new(lock_file),
        })
    }

    /// Waits for this writer's turn: first among this process's writers
    /// (in order), then among the processes.
    pub(super) async fn turn(&self) -> io::Result<WriteTurn> {
        let in_process = self.in_process.clone().lock_owned().await;
        let file = self.lock_file.clone();
        match file.try_lock() {
            Ok(()) => Ok(WriteTurn::held(file, in_process)),
            Err(TryLockError::WouldBlock) => {
                // Blocks until the other process lets go. The turn is made
                // on the blocking thread: should this caller give up waiting,
                // the turn is dropped there, letting go of both locks.
                tokio::task::spawn_blocking(move || {
                    file.lock()?;
                    Ok(WriteTurn::held(file, in_process))
                })
                .await
                .expect("locking a file does not panic")
            }
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    /// [`Self::turn`], giving up after `patience`, as SQLite's busy timeout
    /// would: a writer stuck in another process (stopped, say) must not
    /// hold up this one's callers for ever.
    pub(super) async fn turn_within(&self, patience: Duration) -> io::Result<WriteTurn> {
        tokio::time::timeout(patience, self.turn())
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("another writer held the SQLite file for over {patience:?}"),
                ))
            })
    }
}

impl WriteTurn {
    /// No turn to take: PostgreSQL runs concurrent writers itself.
    pub(super) fn none() -> Self {
        Self { _held: None }
    }

    /// The turn of a writer holding both locks (`file` is locked).
    fn held(file: Arc<File>, in_process: OwnedMutexGuard<()>) -> Self {
        Self {
            _held: Some(Held {
                _across_processes: FileLock(file),
                _in_process: in_process,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough for a turn that is free to be taken many times over.
    const SOON: Duration = Duration::from_secs(5);

    /// Two `SqliteWriters` of one file stand for two processes: each opens
    /// the lock file itself, so the kernel's lock is all they share.
    fn two_processes() -> (tempfile::TempDir, SqliteWriters, SqliteWriters) {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let database = folder.path().join("data").join("x.db");
        let first = SqliteWriters::open(&database).expect("the lock file opens");
        let second = SqliteWriters::open(&database).expect("the lock file opens");
        (folder, first, second)
    }

    #[tokio::test]
    async fn writers_of_one_file_take_turns_across_processes() {
        let (_folder, first, second) = two_processes();
        let held = first.turn().await.expect("a free turn");
        let second = Arc::new(second);
        let waiting = tokio::spawn({
            let second = second.clone();
            async move { second.turn().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second took a turn the first held");
        drop(held);
        tokio::time::timeout(SOON, waiting)
            .await
            .expect("the turn passes on when let go")
            .expect("no panic")
            .expect("the lock file locks");
    }

    #[tokio::test]
    async fn a_writer_out_of_patience_gives_up_and_leaves_no_turn_behind() {
        let (_folder, first, second) = two_processes();
        let held = first.turn().await.expect("a free turn");
        let refused = second
            .turn_within(Duration::from_millis(200))
            .await
            .expect_err("the first holds the turn");
        assert_eq!(refused.kind(), io::ErrorKind::TimedOut);
        // The abandoned wait goes on in a blocking thread, holding the
        // second's in-process turn; it gets the lock once the first lets go,
        // and must let it go again at once.
        drop(held);
        drop(
            tokio::time::timeout(SOON, second.in_process.lock())
                .await
                .expect("the abandoned wait ends"),
        );
        tokio::time::timeout(SOON, first.turn())
            .await
            .expect("the abandoned wait let go of the lock")
            .expect("the lock file locks");
    }

    #[tokio::test]
    async fn a_process_s_writers_take_turns_in_order() {
        let (_folder, writers, _other) = two_processes();
        let writers = Arc::new(writers);
        let held = writers.turn().await.expect("a free turn");
        let (order, mut taken) = tokio::sync::mpsc::unbounded_channel();
        for writer in 0..3 {
            let (writers, order) = (writers.clone(), order.clone());
            tokio::spawn(async move {
                let _turn = writers.turn().await.expect("the lock file locks");
                order.send(writer).expect("the test listens");
            });
            // Queue them in a known order.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(taken.try_recv().is_err(), "a writer took a turn that was held");
        drop(held);
        for expected in 0..3 {
            let writer = tokio::time::timeout(SOON, taken.recv())
                .await
                .expect("every writer gets a turn");
            assert_eq!(writer, Some(expected));
        }
    }
}
