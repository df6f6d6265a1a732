//! order-svc: orders and their life cycle, over gRPC.
//!
//! [`build`] opens the store, builds the clients of restaurant-svc (pricing)
//! and notify-svc (the outbox relay) and binds the listener;
//! [`ReadyService::run`] serves, and relays the outbox, until shutdown.

mod config;
mod domain;
mod group_commit;
mod grpc;
mod relay;
mod store;

pub use config::Config;
pub use dishpatch::service::{ReadyService, StartError};

use dishpatch::{
    proto::{
        notify::v1::notify_service_server::SERVICE_NAME as NOTIFY_SERVICE,
        order::v1::order_service_server::{OrderServiceServer, SERVICE_NAME},
        restaurant::v1::restaurant_service_server::SERVICE_NAME as RESTAURANT_SERVICE,
    },
    server::ServiceHost,
    store::Store,
};
use dishpatch_pool::{PoolMetrics, PoolSettings, ProbeSettings, ReplicaPool};
use tonic::service::Routes;

dishpatch::migrations!();

/// Who may call this service's methods over mutual TLS (by the name in
/// their certificates): The edge alone.
const CALLERS: &[&str] = &["edge"];

/// Probe results in a row that bring back (rise) or take out (fall) a
/// replica of another service.
const RISE_AND_FALL: u32 = 2;

/// Opens the store, builds the pools of restaurant-svc and notify-svc
/// replicas and binds the listener: the returned service is ready to run.
/// Downstream services need not be up yet: their pools pick them up as they
/// answer health probes.
pub async fn build(config: Config) -> Result<ReadyService, StartError> {
    let tls = (config.tls)
        .load_for(env!("CARGO_PKG_NAME"), config.listen)
        .map_err(StartError::Config)?;
    let store = Store::open(&config.database_url, &MIGRATIONS).await?;
    let orders = store::OrderStore::new(store.clone());
    let settings = PoolSettings {
        probe: ProbeSettings {
            interval: config.probe_interval,
            timeout: config.probe_timeout,
            rise: RISE_AND_FALL,
            fall: RISE_AND_FALL,
        },
        default_deadline: config.downstream_timeout,
        ..PoolSettings::default()
    };
    let restaurants = ReplicaPool::new(
        "restaurant-svc",
        RESTAURANT_SERVICE,
        &config.restaurant_addr,
        settings,
        tls.as_ref(),
    )
    .map_err(StartError::Config)?;
    let notify = ReplicaPool::new(
        "notify-svc",
        NOTIFY_SERVICE,
        &config.notify_addr,
        settings,
        tls.as_ref(),
    )
    .map_err(StartError::Config)?;
    let host = ServiceHost::bind(config.listen, SERVICE_NAME, config.drain)
        .await?
        .with_tls(tls, CALLERS);

    let waker = relay::RelayWaker::default();
    let api = grpc::OrderApi {
        store: orders.clone(),
        writer: group_commit::OrderWriter::spawn(orders.clone()),
        restaurants: restaurants.clone(),
        relay: waker.clone(),
    };
    let mut service = ReadyService::new(host, Routes::new(OrderServiceServer::new(api)), store);
    let relay = relay::OutboxRelay {
        store: orders,
        notify: notify.clone(),
        waker,
        poll_interval: config.relay_poll_interval,
        takeover: config.relay_takeover,
        max_backoff: config.relay_max_backoff,
        metrics: relay::RelayMetrics::register(service.metrics()),
    };
    service.spawn_background(|stop| relay.run(stop));
    // Its metrics are on its own port, for operators: replicas are named.
    let pools = PoolMetrics::new(vec![restaurants.clone(), notify.clone()], true);
    service.metrics().register_collector(Box::new(pools));
    service.spawn_background(|stop| {
        let pools = [restaurants, notify].map(|pool| pool.spawn(stop.clone()));
        async move {
            for pool in pools {
                pool.await.ok();
            }
        }
    });
    Ok(service)
}
