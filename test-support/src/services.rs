//! Services in the test process, on `127.0.0.1:0`, with settings sized for
//! tests (short drain, fast polling and backoff).

use dishpatch::service::ReadyService;
use std::{net::SocketAddr, time::Duration};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every test service listens here unless a test restarts one on its old
/// address.
pub const ANY_PORT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const DRAIN: Duration = Duration::from_millis(50);

/// restaurant-svc's settings for a test, seeding the store.
pub fn restaurant_config(store_url: &str) -> restaurant_svc::Config {
    restaurant_svc::Config {
        listen: ANY_PORT,
        database_url: store_url.to_owned(),
        no_seed: false,
        drain: DRAIN,
        tls: Default::default(),
    }
}

/// notify-svc's settings for a test.
pub fn notify_config(store_url: &str) -> notify_svc::Config {
    notify_svc::Config {
        listen: ANY_PORT,
        database_url: store_url.to_owned(),
        poll_interval: Duration::from_millis(50),
        drain: DRAIN,
        tls: Default::default(),
    }
}

/// order-svc's settings for a test, calling the given restaurant-svc and
/// notify-svc.
pub fn order_config(store_url: &str, restaurant: SocketAddr, notify: SocketAddr) -> order_svc::Config {
    order_svc::Config {
        listen: ANY_PORT,
        database_url: store_url.to_owned(),
        restaurant_addr: vec![restaurant.to_string().parse().expect("an address")],
        notify_addr: vec![notify.to_string().parse().expect("an address")],
        probe_interval: Duration::from_millis(100),
        // Twenty tests' services share two cores: a first probe can wait
        // its turn for over a second, and must not be taken for a failure.
        probe_timeout: Duration::from_secs(5),
        downstream_timeout: Duration::from_secs(2),
        relay_poll_interval: Duration::from_millis(50),
        relay_takeover: Duration::from_millis(500),
        relay_max_backoff: Duration::from_millis(200),
        drain: DRAIN,
        tls: Default::default(),
    }
}

/// A service running in the test process. Dropping it starts its shutdown;
/// [`RunningService::stop`] also waits for it.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// Runs a built service until it is stopped or dropped.
pub fn start(service: ReadyService) -> RunningService {
    let addr = service.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { service.run(shutdown).await.expect("service failed") }
    });
    RunningService {
        addr,
        shutdown,
        task: Some(task),
    }
}

impl RunningService {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and its address, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts it down gracefully and waits until it has stopped and closed
    /// its store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("service task panicked");
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// restaurant-svc, seeded, on `store_url`.
pub async fn spawn_restaurant(store_url: &str) -> RunningService {
    run_restaurant(restaurant_config(store_url)).await
}

/// restaurant-svc with `config`.
pub async fn run_restaurant(config: restaurant_svc::Config) -> RunningService {
    start(
        restaurant_svc::build(config)
            .await
            .expect("restaurant-svc builds"),
    )
}

/// notify-svc on `store_url`, listening on `listen` (port 0 for any).
pub async fn spawn_notify(store_url: &str, listen: SocketAddr) -> RunningService {
    run_notify(notify_svc::Config {
        listen,
        ..notify_config(store_url)
    })
    .await
}

/// notify-svc with `config`.
pub async fn run_notify(config: notify_svc::Config) -> RunningService {
    start(notify_svc::build(config).await.expect("notify-svc builds"))
}
