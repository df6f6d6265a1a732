//! The store every replica shares: PostgreSQL on a host of its own,
//! listening on that host's address, trusting any session from the test
//! network (which nothing outside it can reach).

use super::network::Host;
use stack::postgres::{binaries, give_to_postgres};
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

const PORT: u16 = 5432;

/// setpriv's arguments that run a program as the `postgres` user (the test
/// runs as root, which PostgreSQL refuses to run as). setpriv becomes the
/// program, so the pid of what it starts is the program's.
const AS_POSTGRES: [&str; 3] = ["--reuid=postgres", "--regid=postgres", "--init-groups"];

/// PostgreSQL, running in its host.
#[derive(Debug)]
pub(super) struct Database {
    postmaster: Child,
    host: Host,
    folder: tempfile::TempDir,
}

impl Database {
    /// A new cluster in `host`.
    pub(super) fn start(host: &Host) -> Self {
        let bin = binaries().expect("PostgreSQL's server binaries are installed (Debian's postgresql)");
        let folder = tempfile::tempdir().unwrap();
        give_to_postgres(folder.path()).unwrap();
        let cluster = folder.path().join("cluster");
        test_support::postgres::initdb(&bin, &cluster);
        let hba = cluster.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str("host all all 10.77.0.0/24 trust\n");
        std::fs::write(&hba, rules).unwrap();

        let log = std::fs::File::create(folder.path().join("postgres.log")).unwrap();
        give_to_postgres(&folder.path().join("postgres.log")).unwrap();
        let postmaster = Command::new("ip")
            .args(host.exec("setpriv"))
            .args(AS_POSTGRES)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&cluster)
            .arg("-k")
            .arg(folder.path())
            .args([
                "-c",
                &format!("listen_addresses={}", host.ip),
                "-p",
                &PORT.to_string(),
            ])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting PostgreSQL");
        Self {
            postmaster,
            host: host.clone(),
            folder,
        }
    }

    /// The URL of `database` on it.
    pub(super) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}:{PORT}/{database}", self.host.ip)
    }

    /// Waits until it takes sessions (from the calling thread's host), then
    /// makes `databases`.
    pub(super) async fn create(&self, databases: &[String]) {
        use sqlx::Connection;
        let mut admin =
            test_support::eventually("PostgreSQL to take sessions", Duration::from_secs(30), || async {
                sqlx::PgConnection::connect(&self.url("postgres")).await.ok()
            })
            .await;
        for database in databases {
            sqlx::query(&format!("CREATE DATABASE \"{database}\""))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        admin.close().await.ok();
    }

    /// What it has logged.
    fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- PostgreSQL's log ---\n{}", self.log());
        }
        // A fast shutdown: sessions are ended, and it exits at once.
        let pid = nix::unistd::Pid::from_raw(self.postmaster.id().cast_signed());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).ok();
        self.postmaster.wait().ok();
    }
}
