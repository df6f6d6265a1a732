//! A private PostgreSQL cluster for the tests of one test process: initdb
//! into a temporary folder, served on a free loopback port, with a fresh
//! database per test. It is started on first use, and a watchdog shell
//! stops it and removes its folder once the test process is gone, however
//! the process ends.
//!
//! PostgreSQL comes from the machine (Debian's `postgresql` package; `.ci/run`
//! installs it). Without it the PostgreSQL tests fail, saying so, unless
//! `DISHPATCH_SKIP_POSTGRES=1` is set, in which case each says it was skipped.

use stack::postgres::{binaries, give_to_postgres, is_root, run_as};
use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Stdio,
    sync::OnceLock,
    time::{Duration, Instant},
};

const SKIP_VARIABLE: &str = "DISHPATCH_SKIP_POSTGRES";

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// True (after saying so on stderr) when PostgreSQL tests are to be skipped
/// because `DISHPATCH_SKIP_POSTGRES=1` is set.
pub fn skipped() -> bool {
    let skip = std::env::var(SKIP_VARIABLE).is_ok_and(|value| value == "1");
    if skip {
        eprintln!("SKIPPED: PostgreSQL test ({SKIP_VARIABLE}=1)");
    }
    skip
}

/// The cluster of this test process, started on first use.
pub async fn cluster() -> &'static Cluster {
    if let Some(cluster) = CLUSTER.get() {
        return cluster;
    }
    let started = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("starting PostgreSQL panicked");
    started.wait_until_accepting_sessions().await;
    // Two tests may race to start one; the loser's cluster stops by itself
    // when this process ends.
    CLUSTER.get_or_init(|| started)
}

impl Cluster {
    /// A URL of a new, empty database on this cluster.
    pub async fn create_database(&self) -> String {
        use sqlx::Connection;
        let name = format!("test_{}", uuid_like());
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connecting to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        admin.close().await.ok();
        self.url(&name)
    }

    /// The port opens before PostgreSQL takes sessions ("the database system
    /// is starting up"): ready means a session opens.
    async fn wait_until_accepting_sessions(&self) {
        use sqlx::Connection;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(session) => {
                    session.close().await.ok();
                    return;
                }
                Err(error) if tokio::time::Instant::now() > deadline => {
                    panic!("PostgreSQL on port {} takes no sessions: {error}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start() -> Self {
        let bin = binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's initdb and postgres were not found (looked in $PATH and \
                 /usr/lib/postgresql/*/bin). Install Debian's `postgresql` package, or set \
                 {SKIP_VARIABLE}=1 to skip the PostgreSQL tests."
            )
        });
        let folder = tempfile::Builder::new()
            .prefix("dishpatch-pg-")
            .tempdir()
            .expect("creating the cluster's folder")
            .keep();
        let as_postgres = is_root();
        if as_postgres {
            give_to_postgres(&folder).expect("handing the cluster's folder to postgres");
        }

        initdb(&bin, &folder.join("cluster"));

        let port = free_port();
        let mut watchdog = run_as(as_postgres, Path::new("sh"))
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&folder)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .arg(bin.join("postgres"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting PostgreSQL");
        // The watchdog outlives this test process by design; should it end
        // sooner (postgres failed to start), this reaps it.
        std::thread::spawn(move || watchdog.wait());

        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(address).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(folder.join("postgres.log")).unwrap_or_default();
                panic!("PostgreSQL did not start on port {port}: {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port }
    }
}

/// Makes a cluster in `cluster` (a new folder inside one the `postgres`
/// user owns, when this process is root) with initdb, trusting every
/// session: for tests only.
pub fn initdb(binaries: &Path, cluster: &Path) {
    let initdb = run_as(is_root(), &binaries.join("initdb"))
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg("-D")
        .arg(cluster)
        .output()
        .expect("running initdb");
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
}

/// Runs postgres until the process whose id is `$3` is gone, then stops it
/// and removes the cluster's folder `$1`.
const WATCHDOG: &str = r#"
folder="$1"; port="$2"; watched="$3"; postgres="$4"
"$postgres" -D "$folder/cluster" -p "$port" -k "$folder" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
    >"$folder/postgres.log" 2>&1 &
pg=$!
while [ -d "/proc/$watched" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.5; done
kill -INT "$pg" 2>/dev/null
wait "$pg"
rm -rf "$folder"
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

/// A unique, lowercase, identifier-safe suffix.
fn uuid_like() -> String {
    dishpatch::ids::ORDER.generate()[4..].to_owned()
}
