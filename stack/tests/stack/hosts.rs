//! dishpatch on several hosts: the hosts are network namespaces on one
//! bridge, their names are served by a real dnsmasq, and every replica of
//! every service shares one PostgreSQL on a host of its own. Under a load
//! of reads and orders through the edge, a replica host is taken off the
//! network and brought back, a new host joins by its DNS record, and a host
//! is drained; no order the shop acknowledged is lost or placed twice, and
//! only a lost host fails requests (those it held).
//!
//! The parts speak mutual TLS, with certificates `stack certs` makes: a
//! caller on the network without one reaches no service, and one with
//! another part's certificate cannot reprice a menu item.
//!
//! Every process runs in the test network, the test's own requests too:
//! its thread enters the client host. Needs root, which CI has; elsewhere
//! it says it was skipped.

mod database;
mod load;
mod names;
mod network;

use database::Database;
use dishpatch::proto::restaurant::v1::{
    UpdateMenuItemRequest, restaurant_service_client::RestaurantServiceClient,
};
use load::{Load, Outcomes, Shop};
use names::NameServer;
use network::{Host, Network};
use serde_json::Value;
use stack::{Part, certs, database_name, edge_auth_args, signing_key};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};
use test_support::{eventually, process::ServiceProcess, tls::channel};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The search domain of every host, under which the services are named.
const DOMAIN: &str = "dishpatch.test";
/// The name server's host, 10.77.0.53.
const NAME_SERVER: u8 = 53;
/// Each service (its name is its DNS name too) and its port, in the order
/// a host starts them: order-svc calls the other two.
const SERVICES: [(Part, u16); 3] = [
    (Part::RestaurantSvc, 50051),
    (Part::NotifySvc, 50053),
    (Part::OrderSvc, 50052),
];
/// How often the edge resolves the services' names again.
const DNS_INTERVAL: &str = "1s";
/// How long a replica told to stop keeps serving after turning NOT_SERVING.
const DRAIN: &str = "1s";
/// How long the lost host stays off the network: longer than the store
/// lets a session it cut off hold a transaction open.
const AWAY: Duration = Duration::from_secs(5);
const CUSTOMER: &str = "nina";

