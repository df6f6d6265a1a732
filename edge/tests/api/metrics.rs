//! The stack's metrics: the edge's requests counted by route template,
//! method and status class (never by raw path), its pools' calls and
//! replicas, and every service's RPCs, store and outbox; checked by promtool
//! and scraped, from every process, by a real Prometheus (Debian's
//! `prometheus` package, which `./scripts/test` unpacks where it is
//! missing), which also runs the Grafana dashboards' queries.

use super::{A_RESTAURANT, Fleet};
use serde_json::Value;
use std::{path::PathBuf, process::Stdio, time::Duration};
use test_support::eventually;

/// A Prometheus tool on PATH, or `None` where it is missing and the test
/// was told to skip (`DISHPATCH_SKIP_PROMETHEUS=1`, as the other tools' tests).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() && std::env::var("DISHPATCH_SKIP_PROMETHEUS").is_ok_and(|value| value == "1") {
        eprintln!("skipped: {name} is not installed and DISHPATCH_SKIP_PROMETHEUS is set");
        return None;
    }
    Some(found.unwrap_or_else(|| {
        panic!("{name} was not found on PATH: ./scripts/test unpacks Debian's prometheus package for it")
    }))
}

/// The value of the series `series` (name and labels, as exposed).
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_and_checked_by_promtool() {
    let mut fleet = Fleet::start().await;
    assert_eq!(fleet.get(A_RESTAURANT).await.status(), 200);
    assert_eq!(
        fleet
            .get("/api/restaurants/rst_00000000000000000000000000000000")
            .await
            .status(),
        404
    );
    let anonymous = reqwest::Client::new()
        .post(fleet.url("/api/restaurants"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(fleet.get("/nowhere/42").await.status(), 404);

    let response = fleet.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let requests = |route: &str, method: &str, status: &str| {
        let series = format!(
            r#"dishpatch_edge_http_requests_total{{route="{route}",method="{method}",status="{status}"}}"#
        );
        value_of(&text, &series).unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    assert!(requests("/api/restaurants/{id}", "GET", "2xx") >= 1.0);
    assert_eq!(requests("/api/restaurants/{id}", "GET", "4xx"), 1.0);
    assert_eq!(requests("/api/restaurants", "POST", "4xx"), 1.0);
    assert_eq!(requests("unmatched", "GET", "4xx"), 1.0);
    assert!(
        !text.contains("rst_0") && !text.contains("/nowhere"),
        "no raw paths: {text}"
    );
    let count =
        r#"dishpatch_edge_http_request_duration_seconds_count{route="/api/restaurants/{id}",method="GET"}"#;
    assert!(value_of(&text, count).unwrap() >= 2.0, "{text}");
    assert_eq!(
        value_of(&text, "dishpatch_edge_http_requests_in_flight"),
        Some(1.0),
        "this one"
    );
    assert!(
        value_of(&text, "dishpatch_edge_http_connections_open").unwrap() >= 1.0,
        "this one's connection: {text}"
    );
    for service in ["restaurant-svc", "order-svc", "notify-svc"] {
        let series = |name: &str| format!(r#"dishpatch_pool_{name}{{service="{service}"}}"#);
        assert_eq!(value_of(&text, &series("replicas_known")), Some(2.0), "{text}");
        assert_eq!(
            value_of(&text, &series("replicas_in_rotation")),
            Some(2.0),
            "{text}"
        );
        assert_eq!(value_of(&text, &series("panicking")), Some(0.0), "{text}");
    }
    // The fleet's edge shows replicas, as the launcher's does: its pools'
    // series name them.
    let restaurant = fleet.restaurants[1].addr();
    let replica = format!(r#"service="restaurant-svc",replica="{restaurant}""#);
    let in_rotation = format!("dishpatch_pool_replica_in_rotation{{{replica}}}");
    assert_eq!(value_of(&text, &in_rotation), Some(1.0), "{text}");
    let probes = format!(r#"dishpatch_pool_probes_total{{{replica},result="serving"}}"#);
    assert!(value_of(&text, &probes).unwrap() >= 1.0, "{text}");
    let calls = |code: &str| {
        let series = format!(r#"dishpatch_pool_calls_total{{service="restaurant-svc",code="{code}"}}"#);
        value_of(&text, &series).unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    assert!(calls("OK") >= 1.0);
    assert_eq!(calls("NOT_FOUND"), 1.0);
    let attempts: f64 = text
        .lines()
        .filter(|line| line.starts_with(r#"dishpatch_pool_attempts_total{service="restaurant-svc""#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        attempts >= calls("OK") + 1.0,
        "every call made an attempt: {text}"
    );
    promtool_finds_nothing_in(&text).await;

    // An edge that hides its replicas names none in its metrics either.
    let mut config = fleet.edge_config();
    config.show_replicas = false;
    let hiding = fleet.extra_edge(config).await;
    let hidden = reqwest::get(format!("{hiding}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(hidden.contains("dishpatch_pool_probes_total"), "{hidden}");
    assert!(!hidden.contains("127.0.0.1"), "no replica is named: {hidden}");

    // A replica that dies leaves the rotation, and the count.
    fleet.restaurants[0].kill().await;
    eventually(
        "the dead replica to leave the count",
        Duration::from_secs(10),
        || async {
            let text = fleet.get("/metrics").await.text().await.ok()?;
            let series = r#"dishpatch_pool_replicas_in_rotation{service="restaurant-svc"}"#;
            (value_of(&text, series)? == 1.0).then_some(())
        },
    )
    .await;
}

/// Checks `text` with `promtool check metrics`, which must find nothing
/// to say (naming, units, help), unless promtool is missing and skipped.
async fn promtool_finds_nothing_in(text: &str) {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut check = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .await
        .unwrap();
    let checked = check.wait_with_output().await.unwrap();
    let said =
        String::from_utf8_lossy(&checked.stdout).to_string() + &String::from_utf8_lossy(&checked.stderr);
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

#[tokio::test]
async fn a_real_prometheus_scrapes_every_process_and_finds_the_work_counted() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    let order = serde_json::json!({
        "restaurantId": restaurant_id,
        "customer": "ana",
        "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
        "deliveryAddress": "5 Hungry Lane",
    });
    let placed = fleet
        .send_json(reqwest::Method::POST, "/api/orders", order.clone())
        .await;
    assert_eq!(placed.status(), 201);
    // A live reader: once the first order's notification reaches it (from
    // the store), the next order's come through notify-svc's feed.
    let path = "/api/notifications/stream";
    let mut live = super::live::EventStream::open(&fleet.http, &fleet.url(""), path, None).await;
    live.next().await.expect("the first order's notification");
    let placed = fleet.send_json(reqwest::Method::POST, "/api/orders", order).await;
    assert_eq!(placed.status(), 201);

    // Every process of the stack: the edge on its HTTP port, each service
    // replica on its gRPC port, where it answers `GET /metrics` too.
    let edge = fleet.url("").trim_start_matches("http://").to_owned();
    let jobs = [
        ("edge", vec![edge]),
        ("restaurant-svc", addrs(&fleet.restaurants)),
        ("order-svc", addrs(&fleet.orders)),
        ("notify-svc", addrs(&fleet.notifications)),
    ];
    let mut exposed = String::new();
    for (_, targets) in &jobs {
        for target in targets {
            let text = reqwest::get(format!("http://{target}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            promtool_finds_nothing_in(&text).await;
            exposed.push_str(&text);
        }
    }
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("prometheus.yml");
    let mut scrape = "global:\n  scrape_interval: 1s\nscrape_configs:\n".to_owned();
    for (job, targets) in &jobs {
        let targets: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        scrape.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ));
    }
    std::fs::write(&config, scrape).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let prometheus = Prometheus {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{port}/api/v1/query"),
    };

    let found = eventually(
        "Prometheus to have scraped the edge",
        Duration::from_secs(30),
        || async {
            let answer = prometheus
                .query(
                    r#"dishpatch_edge_http_requests_total{route="/api/restaurants/{id}/menu",status="2xx"}"#,
                )
                .await?;
            Some(answer["data"]["result"].as_array()?.first()?.clone())
        },
    )
    .await;
    assert_eq!(found["metric"]["job"], "edge", "{found}");
    assert_eq!(found["metric"]["method"], "GET", "{found}");
    let counted: f64 = found["value"][1].as_str().unwrap().parse().unwrap();
    assert!(counted >= 1.0, "{found}");

    // The order's way through every service, counted where it went.
    let counted_everywhere = [
        ("7 targets up", "count(up == 1)"),
        (
            "restaurant-svc answered reads",
            r#"sum(dishpatch_grpc_server_handled_total{job="restaurant-svc",method="GetMenu",code="OK"})"#,
        ),
        (
            "order-svc placed the order",
            r#"sum(dishpatch_grpc_server_handled_total{job="order-svc",method="PlaceOrder",code="OK"})"#,
        ),
        (
            "order-svc priced it through its pool",
            r#"sum(dishpatch_pool_calls_total{job="order-svc",service="restaurant-svc",code="OK"})"#,
        ),
        (
            "order-svc stored it",
            r#"sum(dishpatch_store_query_duration_seconds_count{job="order-svc",query="insert_orders"})"#,
        ),
        (
            "order-svc relayed its notifications",
            r#"sum(dishpatch_outbox_relayed_total{job="order-svc"})"#,
        ),
        (
            "notify-svc recorded them",
            r#"sum(dishpatch_grpc_server_handled_total{job="notify-svc",method="RecordNotifications",code="OK"})"#,
        ),
        (
            "notify-svc's feed broadcast them",
            r#"sum(dishpatch_notify_tail_lag_seconds_count{job="notify-svc"})"#,
        ),
    ];
    for (what, promql) in counted_everywhere {
        let least = if what.starts_with('7') { 7.0 } else { 1.0 };
        eventually(what, Duration::from_secs(30), || async {
            let answer = prometheus.query(promql).await?;
            let value: f64 = answer["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
            (value >= least).then_some(())
        })
        .await;
    }

    // Every query of every Grafana dashboard runs on this Prometheus, and
    // names only metrics the stack exposes.
    for expr in dashboard_queries() {
        let promql = expr.replace("$__rate_interval", "1m").replace("$job", ".+");
        let answer = prometheus.query(&promql).await.unwrap();
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        for name in promql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if name.starts_with("dishpatch_") {
                assert!(exposed.contains(name), "the dashboard's {name} is not exposed");
            }
        }
    }
}

/// The addresses of `replicas`, as Prometheus targets.
fn addrs(replicas: &[test_support::process::ServiceProcess]) -> Vec<String> {
    replicas
        .iter()
        .map(|replica| replica.addr().to_string())
        .collect()
}

/// A Prometheus's query API.
struct Prometheus {
    http: reqwest::Client,
    url: String,
}

impl Prometheus {
    /// The answer to an instant query, once Prometheus answers.
    async fn query(&self, promql: &str) -> Option<Value> {
        let answer = self
            .http
            .get(&self.url)
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        answer.json().await.ok()
    }
}

/// The PromQL of every panel of every dashboard in `deploy/grafana/`.
fn dashboard_queries() -> Vec<String> {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana");
    let mut queries = Vec::new();
    for file in std::fs::read_dir(folder).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        let dashboard: Value = serde_json::from_str(&text).unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        let targets = panels
            .iter()
            .flat_map(|panel| panel["targets"].as_array().unwrap());
        queries.extend(targets.map(|target| target["expr"].as_str().unwrap().to_owned()));
    }
    assert!(queries.len() >= 12, "{queries:?}");
    queries
}
