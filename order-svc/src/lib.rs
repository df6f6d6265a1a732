//! order-svc: orders and their life cycle, over gRPC.
//!
//! [`build`] opens the store, builds the clients of restaurant-svc (pricing)
//! and notify-svc (the outbox relay) and binds the listener;
//! [`ReadyService::run`] serves, and relays the outbox, until shutdown.

mod config;
mod domain;
mod grpc;
mod relay;
mod store;

pub use config::Config;
pub use dishpatch::service::{ReadyService, StartError};

use dishpatch::{
    proto::{
        notify::v1::notify_service_client::NotifyServiceClient,
        order::v1::order_service_server::{OrderServiceServer, SERVICE_NAME},
        restaurant::v1::restaurant_service_client::RestaurantServiceClient,
    },
    store::{Migrations, Store},
};
use std::time::Duration;
use tonic::{service::Routes, transport::Endpoint};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// order-svc's migrations, for both backends.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};

/// How long connecting to another service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens the store, builds the downstream clients and binds the listener:
/// the returned service is ready to run. Downstream services need not be up
/// yet: clients connect on first use.
pub async fn build(config: Config) -> Result<ReadyService, StartError> {
    let store = Store::open(&config.database_url, &MIGRATIONS).await?;
    let orders = store::OrderStore::new(store.clone());
    let restaurants = RestaurantServiceClient::new(lazy_channel(&config.restaurant_addr)?);
    let notify = NotifyServiceClient::new(lazy_channel(&config.notify_addr)?);
    let host = dishpatch::service::bind(config.listen, SERVICE_NAME, config.drain).await?;

    let waker = relay::RelayWaker::default();
    let api = grpc::OrderApi {
        store: orders.clone(),
        restaurants,
        relay: waker.clone(),
        downstream_timeout: config.downstream_timeout,
    };
    let relay = relay::OutboxRelay {
        store: orders,
        notify,
        waker,
        poll_interval: config.relay_poll_interval,
        max_backoff: config.relay_max_backoff,
        call_timeout: config.downstream_timeout,
    };
    let mut service = ReadyService::new(host, Routes::new(OrderServiceServer::new(api)), store);
    service.spawn_background(|stop| relay.run(stop));
    Ok(service)
}

/// A channel to `addr` (`host:port` or `http://host:port`) that connects on
/// first use and reconnects after a failure.
fn lazy_channel(addr: &str) -> Result<tonic::transport::Channel, StartError> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|error| StartError::Config(format!("address {addr:?}: {error}")))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}
