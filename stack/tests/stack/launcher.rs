//! The launcher, as a user runs it: the whole stack comes up, takes an
//! order through the edge, restarts a crashed replica, and stops every
//! process on SIGTERM.

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

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_starts_serves_recovers_and_stops() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let launcher = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "--replicas",
            "2",
            "--service-port",
            "0",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut launcher = Launcher(launcher);
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    collect(launcher.0.stdout.take().unwrap(), out.clone());
    collect(launcher.0.stderr.take().unwrap(), err.clone());

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually(
        "the whole stack to be healthy",
        Duration::from_secs(60),
        || async {
            let health = http.get(format!("{base}/health")).send().await.ok()?;
            (health.status() == 200).then_some(())
        },
    )
    .await;
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

    let restaurants: Value = http
        .get(format!("{base}/api/restaurants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        restaurants["restaurants"].as_array().unwrap().len(),
        6,
        "the seeded restaurants"
    );
    let restaurant_id = restaurants["restaurants"][0]["id"].as_str().unwrap();
    let menu: Value = http
        .get(format!("{base}/api/restaurants/{restaurant_id}/menu"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Ana orders with a token `stack token` signs with the stack's key,
    // which only its owner may read.
    let key = data.path().join("auth/signing-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["token", "--role", "customer", "--sub", "ana", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap();
    let order = json!({"restaurantId": restaurant_id, "items": [{"menuItemId": menu["items"][0]["id"], "quantity": 1}]});
    let placed = http
        .post(format!("{base}/api/orders"))
        .bearer_auth(token.trim())
        .json(&order)
        .send()
        .await
        .unwrap();
    let status = placed.status();
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(
        (status.as_u16(), &placed["customer"]),
        (201, &json!("ana")),
        "{placed}"
    );
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
    launcher.terminate();
    let status = tokio::time::timeout(Duration::from_secs(60), launcher.0.wait())
        .await
        .expect("the stack stops")
        .unwrap();
    assert!(status.success(), "exits 0: {status}");
    for (name, pid) in children {
        assert!(!alive(pid), "{name} (pid {pid}) is still running");
    }
}
