//! `bench scale`: how every list and filter of the API answers over stores
//! at scale. Seeds order-svc's and notify-svc's stores ([`crate::seed`]):
//! SQLite files, or databases on a PostgreSQL cluster of its own (the
//! launcher's, [`stack::postgres::Cluster`]). Then it starts one replica of
//! each service and an edge on them, and asks each shape of query in turn,
//! one request at a time (its latency, not throughput), with parameters
//! drawn from what was seeded: lists of orders and notifications through
//! the edge, and `Subscribe` replays straight at notify-svc, timed to their
//! first notification.

use crate::{
    http::HttpConnection,
    seed::{SeedSettings, Seeded, seed},
    suite::{admin_token, start_stack},
};
use dishpatch::proto::notify::v1::{SubscribeRequest, notify_service_client::NotifyServiceClient};
use hdrhistogram::Histogram;
use serde::Serialize;
use stack::{Layout, Part, Plan};
use std::{
    fmt::Write,
    path::Path,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Requests of each shape before the ones measured.
const WARM_UP: usize = 20;

/// Which store the services keep their data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum ScaleStore {
    /// A SQLite file per service.
    Sqlite,
    /// A database per service on a PostgreSQL cluster made for the run.
    Postgres,
}

impl ScaleStore {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// How the stores are filled and asked.
#[derive(Debug, Clone)]
pub struct ScaleSettings {
    /// What to seed.
    pub seed: SeedSettings,
    /// Where.
    pub store: ScaleStore,
    /// Requests of each shape measured.
    pub requests: usize,
}

/// One shape of query, measured.
#[derive(Debug, Serialize)]
pub struct Shape {
    /// What was asked, as a request with placeholders.
    pub query: String,
    /// Latency, milliseconds: p50, p99, max.
    pub latency_ms: [f64; 3],
    /// Answers that found something (a page with an `id` in it, or a
    /// replay's first notification), of those measured.
    pub found: usize,
    /// Answers other than 200 (or, for a replay, no notification).
    pub errors: usize,
}

/// What `bench scale` measured.
#[derive(Debug, Serialize)]
pub struct ScaleReport {
    /// The store.
    pub store: ScaleStore,
    /// Orders seeded.
    pub orders: usize,
    /// Notifications seeded.
    pub notifications: usize,
    /// Each shape.
    pub shapes: Vec<Shape>,
}

impl ScaleReport {
    /// The report as a Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{} orders, {} notifications ({}); one request at a time.\n\n\
             | query | p50 ms | p99 ms | max ms | found | errors |\n|---|---:|---:|---:|---:|---:|\n",
            self.orders,
            self.notifications,
            self.store.name()
        );
        for shape in &self.shapes {
            let [p50, p99, max] = shape.latency_ms;
            let _ = writeln!(
                out,
                "| `{}` | {p50:.2} | {p99:.2} | {max:.2} | {} | {} |",
                shape.query, shape.found, shape.errors
            );
        }
        out
    }
}

/// A query through the edge: its shape as reported, and the path of one
/// request of it drawn with `random`.
type Query<'a> = (&'static str, Box<dyn Fn(&mut fastrand::Rng) -> String + 'a>);

/// Seeds, starts the stack with the `stack` binary, and measures.
pub async fn run(stack: &Path, settings: &ScaleSettings) -> Result<ScaleReport, String> {
    if settings.seed.orders == 0 || settings.seed.notifications == 0 {
        return Err("bench scale needs orders and notifications to ask for".into());
    }
    // Removed however the measurement ends: the stores take gigabytes.
    let data = tempfile::Builder::new()
        .prefix("dishpatch-scale-")
        .tempdir()
        .map_err(|error| format!("creating a folder for the stores: {error}"))?;
    match settings.store {
        ScaleStore::Sqlite => measure(stack, settings, data.path(), stack::Stores::Sqlite).await,
        ScaleStore::Postgres => {
            // Run as root, PostgreSQL runs as its own user, which must
            // reach its folder inside this one.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|error| format!("opening {} to PostgreSQL: {error}", data.path().display()))?;
            let cluster = stack::postgres::Cluster::start(&data.path().join("postgres"))?;
            let databases = Part::SERVICES.map(stack::database_name);
            cluster
                .serve(&databases, async |server| {
                    measure(stack, settings, data.path(), stack::Stores::Postgres(server)).await
                })
                .await
        }
    }
}