#[test]
fn hosts_are_lost_joined_and_drained_losing_nothing() {
    let Some(network) = Network::create(Ipv4Addr::new(10, 77, 0, NAME_SERVER), DOMAIN) else {
        return;
    };
    let client = network.add_host("client", 100);
    std::thread::scope(|scope| {
        let test = scope.spawn(|| {
            client.enter();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(lose_join_and_drain_hosts(&network))
        });
        if let Err(panic) = test.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

async fn lose_join_and_drain_hosts(network: &Network) {
    let certs = tempfile::tempdir().unwrap();
    let parts = [Part::Edge].into_iter().chain(SERVICES.map(|(part, _)| part));
    stack::certs::make(certs.path(), &parts.map(Part::name).collect::<Vec<_>>()).unwrap();
    let names = NameServer::start(&network.add_host("dns", NAME_SERVER), DOMAIN);
    let database = Database::start(&network.add_host("db", 20));
    database
        .create(&SERVICES.map(|(part, _)| database_name(part)))
        .await;
    let first = network.add_host("h1", 11);
    let second = network.add_host("h2", 12);
    let third = network.add_host("h3", 13);
    names.serve(&records(&[&first, &second]));
    let mut replicas: BTreeMap<&str, Vec<ServiceProcess>> = BTreeMap::new();
    for host in [&first, &second] {
        replicas.insert(host.name, start_replicas(host, &database, certs.path()).await);
    }
    let data = tempfile::tempdir().unwrap();
    let edge = start_edge(&network.add_host("edge", 10), data.path(), certs.path()).await;
    let shop = open_shop(&edge, data.path()).await;
    let limit = Duration::from_secs(20);
    until_replicas(
        &shop,
        &[&first, &second],
        "every replica in rotation",
        limit,
        healthy,
    )
    .await;

    strangers_are_refused(&second, &shop, certs.path()).await;

    // A host drops off the network: its replicas are cut off mid-request.
    let load = Load::start(&shop, "lost");
    tokio::time::sleep(Duration::from_secs(1)).await;
    network.unplug(&first);
    let unplugged = Instant::now();
    let out = |replica: &Value| replica["state"] == "down";
    until_replicas(
        &shop,
        &[&first],
        "the lost host out of rotation",
        Duration::from_secs(5),
        out,
    )
    .await;
    eprintln!(
        "the edge took the lost host out of rotation after {:?}",
        unplugged.elapsed()
    );
    tokio::time::sleep_until((unplugged + AWAY).into()).await;
    network.plug(&first);
    until_replicas(
        &shop,
        &[&first],
        "the host that came back in rotation",
        limit,
        healthy,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lost = load.stop().await;
    report("host lost and back", &lost);
    eprintln!("the edge's retries and hedges: {}", retries(&shop).await);
    let failed_later: Vec<_> = lost
        .failures()
        .filter(|(started, _)| *started > unplugged)
        .collect();
    assert!(
        failed_later.is_empty(),
        "only requests in flight when the host was lost may fail: {failed_later:?}"
    );
    // A transaction the lost host left open holds up orders only until the
    // store ends it: orders begun and answered while it is away.
    let placed_while_away = lost
        .orders
        .iter()
        .filter(|order| order.result.is_ok() && order.started > unplugged + AWAY / 2)
        .filter(|order| order.finished < unplugged + AWAY)
        .count();
    assert!(placed_while_away > 0, "orders are placed while the host is away");

    // A new host joins by its DNS record.
    let load = Load::start(&shop, "joined");
    tokio::time::sleep(Duration::from_millis(500)).await;
    replicas.insert(third.name, start_replicas(&third, &database, certs.path()).await);
    names.serve(&records(&[&first, &second, &third]));
    let added = Instant::now();
    let serving = |replica: &Value| replica["requestsServed"].as_u64() > Some(0);
    until_replicas(&shop, &[&third], "the new host to serve requests", limit, serving).await;
    eprintln!(
        "the new host served every service {:?} after its records",
        added.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = load.stop().await;
    report("host joined", &joined);
    assert_no_failures(&joined);

    // A host is drained, as an orchestrator does: its replicas are told to
    // stop, and its records go.
    let load = Load::start(&shop, "drained");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut draining = replicas.remove(first.name).unwrap();
    for replica in &draining {
        replica.terminate();
    }
    // Drained, not crashed: the edge hears each say NOT_SERVING while it
    // still answers.
    let not_serving = |replica: &Value| replica["outOfRotation"] == "not_serving";
    let what = "the drained host's replicas to say NOT_SERVING";
    until_replicas(&shop, &[&first], what, Duration::from_secs(1), not_serving).await;
    // Only now: a pool drops a replica its name no longer resolves to, and
    // /health would not show it at all.
    names.serve(&records(&[&second, &third]));
    for replica in &mut draining {
        let status = replica.wait(Duration::from_secs(15)).await;
        assert!(status.success(), "a drained replica exits cleanly: {status}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drained = load.stop().await;
    report("host drained", &drained);
    assert_no_failures(&drained);

    every_order_placed_once(&shop, [lost, joined, drained]).await;
    drop(edge);
    drop(replicas);
    drop(database);
}

/// Every order the shop acknowledged is stored, those it did not are
/// placed once when the client tries again with the same key, nothing is
/// stored twice, and every order's notification arrives.
async fn every_order_placed_once(shop: &Shop, loads: [Outcomes; 3]) {
    let placings: Vec<_> = loads.into_iter().flat_map(|outcomes| outcomes.orders).collect();
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    for placing in &placings {
        let id = match &placing.result {
            Ok(id) => id.clone(),
            Err(_) => shop
                .place(&placing.key)
                .await
                .unwrap_or_else(|error| panic!("placing {} again: {error}", placing.key)),
        };
        placed.insert(placing.key.clone(), id);
    }
    let stored: BTreeSet<String> = shop
        .all("/api/orders?", "orders")
        .await
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_owned())
        .filter(|id| *id != shop.order)
        .collect();
    let wanted: BTreeSet<String> = placed.values().cloned().collect();
    assert_eq!(wanted.len(), placings.len(), "each key placed its own order");
    assert_eq!(stored, wanted, "the orders stored are exactly those placed");
    eventually(
        "a notification of every order",
        Duration::from_secs(15),
        || async {
            let notified: BTreeSet<String> = shop
                .all(
                    &format!("/api/notifications?recipient={CUSTOMER}"),
                    "notifications",
                )
                .await
                .iter()
                .map(|notification| notification["orderId"].as_str().unwrap().to_owned())
                .collect();
            wanted.is_subset(&notified).then_some(())
        },
    )
    .await;
}

/// The DNS records of every service on `hosts`.
fn records(hosts: &[&Host]) -> Vec<(&'static str, Vec<Ipv4Addr>)> {
    SERVICES
        .iter()
        .map(|(part, _)| (part.name(), hosts.iter().map(|host| host.ip).collect()))
        .collect()
}

/// Callers without a certificate from the CA reach no service on `host`,
/// and restaurant-svc refuses a menu change from notify-svc's certificate.
async fn strangers_are_refused(host: &Host, shop: &Shop, certs: &Path) {
    for (part, port) in SERVICES {
        let addr = SocketAddr::from((host.ip, port));
        let plaintext = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let ca = std::fs::read(certs::files(certs, part.name()).ca).unwrap();
        let anonymous = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(part.name());
        for channel in [plaintext, channel(addr, anonymous)] {
            let refused = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            assert!(
                refused.is_err(),
                "{} answered a caller without a certificate",
                part.name()
            );
        }
    }
    let notify = certs::files(certs, Part::NotifySvc.name())
        .tls_args()
        .load()
        .unwrap()
        .unwrap();
    let restaurant = SocketAddr::from((host.ip, 50051));
    let reprice = UpdateMenuItemRequest {
        restaurant_id: shop.restaurant.clone(),
        menu_item_id: shop.item.clone(),
        price_cents: Some(1),
        ..Default::default()
    };
    let refused = RestaurantServiceClient::new(channel(restaurant, notify.client("restaurant-svc")))
        .update_menu_item(reprice)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
}

/// One replica of every service in `host`, on the shared store, finding
/// the others by name, with its certificate from `certs`.
async fn start_replicas(host: &Host, database: &Database, certs: &Path) -> Vec<ServiceProcess> {
    let mut replicas = Vec::new();
    for (part, port) in SERVICES {
        let store = database.url(&database_name(part));
        let mut args = host.exec(env!("CARGO_BIN_EXE_stack"));
        args.extend(["serve", part.name(), "--listen", &format!("{}:{port}", host.ip)].map(str::to_owned));
        args.extend(["--database-url", &store, "--drain", DRAIN].map(str::to_owned));
        args.extend(certs::files(certs, part.name()).args());
        if part == Part::OrderSvc {
            args.extend(
                [
                    "--restaurant-addr=dns://restaurant-svc:50051",
                    "--notify-addr=dns://notify-svc:50053",
                    "--probe-interval=200ms",
                    "--probe-timeout=500ms",
                    "--relay-poll-interval=200ms",
                    "--relay-max-backoff=500ms",
                ]
                .map(str::to_owned),
            );
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        replicas.push(ServiceProcess::start("ip", &args).await);
    }
    replicas
}

/// The edge in `host`, on port 3000, trusting tokens signed with the key
/// in `data`, with its certificate from `certs`.
async fn start_edge(host: &Host, data: &Path, certs: &Path) -> ServiceProcess {
    signing_key(data).unwrap();
    let mut args = host.exec(env!("CARGO_BIN_EXE_stack"));
    args.extend([
        "serve".to_owned(),
        "edge".to_owned(),
        "--listen".to_owned(),
        format!("{}:3000", host.ip),
    ]);
    for (part, port) in SERVICES {
        let name = part.name();
        let service = name.trim_end_matches("-svc");
        args.push(format!("--{service}-replicas=dns://{name}:{port}"));
    }
    args.extend(
        [
            &format!("--dns-interval={DNS_INTERVAL}"),
            "--probe-interval=200ms",
            "--probe-timeout=500ms",
            "--slow-start=1s",
            "--show-replicas=true",
            "--rate-limit-reads=0",
            "--rate-limit-writes=0",
        ]
        .map(str::to_owned),
    );
    args.extend(edge_auth_args(data));
    args.extend(certs::files(certs, Part::Edge.name()).args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServiceProcess::start("ip", &args).await
}

/// The shop, once the edge answers, with an order of the customer's to
/// read.
async fn open_shop(edge: &ServiceProcess, data: &Path) -> Shop {
    let http = reqwest::Client::new();
    let base = edge.url();
    let restaurants = eventually(
        "the edge to list restaurants",
        Duration::from_secs(30),
        || async {
            let response = http.get(format!("{base}/api/restaurants")).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            let restaurants = body["restaurants"].as_array()?.clone();
            (!restaurants.is_empty()).then_some(restaurants)
        },
    )
    .await;
    let restaurant = restaurants[0]["id"].as_str().unwrap().to_owned();
    let mut shop = Shop {
        token: super::token(data, "customer", CUSTOMER),
        http,
        base,
        item: String::new(),
        order: String::new(),
        restaurant,
    };
    let menu = shop
        .get(&format!("/api/restaurants/{}/menu", shop.restaurant))
        .await
        .unwrap();
    shop.item = menu["items"][0]["id"].as_str().unwrap().to_owned();
    shop.order = shop.place("first").await.unwrap();
    shop
}

/// Waits (at most `limit`) until `check` holds for the edge's view of
/// every replica on `hosts`, as `/health` shows it.
async fn until_replicas(
    shop: &Shop,
    hosts: &[&Host],
    what: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) {
    eventually(what, limit, || async {
        let replicas = replica_states(shop).await;
        let on = |host: &Host, port: u16| replicas.get(&format!("{}:{port}", host.ip)).is_some_and(&check);
        hosts
            .iter()
            .all(|host| SERVICES.iter().all(|(_, port)| on(host, *port)))
            .then_some(())
    })
    .await;
}

/// Whether a replica is in rotation.
fn healthy(replica: &Value) -> bool {
    replica["state"] == "healthy"
}

/// The edge's counts of retries and hedges, from its metrics.
async fn retries(shop: &Shop) -> String {
    let metrics = shop
        .http
        .get(format!("{}/metrics", shop.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("dishpatch_pool_retries_total")
                || line.starts_with("dishpatch_pool_hedges_total")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every replica the edge knows, by address, as `/health` shows it.
async fn replica_states(shop: &Shop) -> BTreeMap<String, Value> {
    let Ok(response) = shop.http.get(format!("{}/health", shop.base)).send().await else {
        return BTreeMap::new();
    };
    let health: Value = response.json().await.unwrap_or_default();
    let services = health["services"].as_object().cloned().unwrap_or_default();
    services
        .values()
        .flat_map(|service| service["replicas"].as_array().cloned().unwrap_or_default())
        .map(|replica| (replica["addr"].as_str().unwrap_or_default().to_owned(), replica))
        .collect()
}

/// Says what a phase's load got, and how its requests failed.
fn report(phase: &str, outcomes: &Outcomes) {
    eprintln!(
        "{phase}: {} reads ({} failed), {} orders ({} failed)",
        outcomes.reads,
        outcomes.failed_reads.len(),
        outcomes.orders.len(),
        outcomes.failed_orders().count()
    );
    for (_, failure) in outcomes.failures() {
        eprintln!("  {failure}");
    }
}

#[track_caller]
fn assert_no_failures(outcomes: &Outcomes) {
    let failed: Vec<_> = outcomes.failures().collect();
    assert!(failed.is_empty(), "no request fails: {failed:?}");
}
