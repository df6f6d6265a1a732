//! `bench fanout`: live notification streams at scale. Starts the stack
//! (two replicas of each service, an edge in front allowing enough
//! streams), then for each number of subscribers N: places N orders, opens
//! N Server-Sent Event streams through the edge, each following one order
//! (`/api/notifications/stream?orderId=…`), moves every order to
//! `accepted` at a steady rate, and measures the delay from each PATCH's
//! answer to its `order.accepted` event reaching its stream, and the
//! resident memory of the edge and of the notify-svc replicas while the
//! streams are open.

use crate::{
    http::HttpConnection,
    load::Outcome,
    scenario::{Catalog, Operation},
    suite::{Started, admin_token, start_stack, wait_for_catalog},
    target::Target,
};
use hdrhistogram::Histogram;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use stack::{Layout, Part, Plan};
use std::{
    fmt::Write,
    path::Path,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};
use tokio::{net::TcpStream, sync::Semaphore, task::JoinSet, time::Instant};

/// Connections placing and moving orders at once.
const WORKERS: usize = 32;
/// How long every stream has to open, and every event to arrive.
const PATIENCE: Duration = Duration::from_secs(60);
/// Tries to place or move an order the edge times out or refuses for now.
const TRIES: u32 = 4;
/// Streams being opened at once.
const OPENING: usize = 128;
/// Tries to open a stream the edge refuses for now.
const OPEN_TRIES: u32 = 6;

/// How the fan-out is measured.
#[derive(Debug, Clone)]
pub struct FanoutSettings {
    /// The numbers of subscribers, one measurement each.
    pub subscribers: Vec<usize>,
    /// PATCHes a second moving the orders.
    pub rate: f64,
}

/// One number of subscribers, measured.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Streams asked for.
    pub subscribers: usize,
    /// Streams that opened.
    pub opened: usize,
    /// `order.accepted` events that arrived.
    pub delivered: usize,
    /// Delay from the PATCH's answer to the event, milliseconds: p50, p99,
    /// max (0 when the event came first).
    pub delay_ms: [f64; 3],
    /// The edge's resident memory, MiB: with the streams open, and at most
    /// during the measurement.
    pub edge_mib: [f64; 2],
    /// The larger of the notify-svc replicas' resident memory, MiB, as for
    /// the edge.
    pub notify_mib: [f64; 2],
}

/// What `bench fanout` measured.
#[derive(Debug, Serialize)]
pub struct FanoutReport {
    /// Each number of subscribers.
    pub levels: Vec<Level>,
    /// The PATCH rate.
    pub rate: f64,
}

