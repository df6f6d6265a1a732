//! Clients of the edge until told to stop: readers going through every
//! service in turn, and a customer placing orders, each order with a key of
//! its own. What each request got is kept, to be checked afterwards.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Readers at once.
const READERS: usize = 4;
/// Order placers at once.
const PLACERS: usize = 2;
/// Each client's HTTP requests may take this long, longer than the edge's
/// deadline: the edge answers first.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What clients of the shop need: the edge, a customer's token, and what
/// there is to order and read.
#[derive(Debug, Clone)]
pub(super) struct Shop {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
    pub(super) restaurant: String,
    pub(super) item: String,
    /// An order of the customer's, to read.
    pub(super) order: String,
}

/// An order a client placed, or tried to.
#[derive(Debug, Clone)]
pub(super) struct Placing {
    pub(super) key: String,
    pub(super) started: Instant,
    pub(super) finished: Instant,
    /// The order's id, or what the client was told instead.
    pub(super) result: Result<String, String>,
}

/// What every request of a load got.
#[derive(Debug, Default)]
pub(super) struct Outcomes {
    pub(super) reads: usize,
    /// Reads that failed: when they started, and how they failed.
    pub(super) failed_reads: Vec<(Instant, String)>,
    pub(super) orders: Vec<Placing>,
}

impl Outcomes {
    /// Orders the client was not told were placed.
    pub(super) fn failed_orders(&self) -> impl Iterator<Item = &Placing> {
        self.orders.iter().filter(|order| order.result.is_err())
    }

    /// Every failed request: when it started, and how it failed.
    pub(super) fn failures(&self) -> impl Iterator<Item = (Instant, &str)> {
        let reads = self
            .failed_reads
            .iter()
            .map(|(started, error)| (*started, error.as_str()));
        let orders = self
            .failed_orders()
            .filter_map(|order| Some((order.started, order.result.as_ref().err()?.as_str())));
        reads.chain(orders)
    }
}

/// A load running until [`Load::stop`].
pub(super) struct Load {
    stop: CancellationToken,
    clients: JoinSet<Outcomes>,
}

impl Shop {
    /// Places the order with `key`: its id, or what went wrong.
    pub(super) async fn place(&self, key: &str) -> Result<String, String> {
        let order =
            json!({"restaurantId": self.restaurant, "items": [{"menuItemId": self.item, "quantity": 1}]});
        let request = self
            .http
            .post(format!("{}/api/orders", self.base))
            .header("idempotency-key", key)
            .json(&order);
        let placed = self
            .send(request, StatusCode::CREATED, "POST /api/orders")
            .await?;
        placed["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("POST /api/orders: no id in {placed}"))
    }

    /// GETs `path` as the customer: the body, or what went wrong.
    pub(super) async fn get(&self, path: &str) -> Result<Value, String> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, StatusCode::OK, &format!("GET {path}")).await
    }

    /// Sends `request` (`what`, for failures) as the customer: the body of
    /// an answer with status `expected`, or what went wrong.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
        what: &str,
    ) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(CLIENT_TIMEOUT)
            .send()
            .await
            .map_err(|error| format!("{what}: {error:?}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|error| format!("{what}: {status}: {error:?}"))?;
        if status == expected {
            Ok(body)
        } else {
            Err(format!("{what}: {status}: {body}"))
        }
    }

    /// Every item of a list, page after page (`field` names the list).
    pub(super) async fn all(&self, path: &str, field: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .get(&format!("{path}&limit=100&cursor={cursor}"))
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            items.extend(page[field].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => return items,
            }
        }
    }

    /// What readers read, in turn: through restaurant-svc, order-svc and
    /// notify-svc.
    fn reads(&self) -> [String; 4] {
        [
            format!("/api/restaurants/{}", self.restaurant),
            format!("/api/restaurants/{}/menu", self.restaurant),
            format!("/api/orders/{}", self.order),
            format!("/api/notifications?orderId={}", self.order),
        ]
    }
}

impl Load {
    /// Starts the readers and placers; keys of orders start with `phase`.
    pub(super) fn start(shop: &Shop, phase: &str) -> Self {
        let stop = CancellationToken::new();
        let mut clients = JoinSet::new();
        for reader in 0..READERS {
            let (shop, stop) = (shop.clone(), stop.clone());
            clients.spawn(async move {
                let mut outcomes = Outcomes::default();
                for path in shop.reads().iter().cycle().skip(reader) {
                    if stop.is_cancelled() {
                        break;
                    }
                    outcomes.reads += 1;
                    let started = Instant::now();
                    if let Err(error) = shop.get(path).await {
                        outcomes.failed_reads.push((started, error));
                    }
                }
                outcomes
            });
        }
        for placer in 0..PLACERS {
            let (shop, stop, phase) = (shop.clone(), stop.clone(), phase.to_owned());
            clients.spawn(async move {
                let mut outcomes = Outcomes::default();
                for n in 0.. {
                    if stop.is_cancelled() {
                        break;
                    }
                    let key = format!("{phase}-{placer}-{n}");
                    let started = Instant::now();
                    let result = shop.place(&key).await;
                    let finished = Instant::now();
                    outcomes.orders.push(Placing {
                        key,
                        started,
                        finished,
                        result,
                    });
                }
                outcomes
            });
        }
        Self { stop, clients }
    }

    /// Stops every client once its request in flight is answered: what
    /// they got.
    pub(super) async fn stop(self) -> Outcomes {
        self.stop.cancel();
        let mut all = Outcomes::default();
        for outcomes in self.clients.join_all().await {
            all.reads += outcomes.reads;
            all.failed_reads.extend(outcomes.failed_reads);
            all.orders.extend(outcomes.orders);
        }
        all
    }
}