/// Seeds `stores`, starts the stack on them, and measures.
async fn measure(
    stack: &Path,
    settings: &ScaleSettings,
    data: &Path,
    stores: stack::Stores,
) -> Result<ScaleReport, String> {
    let layout = Layout {
        replicas: 1,
        edge_listen: "127.0.0.1:0".parse().expect("an address"),
        // One edge, on a port of its own.
        edges: 1,
        service_port: 0,
        data_dir: data.to_owned(),
        stores,
        extra_args: vec![(
            Part::Edge,
            ["--rate-limit-reads", "0"].map(str::to_owned).to_vec(),
        )],
    };
    let plan = Plan::new(&layout)?;
    let store_of = |part| plan.store_of(part).ok_or(format!("{part:?} has a store"));
    let seeded = seed(
        &store_of(Part::OrderSvc)?,
        &store_of(Part::NotifySvc)?,
        &settings.seed,
    )
    .await?;
    let token = admin_token(data)?;
    let started = start_stack(stack, &plan).await?;
    let address_of = |name: &str| {
        started
            .iter()
            .find(|started| started.name.starts_with(name))
            .map(|started| started.addr)
            .ok_or(format!("the plan has {name}"))
    };
    let edge = address_of("edge")?.to_string();
    let notify = address_of("notify-svc")?;

    let mut shapes = Vec::new();
    for (query, path) in queries(&seeded) {
        eprintln!("{query} …");
        shapes.push(over_http(&edge, &token, query, &path, settings.requests).await);
    }
    let mut notify = NotifyServiceClient::connect(format!("http://{notify}"))
        .await
        .map_err(|error| format!("connecting to notify-svc: {error}"))?;
    for (query, request) in replays(&seeded) {
        eprintln!("{query} …");
        shapes.push(replay(&mut notify, query, &request, settings.requests).await);
    }
    drop(started);
    Ok(ScaleReport {
        store: settings.store,
        orders: settings.seed.orders,
        notifications: settings.seed.notifications,
        shapes,
    })
}

/// Every list and filter the REST API offers, over what was seeded.
fn queries(seeded: &Seeded) -> Vec<Query<'_>> {
    let restaurant =
        |random: &mut fastrand::Rng| seeded.restaurants[random.usize(..seeded.restaurants.len())].clone();
    let customer =
        |random: &mut fastrand::Rng| seeded.customers[random.usize(..seeded.customers.len())].clone();
    // A seeded order: (id, restaurant, customer).
    let order = |random: &mut fastrand::Rng| seeded.sample[random.usize(..seeded.sample.len())].clone();
    let seq = |random: &mut fastrand::Rng| random.usize(1..=seeded.notifications.max(1));
    let last_day = rfc3339(seeded.span_micros.1 - 24 * 3600 * 1_000_000);
    vec![
        (
            "GET /api/orders?customer={customer}",
            Box::new(move |r| format!("/api/orders?customer={}", customer(r))),
        ),
        (
            "GET /api/orders?customer={nobody}",
            Box::new(|r| format!("/api/orders?customer=nobody-{}", r.u32(..))),
        ),
        (
            "GET /api/orders?restaurantId={r}",
            Box::new(move |r| format!("/api/orders?restaurantId={}", restaurant(r))),
        ),
        (
            "GET /api/orders?status=placed (2%)",
            Box::new(|_| "/api/orders?status=placed".to_owned()),
        ),
        (
            "GET /api/orders?status=delivered (80%)",
            Box::new(|_| "/api/orders?status=delivered".to_owned()),
        ),
        (
            "GET /api/orders?restaurantId={r}&status=placed",
            Box::new(move |r| format!("/api/orders?restaurantId={}&status=placed", restaurant(r))),
        ),
        (
            "GET /api/orders?customer={c}&status=delivered",
            Box::new(move |r| format!("/api/orders?customer={}&status=delivered", customer(r))),
        ),
        (
            "GET /api/orders?restaurantId={r}&customer={c}",
            Box::new(move |r| {
                let (_, restaurant, customer) = order(r);
                format!("/api/orders?restaurantId={restaurant}&customer={customer}")
            }),
        ),
        (
            "GET /api/orders?restaurantId={r}&customer={c}&status=delivered",
            Box::new(move |r| {
                let (_, restaurant, customer) = order(r);
                format!("/api/orders?restaurantId={restaurant}&customer={customer}&status=delivered")
            }),
        ),
        (
            "GET /api/orders?cursor={deep}",
            Box::new(move |r| format!("/api/orders?cursor={}", order(r).0)),
        ),
        (
            "GET /api/orders?restaurantId={r}&cursor={deep}",
            Box::new(move |r| {
                let (id, restaurant, _) = order(r);
                format!("/api/orders?restaurantId={restaurant}&cursor={id}")
            }),
        ),
        (
            "GET /api/orders?status=delivered&cursor={deep}",
            Box::new(move |r| format!("/api/orders?status=delivered&cursor={}", order(r).0)),
        ),
        (
            "GET /api/notifications?orderId={o}",
            Box::new(move |r| format!("/api/notifications?orderId={}", order(r).0)),
        ),
        (
            "GET /api/notifications?recipient={customer}",
            Box::new(move |r| format!("/api/notifications?recipient={}", customer(r))),
        ),
        (
            "GET /api/notifications?recipient=restaurant:{r}",
            Box::new(move |r| format!("/api/notifications?recipient=restaurant:{}", restaurant(r))),
        ),
        (
            "GET /api/notifications?recipient={nobody}",
            Box::new(|r| format!("/api/notifications?recipient=nobody-{}", r.u32(..))),
        ),
        ("GET /api/notifications?since={last day}", {
            let since = last_day.clone();
            Box::new(move |_| format!("/api/notifications?since={since}"))
        }),
        (
            "GET /api/notifications?recipient=restaurant:{r}&since={last day}",
            {
                let since = last_day.clone();
                Box::new(move |r| {
                    format!(
                        "/api/notifications?recipient=restaurant:{}&since={since}",
                        restaurant(r)
                    )
                })
            },
        ),
        (
            "GET /api/notifications?cursor={deep}",
            Box::new(move |r| format!("/api/notifications?cursor={}", seq(r))),
        ),
        (
            "GET /api/notifications?recipient=restaurant:{r}&cursor={deep}",
            Box::new(move |r| {
                format!(
                    "/api/notifications?recipient=restaurant:{}&cursor={}",
                    restaurant(r),
                    seq(r)
                )
            }),
        ),
    ]
}