/// Runs the fan-out measurement with the `stack` binary.
pub async fn run(stack: &Path, settings: &FanoutSettings) -> Result<FanoutReport, String> {
    let most = settings.subscribers.iter().copied().max().unwrap_or(0);
    // This process holds a connection per stream, the edge one per stream
    // and one upstream stream each: a few hundred spare for the rest.
    crate::idle::raise_fd_limit(most as u64 * 2 + 512)?;
    let data = std::env::temp_dir().join(format!("dishpatch-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&data).map_err(|error| format!("creating {}: {error}", data.display()))?;
    let token = admin_token(&data)?;
    let streams = (most + 16).to_string();
    let layout = Layout {
        replicas: 2,
        edge_listen: "127.0.0.1:0".parse().expect("an address"),
        // One edge, on a port of its own.
        edges: 1,
        service_port: 0,
        data_dir: data.clone(),
        stores: stack::Stores::Sqlite,
        extra_args: vec![(
            Part::Edge,
            [
                "--rate-limit-reads",
                "0",
                "--rate-limit-writes",
                "0",
                "--max-streams",
                &streams,
                "--max-streams-per-caller",
                &streams,
            ]
            .map(str::to_owned)
            .to_vec(),
        )],
    };
    let started = start_stack(stack, &Plan::new(&layout)?).await?;
    let edge = started
        .iter()
        .find(|started| started.name.starts_with("edge"))
        .ok_or("the plan has an edge")?;
    let target: Target = format!("http://{}", edge.addr).parse()?;
    let catalog = wait_for_catalog(&target).await?;
    let Target::Http { authority } = &target else {
        return Err("the edge is an HTTP target".into());
    };
    let mut levels = Vec::new();
    for &subscribers in &settings.subscribers {
        eprintln!("fan-out to {subscribers} subscribers …");
        let memory = || {
            let of = |prefix: &str| {
                started
                    .iter()
                    .filter(|started| started.name.starts_with(prefix))
                    .filter_map(Started::rss_mib)
                    .fold(0.0, f64::max)
            };
            (of("edge"), of("notify-svc"))
        };
        levels.push(measure(authority, &token, &catalog, subscribers, settings.rate, memory).await?);
    }
    drop(started);
    std::fs::remove_dir_all(&data).ok();
    Ok(FanoutReport {
        levels,
        rate: settings.rate,
    })
}

/// One level: `subscribers` orders and streams.
async fn measure(
    authority: &str,
    token: &Arc<str>,
    catalog: &Catalog,
    subscribers: usize,
    rate: f64,
    memory: impl Fn() -> (f64, f64),
) -> Result<Level, String> {
    let orders = place_orders(authority, token, catalog, subscribers).await?;
    let arrived: Arc<[OnceLock<Instant>]> = (0..subscribers).map(|_| OnceLock::new()).collect();
    let opened = Arc::new(AtomicUsize::new(0));
    // Subscribers arrive as a crowd does, not all in one instant: at most
    // OPENING streams are being opened at once.
    let opening = Arc::new(Semaphore::new(OPENING));
    let mut streams = JoinSet::new();
    for (index, order_id) in orders.iter().enumerate() {
        let (authority, token, order_id) = (authority.to_owned(), token.clone(), order_id.clone());
        let (arrived, opened, opening) = (arrived.clone(), opened.clone(), opening.clone());
        streams.spawn(async move {
            let subscriber = Subscriber {
                authority: &authority,
                token: &token,
                order_id: &order_id,
                opening: &opening,
            };
            if let Err(error) = subscriber.follow(&opened, &arrived[index]).await {
                eprintln!("stream for {order_id}: {error}");
            }
        });
    }
    let waited = Instant::now();
    while opened.load(Relaxed) < subscribers && waited.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Replays settle before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (edge_open, notify_open) = memory();
    let (mut edge_peak, mut notify_peak) = (edge_open, notify_open);

    let answered = move_orders(authority, token, &orders, rate);
    tokio::pin!(answered);
    let answered = loop {
        tokio::select! {
            answered = &mut answered => break answered?,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let (edge, notify) = memory();
                (edge_peak, notify_peak) = (edge_peak.max(edge), notify_peak.max(notify));
            }
        }
    };
    let waited = Instant::now();
    while arrived.iter().any(|arrival| arrival.get().is_none()) && waited.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (edge, notify) = memory();
        (edge_peak, notify_peak) = (edge_peak.max(edge), notify_peak.max(notify));
    }
    streams.abort_all();

    let mut delays = Histogram::<u64>::new(3).expect("a histogram");
    let mut delivered = 0;
    for (arrival, answer) in arrived.iter().zip(&answered) {
        if let Some(arrival) = arrival.get() {
            delivered += 1;
            let delay = arrival.saturating_duration_since(*answer).as_micros() as u64;
            delays.record(delay.max(1)).expect("a delay in range");
        }
    }
    let ms = |quantile: f64| delays.value_at_quantile(quantile) as f64 / 1000.0;
    Ok(Level {
        subscribers,
        opened: opened.load(Relaxed),
        delivered,
        delay_ms: [ms(0.5), ms(0.99), delays.max() as f64 / 1000.0],
        edge_mib: [edge_open, edge_peak],
        notify_mib: [notify_open, notify_peak],
    })
}

/// Places `count` orders; their ids.
async fn place_orders(
    authority: &str,
    token: &Arc<str>,
    catalog: &Catalog,
    count: usize,
) -> Result<Vec<String>, String> {
    let (restaurant_id, items) = catalog.restaurants.first().ok_or("a restaurant to order from")?;
    let item = items.first().ok_or("an item to order")?;
    // Keys unique to this run: the time it started, and the order's number.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let mut connection = HttpConnection::new(authority, Some(token.clone()));
        let (next, restaurant_id, item) = (next.clone(), restaurant_id.clone(), item.clone());
        workers.spawn(async move {
            let mut placed = Vec::new();
            loop {
                let number = next.fetch_add(1, Relaxed);
                if number >= count {
                    break;
                }
                let order = Operation::PlaceOrder {
                    restaurant_id: restaurant_id.clone(),
                    customer: "fan".to_owned(),
                    items: vec![(item.clone(), 1)],
                    idempotency_key: format!("fanout-{run:x}-{number}"),
                };
                // The idempotency key places the order once, however often
                // it is sent.
                let id = send_until(
                    &mut connection,
                    &order,
                    "placing an order",
                    |outcome, _| match outcome {
                        Outcome::Placed(Some(id)) => Ok(id),
                        outcome => Err(outcome),
                    },
                )
                .await?;
                placed.push(id);
            }
            Ok::<_, String>(placed)
        });
    }
    let mut orders = Vec::with_capacity(count);
    while let Some(placed) = workers.join_next().await {
        orders.extend(placed.map_err(|error| error.to_string())??);
    }
    Ok(orders)
}

