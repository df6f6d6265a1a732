//! PostgreSQL for the stack: a cluster of its own, or a server it is given.
//!
//! `stack --store postgres` keeps a cluster in the data folder
//! (`data/postgres`, made by initdb the first time), served only on a Unix
//! socket inside that folder. Only the folder's owner (and root) can reach
//! the socket, so sessions through it need no password, and no other user
//! of the machine can open one. A watchdog shell runs it and stops it when the
//! launcher is gone, however the launcher ends. PostgreSQL comes from the
//! machine (Debian's `postgresql` package).

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The folder holding initdb and postgres: on PATH, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().map(|entry| entry.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by_key(|dir| {
        std::cmp::Reverse(
            dir.parent()
                .and_then(|version| version.file_name())
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<u32>().ok()),
        )
    });
    on_path.into_iter().chain(debian).find(|dir| has_both(dir))
}

/// PostgreSQL refuses to run as root: as root, its programs run as the
/// `postgres` user (which Debian's package adds), owning the cluster.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `program`, run as the `postgres` user when `as_postgres`.
pub fn run_as(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Gives `path` to the `postgres` user.
pub fn give_to_postgres(path: &Path) -> Result<(), String> {
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or("running as root needs a `postgres` user (Debian's postgresql package adds it)")?;
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .map_err(|error| format!("handing {} to postgres: {error}", path.display()))
}

/// The parent of process `pid`, from `/proc`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces, so after its `)`.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The stack's own cluster, running.
#[derive(Debug)]
pub struct Cluster {
    /// Its data folder, which holds its socket too.
    folder: PathBuf,
    /// The watchdog shell running postgres.
    watchdog: Child,
}

/// The port only names the socket (`.s.PGSQL.5432`): nothing listens on TCP.
const PORT: u16 = 5432;

/// Runs postgres (`$1`: the binary, `$2`: the cluster, `$4`: the port
/// naming its socket) until it stops, the launcher (`$3`) is gone, or this
/// shell is told to stop (TERM); then stops it (a fast shutdown) and waits.
const WATCHDOG: &str = r#"
postgres="$1"; cluster="$2"; launcher="$3"; port="$4"
"$postgres" -D "$cluster" -k "$cluster" -c listen_addresses= -c port="$port" \
    >>"$cluster/postgres.log" 2>&1 &
pg=$!
trap 'kill -INT "$pg" 2>/dev/null' TERM INT
while [ -d "/proc/$launcher" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.5; done
kill -INT "$pg" 2>/dev/null
wait "$pg"
"#;

impl Cluster {
    /// Starts the cluster in `folder`, made by initdb first if it is not
    /// there; stopped by [`Cluster::stop`], or when this process is gone.
    pub fn start(folder: &Path) -> Result<Self, String> {
        let bin = binaries().ok_or(
            "PostgreSQL's initdb and postgres were not found (looked in $PATH and \
             /usr/lib/postgresql/*/bin): install Debian's `postgresql` package",
        )?;
        let as_postgres = is_root();
        if !folder.join("PG_VERSION").is_file() {
            std::fs::create_dir_all(folder).map_err(|error| format!("{}: {error}", folder.display()))?;
            if as_postgres {
                give_to_postgres(folder)?;
            }
            let initdb = run_as(as_postgres, &bin.join("initdb"))
                .args([
                    // Through the socket only, which the folder's
                    // permissions guard; nothing is served over TCP.
                    "--auth-local=trust",
                    "--auth-host=reject",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                ])
                .arg("-D")
                .arg(folder)
                .output()
                .map_err(|error| format!("running initdb: {error}"))?;
            if !initdb.status.success() {
                return Err(format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&initdb.stderr)
                ));
            }
        }
        let folder = folder
            .canonicalize()
            .map_err(|error| format!("{}: {error}", folder.display()))?;
        let watchdog = run_as(as_postgres, Path::new("sh"))
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(bin.join("postgres"))
            .arg(&folder)
            .arg(std::process::id().to_string())
            .arg(PORT.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C at the terminal reaches the
            // launcher, which stops the services first, not PostgreSQL.
            .process_group(0)
            .spawn()
            .map_err(|error| format!("starting PostgreSQL: {error}"))?;
        Ok(Self { folder, watchdog })
    }

    /// The URL of `database` on this cluster, through its socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost:{PORT}/{database}?host={}",
            self.folder.display()
        )
    }

    /// Stops PostgreSQL (a fast shutdown: sessions are ended, what was
    /// committed is kept) and waits for it to be gone. Only this cluster's
    /// postgres is signalled: the one the watchdog started (should another
    /// stack's hold the folder, ours never started).
    pub fn stop(mut self) {
        // The postmaster's pid is the first line of postmaster.pid. (The
        // watchdog itself is not signalled: as root it is runuser, which
        // kills its child two seconds after a SIGTERM, waiting or not.)
        let postmaster = std::fs::read_to_string(self.folder.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().and_then(|pid| pid.trim().parse::<u32>().ok()));
        let watchdog = self.watchdog.id();
        let started_by_watchdog = |pid: u32| {
            let parent = parent_of(pid);
            parent == Some(watchdog) || parent.and_then(parent_of) == Some(watchdog)
        };
        if let Some(pid) = postmaster.filter(|&pid| started_by_watchdog(pid)) {
            let pid = nix::unistd::Pid::from_raw(pid.cast_signed());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).ok();
        }
        // It exits once postgres has.
        self.watchdog.wait().ok();
    }

    /// Waits until a session opens (the socket appears before PostgreSQL
    /// takes sessions), then makes the `databases` that are missing.
    pub async fn prepare(&mut self, databases: &[String]) -> Result<(), String> {
        use sqlx::{Connection, PgConnection};
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let log = self.folder.join("postgres.log");
        loop {
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                return Err(format!("PostgreSQL stopped ({status}): see {}", log.display()));
            }
            match PgConnection::connect(&self.url("postgres")).await {
                Ok(session) => {
                    session.close().await.ok();
                    break;
                }
                Err(error) if tokio::time::Instant::now() > deadline => {
                    return Err(format!(
                        "PostgreSQL takes no sessions: {error} (see {})",
                        log.display()
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        create_databases(&self.url("postgres"), databases).await
    }

    /// Makes `databases` ([`Cluster::prepare`]), runs `serve` with the
    /// server's URL, then stops the cluster: after what used the databases
    /// has stopped, so none is left without its store.
    pub async fn serve<T, E: From<String>>(
        mut self,
        databases: &[String],
        serve: impl AsyncFnOnce(String) -> Result<T, E>,
    ) -> Result<T, E> {
        let served = async {
            self.prepare(databases).await?;
            serve(self.url("postgres")).await
        }
        .await;
        // It waits for PostgreSQL to exit.
        tokio::task::spawn_blocking(move || self.stop()).await.ok();
        served
    }
}

/// Makes those of `databases` that are missing on the server of `server`
/// (a PostgreSQL URL; the database it names is where it connects to do so).
pub async fn create_databases(server: &str, databases: &[String]) -> Result<(), String> {
    use sqlx::{Connection, PgConnection};
    let mut admin = PgConnection::connect(server)
        .await
        .map_err(|error| format!("connecting to PostgreSQL: {error}"))?;
    for database in databases {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(database)
            .fetch_optional(&mut admin)
            .await
            .map_err(|error| format!("looking for database {database}: {error}"))?;
        if exists.is_none() {
            sqlx::query(&format!("CREATE DATABASE \"{database}\""))
                .execute(&mut admin)
                .await
                .map_err(|error| format!("creating database {database}: {error}"))?;
        }
    }
    admin.close().await.ok();
    Ok(())
}