/// `Subscribe` replays, each drawn with the generator.
type Replay<'a> = Box<dyn Fn(&mut fastrand::Rng) -> SubscribeRequest + 'a>;

/// The replays a live stream starts with.
fn replays(seeded: &Seeded) -> Vec<(&'static str, Replay<'_>)> {
    let order = |random: &mut fastrand::Rng| seeded.sample[random.usize(..seeded.sample.len())].clone();
    vec![
        (
            "Subscribe orderId={o} from seq 0, to its first",
            Box::new(move |r| SubscribeRequest {
                order_id: order(r).0,
                ..SubscribeRequest::default()
            }),
        ),
        (
            "Subscribe recipient=restaurant:{r} from a deep seq, to its first",
            Box::new(move |r| {
                let (_, restaurant, _) = order(r);
                SubscribeRequest {
                    recipient: format!("restaurant:{restaurant}"),
                    after_seq: r.u64(1..=(seeded.notifications as u64 / 2).max(1)),
                    ..SubscribeRequest::default()
                }
            }),
        ),
    ]
}

/// `count` requests of `query` over one keep-alive connection.
async fn over_http(
    edge: &str,
    token: &Arc<str>,
    query: &'static str,
    path: &dyn Fn(&mut fastrand::Rng) -> String,
    count: usize,
) -> Shape {
    let mut connection = HttpConnection::new(edge, Some(token.clone()));
    let mut random = fastrand::Rng::with_seed(11);
    let mut latencies = Histogram::<u64>::new(3).expect("a histogram");
    let (mut found, mut errors) = (0, 0);
    for n in 0..WARM_UP + count {
        let path = path(&mut random);
        let started = Instant::now();
        let answer = connection.get(&path).await;
        if n >= WARM_UP {
            record(&mut latencies, started.elapsed());
            match answer {
                Ok(body) => found += usize::from(body.windows(5).any(|window| window == b"\"id\":")),
                Err(_) => errors += 1,
            }
        }
    }
    shape(query, &latencies, found, errors)
}

/// `count` replays of `request`, each timed to its first notification.
async fn replay(
    notify: &mut NotifyServiceClient<tonic::transport::Channel>,
    query: &'static str,
    request: &dyn Fn(&mut fastrand::Rng) -> SubscribeRequest,
    count: usize,
) -> Shape {
    let mut random = fastrand::Rng::with_seed(13);
    let mut latencies = Histogram::<u64>::new(3).expect("a histogram");
    let (mut found, mut errors) = (0, 0);
    for n in 0..WARM_UP + count {
        let request = request(&mut random);
        let started = Instant::now();
        let first = async {
            let mut stream = notify.subscribe(request).await.ok()?.into_inner();
            stream.message().await.ok()?
        };
        let first = tokio::time::timeout(Duration::from_secs(10), first).await;
        if n >= WARM_UP {
            record(&mut latencies, started.elapsed());
            match first {
                Ok(Some(_)) => found += 1,
                _ => errors += 1,
            }
        }
    }
    shape(query, &latencies, found, errors)
}

fn record(latencies: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    latencies.record(micros.max(1)).expect("a latency in range");
}

fn shape(query: &'static str, latencies: &Histogram<u64>, found: usize, errors: usize) -> Shape {
    let ms = |micros: u64| micros as f64 / 1000.0;
    Shape {
        query: query.to_owned(),
        latency_ms: [
            ms(latencies.value_at_quantile(0.5)),
            ms(latencies.value_at_quantile(0.99)),
            ms(latencies.max()),
        ],
        found,
        errors,
    }
}

/// `micros` since the Unix epoch as RFC 3339.
fn rfc3339(micros: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_micros(at.max(SystemTime::UNIX_EPOCH)).to_string()
}
