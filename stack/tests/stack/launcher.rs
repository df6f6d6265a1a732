//! The launcher, as a user runs it: the whole stack comes up, takes an
//! order through the edge, restarts a crashed replica, and stops every
//! process on SIGTERM.

use super::token;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
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
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// SIGHUP: restart the edges one at a time.
    fn hang_up(&self) {
        self.signal(nix::sys::signal::Signal::SIGHUP);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.0.id() {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).ok();
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

/// Kills process `pid` as a crash would (SIGKILL).
fn crash(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
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
    /// The launcher's first line (on stderr) that starts with `start`,
    /// once it has said it, within `limit`.
    async fn launcher_says(&self, start: &str, limit: Duration) -> String {
        eventually(&format!("the launcher to say {start:?}"), limit, || async {
            let lines = self.err.lock().unwrap();
            lines.iter().find(|line| line.starts_with(start)).cloned()
        })
        .await
    }

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

/// An order of the first item of the first restaurant.
async fn first_item_order(http: &reqwest::Client, base: &str) -> Value {
    let restaurants = get_json(http, &format!("{base}/api/restaurants")).await;
    let restaurant_id = restaurants["restaurants"][0]["id"].as_str().unwrap();
    let menu = get_json(http, &format!("{base}/api/restaurants/{restaurant_id}/menu")).await;
    json!({"restaurantId": restaurant_id, "items": [{"menuItemId": menu["items"][0]["id"], "quantity": 1}]})
}

/// Places an order of the first item of the first restaurant, as `token`'s
/// customer: the order.
async fn place_order(http: &reqwest::Client, base: &str, token: &str) -> Value {
    let order = first_item_order(http, base).await;
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
    for process in ["restaurant-svc#2", "order-svc#1", "notify-svc#2", "edge#2"] {
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
    crash(victim);
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
    assert_eq!(children.len(), 8, "six replicas and two edges: {children:?}");
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
    assert_eq!(children.len(), 5, "three replicas and two edges: {children:?}");
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

/// What the load of [`the_edges_restart_one_at_a_time_and_fail_no_request`]
/// saw.
#[derive(Default)]
struct Seen {
    answered: AtomicU64,
    failed: Mutex<Vec<String>>,
}

impl Seen {
    /// Counts an answer that is `expected`, else records what went wrong.
    fn answer(&self, what: &str, answer: Result<reqwest::Response, reqwest::Error>, expected: u16) {
        match answer {
            Ok(response) if response.status().as_u16() == expected => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(response) => self
                .failed
                .lock()
                .unwrap()
                .push(format!("{what}: {}", response.status())),
            Err(error) => self.failed.lock().unwrap().push(format!("{what}: {error:?}")),
        }
    }
}

/// Two edges serve one socket. SIGHUP to the launcher restarts them one at
/// a time while clients read, on connections they keep alive and on a new
/// connection per request, and place orders: no request fails.
#[tokio::test(flavor = "multi_thread")]
async fn the_edges_restart_one_at_a_time_and_fail_no_request() {
    restart_under_load(2).await;
}

/// One edge alone: while it restarts, new connections wait in the
/// launcher's socket for its successor, so again no request fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_lone_edge_restarts_and_fails_no_request() {
    restart_under_load(1).await;
}

/// The launcher's `edges` edges restarted by SIGHUP under load, each
/// checked to have stopped and come back, and no request failed.
async fn restart_under_load(edges: u16) {
    let data = tempfile::tempdir().unwrap();
    // The edges inherit the launcher's environment: the test's callers are
    // one client address, which rate limits would hold back.
    let unlimited = [("RATE_LIMIT_READS", "0"), ("RATE_LIMIT_WRITES", "0")];
    let count = edges.to_string();
    let running = start(data.path(), &["--replicas", "1", "--edges", &count], &unlimited).await;
    let (err, base) = (running.err.clone(), running.base.clone());
    let names: Vec<String> = (1..=edges).map(|index| format!("edge#{index}")).collect();
    let before = pids(&err.lock().unwrap());
    let order = first_item_order(&reqwest::Client::new(), &base).await;
    let customer = token(data.path(), "customer", "ana");

    let seen = Arc::new(Seen::default());
    let loading = tokio_util::sync::CancellationToken::new();
    let mut load = tokio::task::JoinSet::new();
    for client in 0..5 {
        let keep_alive = client < 3;
        let http = if keep_alive {
            reqwest::Client::new()
        } else {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        };
        let (seen, loading, url) = (seen.clone(), loading.clone(), format!("{base}/api/restaurants"));
        load.spawn(async move {
            while !loading.is_cancelled() {
                seen.answer("read", http.get(&url).send().await, 200);
                // Connections sit idle between requests, a while that
                // differs per client, as browsers' do.
                tokio::time::sleep(Duration::from_millis(client)).await;
            }
        });
    }
    let (order_seen, order_loading, orders_url) =
        (seen.clone(), loading.clone(), format!("{base}/api/orders"));
    load.spawn(async move {
        let http = reqwest::Client::new();
        while !order_loading.is_cancelled() {
            let placed = http
                .post(&orders_url)
                .bearer_auth(&customer)
                .json(&order)
                .send()
                .await;
            order_seen.answer("order", placed, 201);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    let answered_before = seen.answered.load(Ordering::Relaxed);
    running.launcher.hang_up();
    running
        .launcher_says("[stack] every edge restarted", Duration::from_secs(30))
        .await;
    let restarting = seen.answered.load(Ordering::Relaxed) - answered_before;
    tokio::time::sleep(Duration::from_millis(300)).await;
    loading.cancel();
    while load.join_next().await.is_some() {}

    let failed = seen.failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    eprintln!("served while restarting: {restarting}");
    let after = pids(&err.lock().unwrap());
    for name in &names {
        let old = before[name];
        assert_ne!(after[name], old, "{name} was restarted");
        assert!(!alive(old), "the old {name} (pid {old}) has stopped");
    }
    if edges == 1 {
        running.stop().await;
        return;
    }
    // With another edge serving all along, requests were answered throughout.
    assert!(restarting >= 10, "served while restarting: {restarting}");
    let lines = err.lock().unwrap().join("\n");
    let second_stops = lines.find("[stack] restarting edge#2").unwrap();
    let first_starts_again = lines.find(&format!("[stack] started edge#1 (pid {})", after["edge#1"]));
    assert!(
        first_starts_again.is_some_and(|at| at < second_stops),
        "one at a time: edge#1 is back before edge#2 stops\n{lines}"
    );
    running.stop().await;
}

/// An edge told a socket was passed in (`LISTEN_FDS`) where there is none
/// refuses to start, saying so, rather than binding a port of its own.
#[tokio::test]
async fn an_edge_passed_no_usable_socket_says_so() {
    let edge = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["serve", "edge", "--listen", "127.0.0.1:0"])
        .env("LISTEN_FDS", "1")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&edge.stderr);
    assert!(!edge.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error: the listening socket passed in (LISTEN_FDS): fd 3 is not a socket\n"),
        "{stderr}"
    );
}

/// A rolling restart whose first new edge cannot start (here its token
/// keys are broken, as a bad build or setting would break it) stops there:
/// the other edge keeps running and serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_stops_at_an_edge_that_does_not_come_back() {
    let data = tempfile::tempdir().unwrap();
    let running = start(data.path(), &["--replicas", "1", "--edges", "2"], &[]).await;
    let (err, base) = (running.err.clone(), running.base.clone());
    let before = pids(&err.lock().unwrap());
    let jwks = data.path().join("auth/jwks.json");
    let good = std::fs::read(&jwks).unwrap();
    std::fs::write(&jwks, b"not a JWKS document").unwrap();

    running.launcher.hang_up();
    let stopped = running
        .launcher_says("[stack] rolling restart stopped: ", Duration::from_secs(30))
        .await;
    assert!(stopped.contains("edge#1 exited before it listened"), "{stopped}");
    let edge2 = before["edge#2"];
    assert_eq!(
        pids(&err.lock().unwrap())["edge#2"],
        edge2,
        "edge#2 was left alone"
    );
    assert!(alive(edge2));
    let restaurants = reqwest::get(format!("{base}/api/restaurants")).await.unwrap();
    assert_eq!(restaurants.status(), 200, "edge#2 serves");

    // Mended, edge#1 comes back as the supervisor restarts it.
    std::fs::write(&jwks, good).unwrap();
    running.stop().await;
}

/// A rolling restart asked while a crashed edge waits out its restart
/// backoff starts that edge at once, once: the restart it asked for is the
/// one the backoff was waiting to make, not a second after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_starts_a_crashed_edge_at_once() {
    let data = tempfile::tempdir().unwrap();
    let running = start(data.path(), &["--replicas", "1", "--edges", "2"], &[]).await;
    let err = running.err.clone();
    let said = |start: &str| {
        err.lock()
            .unwrap()
            .iter()
            .filter(|line| line.starts_with(start))
            .count()
    };
    // Three crashes in a row: the third restart waits 2 s, time enough
    // for the restart to be asked meanwhile.
    for crashes in 1..=3 {
        eventually("edge#1 to run", Duration::from_secs(30), || async {
            (said("[stack] started edge#1 ") == crashes).then_some(())
        })
        .await;
        let pid = pids(&err.lock().unwrap())["edge#1"];
        crash(pid);
        eventually(
            "the launcher to see edge#1 exit",
            Duration::from_secs(10),
            || async { (said("[stack] edge#1 exited") == crashes).then_some(()) },
        )
        .await;
    }
    let lines = err.lock().unwrap().clone();
    let waits =
        |line: &String| line.starts_with("[stack] edge#1 exited") && line.ends_with("restarting in 2s");
    assert!(lines.iter().any(waits), "{lines:#?}");

    running.launcher.hang_up();
    running
        .launcher_says("[stack] every edge restarted", Duration::from_secs(30))
        .await;
    assert_eq!(said("[stack] started edge#1 "), 4, "started once more");
    assert_eq!(
        said("[stack] restarting edge#1"),
        0,
        "not restarted again once running"
    );
    running.stop().await;
}
