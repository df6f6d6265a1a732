//! The launcher, as a user runs it: the whole stack comes up, takes an
//! order through the edge, restarts a crashed replica, and stops every
//! process on SIGTERM.

use super::token;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use test_support::eventually;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
};

/// The launcher under test. Should the test end early, it is stopped as a
/// user stops it (SIGTERM), so it stops the stack: killing it outright would
/// leave its children running.
struct Launcher(Child);

impl Launcher {
    fn terminate(&self) {
        if let Some(pid) = self.0.id() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .ok();
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

/// Collects a stream's lines as they come.
fn collect(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    });
}

/// The latest pid of each process, from the launcher's `started` lines.
fn pids(lines: &[String]) -> HashMap<String, u32> {
    lines
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("[stack] started ")?;
            let (name, pid) = rest.split_once(" (pid ")?;
            Some((name.to_owned(), pid.trim_end_matches(')').parse().ok()?))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
}

/// A launcher started with `args` on a free port, its stdout and stderr
/// lines collected, and the base URL of its edge once the whole stack is
/// healthy.
struct Running {
    launcher: Launcher,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    base: String,
}

async fn start(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let launcher = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["--service-port", "0", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut launcher = Launcher(launcher);
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    collect(launcher.0.stdout.take().unwrap(), out.clone());
    collect(launcher.0.stderr.take().unwrap(), err.clone());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(
        "the whole stack to be healthy",
        Duration::from_secs(60),
        || async {
            let health = http.get(format!("{base}/health")).send().await.ok()?;
            (health.status() == 200).then_some(())
        },
    )
    .await;
    Running {
        launcher,
        out,
        err,
        base,
    }
}

impl Running {
    /// Stops the stack as a user does (SIGTERM to the launcher): it exits 0.
    async fn stop(mut self) {
        self.launcher.terminate();
        let status = tokio::time::timeout(Duration::from_secs(60), self.launcher.0.wait())
            .await
            .expect("the stack stops")
            .unwrap();
        assert!(status.success(), "exits 0: {status}");
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Places an order of the first item of the first restaurant, as `token`'s
/// customer: the order.
async fn place_order(http: &reqwest::Client, base: &str, token: &str) -> Value {
    let restaurants = get_json(http, &format!("{base}/api/restaurants")).await;
    let restaurant_id = restaurants["restaurants"][0]["id"].as_str().unwrap();
    let menu = get_json(http, &format!("{base}/api/restaurants/{restaurant_id}/menu")).await;
    let order = json!({"restaurantId": restaurant_id, "items": [{"menuItemId": menu["items"][0]["id"], "quantity": 1}]});
    let placed = http
        .post(format!("{base}/api/orders"))
        .bearer_auth(token)
        .json(&order)
        .send()
        .await
        .unwrap();
    let status = placed.status();
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(status.as_u16(), 201, "{placed}");
    placed
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_starts_serves_recovers_and_stops() {
    let data = tempfile::tempdir().unwrap();
    let running = start(data.path(), &["--replicas", "2"], &[]).await;
    let (out, err, base) = (running.out.clone(), running.err.clone(), running.base.clone());
    let http = reqwest::Client::new();
    // The launcher forwards its children's lines as they come: the one
    // that says where a replica listens may trail the edge's first probe.
    let map = eventually(
        "the replicas' lines, prefixed",
        Duration::from_secs(5),
        || async {
            let map = out.lock().unwrap().join("\n");
            map.contains("restaurant-svc#1  | restaurant-svc listening on")
                .then_some(map)
        },
    )
    .await;
    for process in ["restaurant-svc#2", "order-svc#1", "notify-svc#2", "edge"] {
        assert!(map.contains(process), "the port map names {process}: {map}");
    }

    let restaurants = get_json(&http, &format!("{base}/api/restaurants")).await;
    assert_eq!(
        restaurants["restaurants"].as_array().unwrap().len(),
        6,
        "the seeded restaurants"
    );
    // Ana orders with a token `stack token` signs with the stack's key,
    // which only its owner may read.
    let key = data.path().join("auth/signing-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let placed = place_order(&http, &base, &token(data.path(), "customer", "ana")).await;
    assert_eq!(placed["customer"], "ana", "{placed}");
    // On one machine, anyone may sign in as anyone.
    let signed_in = http
        .post(format!("{base}/api/dev/sign-in"))
        .json(&json!({"sub": "root", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);

    // A crashed replica is started again.
    let before = pids(&err.lock().unwrap());
    let victim = before["notify-svc#1"];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(
        "the crashed replica to be restarted",
        Duration::from_secs(15),
        || async {
            let now = pids(&err.lock().unwrap());
            (now["notify-svc#1"] != victim).then_some(())
        },
    )
    .await;

    let children = pids(&err.lock().unwrap());
    assert_eq!(children.len(), 7, "six replicas and the edge: {children:?}");
    running.stop().await;
    for (name, pid) in children {
        assert!(!alive(pid), "{name} (pid {pid}) is still running");
    }
}

/// `--store postgres`: the launcher keeps a PostgreSQL cluster in the data
/// folder, the services keep their data there (no SQLite file appears),
/// what they stored is there after a restart, and the cluster stops with
/// the stack.
#[tokio::test(flavor = "multi_thread")]
async fn the_stack_keeps_its_data_in_its_own_postgres() {
    if test_support::postgres::skipped() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // Run as root, PostgreSQL runs as its own user, which must reach the
    // cluster's folder inside this one.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let http = reqwest::Client::new();
    let ana = |running: &Running| (running.base.clone(), token(data.path(), "customer", "ana"));

    let running = start(data.path(), &["--replicas", "1", "--store", "postgres"], &[]).await;
    let (base, token) = ana(&running);
    let placed = place_order(&http, &base, &token).await;
    let postmaster = data.path().join("postgres/postmaster.pid");
    let postgres: u32 = std::fs::read_to_string(&postmaster)
        .expect("PostgreSQL runs in the data folder")
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(alive(postgres));
    running.stop().await;
    assert!(!alive(postgres), "PostgreSQL stopped with the stack");
    assert!(!postmaster.exists(), "and shut down cleanly");
    let files: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        files.iter().all(|name| !name.to_string_lossy().ends_with(".db")),
        "no SQLite store: {files:?}"
    );

    let running = start(data.path(), &["--replicas", "1", "--store", "postgres"], &[]).await;
    let (base, token) = ana(&running);
    let read = http
        .get(format!("{base}/api/orders/{}", placed["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "the order survived the restart");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["id"], placed["id"]);
    running.stop().await;
}

/// `--store postgres` on a server of the user's, given as POSTGRES_URL:
/// the launcher makes the services' databases there, the services keep
/// their data in them, and the URL, password and all, is on no process's
/// command line.
#[tokio::test(flavor = "multi_thread")]
async fn the_stack_keeps_its_data_on_a_postgres_server_it_is_given() {
    if test_support::postgres::skipped() {
        return;
    }
    // The test cluster trusts local sessions, and ignores the password.
    let server = test_support::postgres::cluster().await.create_database().await;
    let server = server.replacen("postgres://postgres@", "postgres://postgres:hunter2@", 1);
    let data = tempfile::tempdir().unwrap();
    let running = start(
        data.path(),
        &["--replicas", "1", "--store", "postgres"],
        &[("POSTGRES_URL", &server)],
    )
    .await;
    let customer = token(data.path(), "customer", "ana");
    let placed = place_order(&reqwest::Client::new(), &running.base, &customer).await;

    let launcher = running.launcher.0.id().unwrap();
    let children = pids(&running.err.lock().unwrap());
    assert_eq!(children.len(), 4, "{children:?}");
    for pid in children.values().chain([&launcher]) {
        let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            !String::from_utf8_lossy(&command_line).contains("hunter2"),
            "process {pid} shows the store's password: {}",
            String::from_utf8_lossy(&command_line)
        );
    }
    use sqlx::Connection;
    let orders = stack::database_url(&server, &stack::database_name(stack::Part::OrderSvc)).unwrap();
    let mut orders = sqlx::PgConnection::connect(&orders).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = $1")
        .bind(placed["id"].as_str().unwrap())
        .fetch_one(&mut orders)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the order is in dishpatch_order on the given server");
    orders.close().await.ok();
    running.stop().await;
}
