//! The edge's integration tests: real service replicas as OS processes (two
//! of each, sharing a SQLite file per service), the edge in front on
//! 127.0.0.1:0, and a real HTTP client.

mod access;
mod balancing;
mod browser;
mod contract;
mod errors;
mod failover;
mod frozen;
mod live;
mod metrics;
mod otlp;
mod overload;
mod router;
mod routes;
mod trace_context;

use dishpatch_pool::Strategy;
use serde_json::Value;
use std::{net::SocketAddr, time::Duration};
use test_support::{StackOptions, TestStack, eventually, spawn_stack};
use tokio_util::sync::CancellationToken;

const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// A seeded restaurant.
const A_RESTAURANT: &str = "/api/restaurants/rst_000000000000700080005eed00010000";

/// Replicas of the three services (the launcher's plan, as processes) and
/// an edge in front of them.
struct Fleet {
    stack: TestStack,
    edge_addr: SocketAddr,
    edge_shutdown: CancellationToken,
    http: reqwest::Client,
}

impl std::ops::Deref for Fleet {
    type Target = TestStack;

    fn deref(&self) -> &TestStack {
        &self.stack
    }
}

impl std::ops::DerefMut for Fleet {
    fn deref_mut(&mut self) -> &mut TestStack {
        &mut self.stack
    }
}

/// How a test wants its fleet.
struct FleetOptions {
    stack: StackOptions,
    restaurant_balance: Strategy,
    /// Weights of the restaurant replicas, for weighted balancing.
    restaurant_weights: Vec<u32>,
    /// Whether the edge hedges reads (the picker's turns are exact only
    /// without).
    hedge_reads: bool,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            stack: StackOptions::default(),
            restaurant_balance: Strategy::RoundRobin,
            restaurant_weights: vec![],
            hedge_reads: true,
        }
    }
}

impl Fleet {
    async fn start() -> Self {
        Self::start_with(FleetOptions::default()).await
    }

    async fn start_with(options: FleetOptions) -> Self {
        let stack = spawn_stack(options.stack).await;
        let mut fleet = Self {
            // The tests of what the API does act as an admin, who may do
            // everything; `access` tests who may do what.
            http: client_of(&stack.admin_token()),
            stack,
            edge_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            edge_shutdown: CancellationToken::new(),
        };
        let mut config = fleet.edge_config();
        config.restaurant_balance = options.restaurant_balance;
        config.hedge_reads = options.hedge_reads;
        for (spec, weight) in config
            .restaurant_replicas
            .iter_mut()
            .zip(options.restaurant_weights)
        {
            spec.weight = weight;
        }
        let edge = edge::build(config).await.expect("the edge builds");
        fleet.edge_addr = edge.local_addr();
        tokio::spawn(edge.run(fleet.edge_shutdown.clone()));
        fleet.wait_until_healthy().await;
        fleet
    }

    /// The settings of an edge in front of this fleet's replicas, as the
    /// plan lays it out for tests: round-robin, probes every 100 ms, a 3 s
    /// deadline, no slow start.
    fn edge_config(&self) -> edge::Config {
        use clap::Parser;
        edge::Config::parse_from(self.stack.edge_args())
    }

    /// Runs another edge with `config` until the fleet is dropped; returns
    /// its base URL.
    async fn extra_edge(&self, config: edge::Config) -> String {
        let edge = edge::build(config).await.expect("the edge builds");
        let base = format!("http://{}", edge.local_addr());
        tokio::spawn(edge.run(self.edge_shutdown.clone()));
        base
    }

    async fn wait_until_healthy(&self) {
        eventually(
            "the edge to find every service healthy",
            Duration::from_secs(15),
            || async { (self.get("/health").await.status() == 200).then_some(()) },
        )
        .await;
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.edge_addr)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the edge answers")
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("the edge answers")
    }

    /// The `restaurant-svc` replica states in `/health`, by address.
    async fn restaurant_states(&self) -> Vec<(String, String)> {
        let health: Value = self.get("/health").await.json().await.unwrap();
        health["services"]["restaurant-svc"]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["addr"].as_str().unwrap().to_owned(),
                    r["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The first seeded restaurant's id and its first two available items.
    async fn menu(&self) -> (String, Vec<Value>) {
        let listed = self.get_json("/api/restaurants?cuisine=japanese").await;
        let id = listed["restaurants"][0]["id"].as_str().unwrap().to_owned();
        let menu = self.get_json(&format!("/api/restaurants/{id}/menu")).await;
        let items = menu["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["available"] == true)
            .take(2)
            .cloned()
            .collect();
        (id, items)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.edge_shutdown.cancel();
    }
}

/// An HTTP client that sends `token` with every request.
fn client_of(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// The replica that served a response.
fn served_by(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-served-by")
        .expect("x-served-by is set")
        .to_str()
        .unwrap()
        .to_owned()
}