/// Sends `operation` until `done` takes its outcome (given the tries so far),
/// at most [`TRIES`] times, waiting longer after each: a timeout or a
/// refusal under load is tried again. `what` names it in the error.
async fn send_until<T>(
    connection: &mut HttpConnection,
    operation: &Operation,
    what: &str,
    done: impl Fn(Outcome, u32) -> Result<T, Outcome>,
) -> Result<T, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        match done(connection.send(operation).await, tries) {
            Ok(done) => return Ok(done),
            Err(outcome) if tries >= TRIES => return Err(format!("{what}, {tries} tries: {outcome:?}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100) * tries).await,
        }
    }
}

/// Moves each order to `accepted`, `rate` a second; when each was answered.
/// A move the edge times out or refuses for now is tried again; a retry
/// told the order cannot move (409) finds an earlier try's move done.
async fn move_orders(
    authority: &str,
    token: &Arc<str>,
    orders: &[String],
    rate: f64,
) -> Result<Vec<Instant>, String> {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let orders: Arc<[String]> = orders.into();
    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let mut connection = HttpConnection::new(authority, Some(token.clone()));
        let (next, orders) = (next.clone(), orders.clone());
        workers.spawn(async move {
            let mut answered = Vec::new();
            loop {
                let index = next.fetch_add(1, Relaxed);
                let Some(order_id) = orders.get(index) else {
                    return Ok::<_, String>(answered);
                };
                tokio::time::sleep_until(start + Duration::from_secs_f64(index as f64 / rate)).await;
                let accept = Operation::MoveOrder {
                    order_id: order_id.clone(),
                    status: "accepted",
                };
                send_until(
                    &mut connection,
                    &accept,
                    &format!("moving {order_id}"),
                    |outcome, tries| match outcome {
                        Outcome::Ok => Ok(()),
                        Outcome::Failed(failure) if tries > 1 && failure == "http 409" => Ok(()),
                        outcome => Err(outcome),
                    },
                )
                .await?;
                answered.push((index, Instant::now()));
            }
        });
    }
    let mut answered = vec![start; orders.len()];
    while let Some(moved) = workers.join_next().await {
        for (index, at) in moved.map_err(|error| error.to_string())?? {
            answered[index] = at;
        }
    }
    Ok(answered)
}

/// One subscriber: a stream following one order.
struct Subscriber<'a> {
    authority: &'a str,
    token: &'a str,
    order_id: &'a str,
    opening: &'a Semaphore,
}

impl Subscriber<'_> {
    /// Opens the stream, as a browser's page would: again after a refusal
    /// that says to (503, 429) or a timeout (504), waiting longer each
    /// time.
    async fn open(&self) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let _opening = self.opening.acquire().await.map_err(|error| error.to_string())?;
        let mut wait = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            tries += 1;
            let stream = TcpStream::connect(self.authority)
                .await
                .map_err(|error| error.to_string())?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| error.to_string())?;
            tokio::spawn(connection);
            let request = Request::get(format!("/api/notifications/stream?orderId={}", self.order_id))
                .header(header::HOST, self.authority)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                .body(Empty::<Bytes>::new())
                .map_err(|error| error.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| error.to_string())?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if !matches!(status.as_u16(), 429 | 503 | 504) || tries >= OPEN_TRIES {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                return Err(format!(
                    "http {status} after {tries} tries: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }

    /// Follows the order's notifications until its `order.accepted` arrives.
    async fn follow(&self, opened: &AtomicUsize, arrived: &OnceLock<Instant>) -> Result<(), String> {
        let response = self.open().await?;
        opened.fetch_add(1, Relaxed);
        read_until_accepted(response, arrived).await
    }
}

/// Reads a stream until its `order.accepted` event, noting when it came.
async fn read_until_accepted(
    response: hyper::Response<hyper::body::Incoming>,
    arrived: &OnceLock<Instant>,
) -> Result<(), String> {
    let mut body = response.into_body();
    let mut unread = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| error.to_string())?;
        if let Some(data) = frame.data_ref() {
            unread.extend_from_slice(data);
            if unread
                .windows(22)
                .any(|window| window == b"event: order.accepted\n")
            {
                let _ = arrived.set(Instant::now());
                return Ok(());
            }
            // Keep only a possible beginning of the event line.
            let keep = unread.len().saturating_sub(21);
            unread.drain(..keep);
        }
    }
    Err("the stream ended first".into())
}

impl FanoutReport {
    /// The report as a Markdown table, for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Orders moved to `accepted` at {} a second; delay from the PATCH's answer to its event at the stream.\n\n\
             | subscribers | opened | events | p50 ms | p99 ms | max ms | edge MiB (open / peak) | notify-svc MiB (open / peak) |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
            self.rate
        );
        for level in &self.levels {
            let [p50, p99, max] = level.delay_ms;
            writeln!(
                out,
                "| {} | {} | {} | {p50:.1} | {p99:.1} | {max:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
                level.subscribers,
                level.opened,
                level.delivered,
                level.edge_mib[0],
                level.edge_mib[1],
                level.notify_mib[0],
                level.notify_mib[1],
            )
            .expect("writing to a String does not fail");
        }
        out
    }
}
