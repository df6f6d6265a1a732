//! The edge's metrics: requests counted by route template, method and
//! status class (never by raw path), checked by promtool and scraped by a
//! real Prometheus (Debian's `prometheus` package, which `./scripts/test`
//! unpacks where it is missing), which also runs the Grafana dashboard's
//! queries.

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
        value_of(&text, "dishpatch_edge_http_connections_open").is_some(),
        "{text}"
    );
    for service in ["restaurant-svc", "order-svc", "notify-svc"] {
        let series = |name: &str| format!(r#"dishpatch_edge_{name}{{service="{service}"}}"#);
        assert_eq!(value_of(&text, &series("replicas_known")), Some(2.0), "{text}");
        assert_eq!(
            value_of(&text, &series("replicas_in_rotation")),
            Some(2.0),
            "{text}"
        );
        assert_eq!(value_of(&text, &series("service_panicking")), Some(0.0), "{text}");
    }
    assert!(!text.contains("127.0.0.1"), "no replica is named: {text}");

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

    // A replica that dies leaves the rotation, and the count.
    fleet.restaurants[0].kill().await;
    eventually(
        "the dead replica to leave the count",
        Duration::from_secs(10),
        || async {
            let text = fleet.get("/metrics").await.text().await.ok()?;
            let series = r#"dishpatch_edge_replicas_in_rotation{service="restaurant-svc"}"#;
            (value_of(&text, series)? == 1.0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_edge_and_finds_requests_counted() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let fleet = Fleet::start().await;
    assert_eq!(fleet.get(A_RESTAURANT).await.status(), 200);

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("prometheus.yml");
    let edge = fleet.url("").trim_start_matches("http://").to_owned();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: edge\n    static_configs:\n      - targets: ['{edge}']\n"
        ),
    )
    .unwrap();
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

    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        r#"dishpatch_edge_http_requests_total{route="/api/restaurants/{id}",status="2xx"}"#
    );
    let http = reqwest::Client::new();
    let found = eventually(
        "Prometheus to have scraped the edge",
        Duration::from_secs(30),
        || async {
            let answer: Value = http.get(&query).send().await.ok()?.json().await.ok()?;
            let result = answer["data"]["result"].as_array()?.first()?.clone();
            Some(result)
        },
    )
    .await;
    assert_eq!(found["metric"]["job"], "edge", "{found}");
    assert_eq!(found["metric"]["method"], "GET", "{found}");
    let counted: f64 = found["value"][1].as_str().unwrap().parse().unwrap();
    assert!(counted >= 1.0, "{found}");

    // Every query of the Grafana dashboard runs on this Prometheus, and
    // names only metrics the edge exposes.
    let exposed = fleet.get("/metrics").await.text().await.unwrap();
    for expr in dashboard_queries() {
        let promql = expr.replace("$__rate_interval", "1m").replace("$job", ".+");
        let answer: Value = http
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", &promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        for name in promql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if name.starts_with("dishpatch_") {
                assert!(exposed.contains(name), "the dashboard's {name} is not exposed");
            }
        }
    }
}

/// The PromQL of every panel of `deploy/grafana/dishpatch-edge.json`.
fn dashboard_queries() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dishpatch-edge.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(queries.len() >= 6, "{queries:?}");
    queries
}
