//! notify-svc: the notification log and its live stream, over gRPC.
//!
//! [`build`] opens the store and binds the listener; [`ReadyService::run`]
//! serves, and runs the live feed's tail, until shutdown.

mod config;
mod domain;
mod feed;
mod grpc;
mod store;

pub use config::Config;
pub use dishpatch::service::{ReadyService, StartError};

use dishpatch::{
    proto::notify::v1::notify_service_server::{NotifyServiceServer, SERVICE_NAME},
    server::ServiceHost,
    store::Store,
};
use tonic::service::Routes;

dishpatch::migrations!();

/// Who may call this service's methods over mutual TLS (by the name in
/// their certificates): The edge, and order-svc's outbox relay.
const CALLERS: &[&str] = &["edge", "order-svc"];

/// Opens the store and binds the listener: the returned service is ready to
/// run.
pub async fn build(config: Config) -> Result<ReadyService, StartError> {
    let tls = (config.tls)
        .load_for(env!("CARGO_PKG_NAME"), config.listen)
        .map_err(StartError::Config)?;
    let store = Store::open(&config.database_url, &MIGRATIONS).await?;
    let notifications = store::NotificationStore::new(store.clone());
    let last_seq = notifications.last_seq().await?;
    let host = ServiceHost::bind(config.listen, SERVICE_NAME, config.drain)
        .await?
        .with_tls(tls, CALLERS);

    let feed = feed::Feed::new();
    let api = grpc::NotifyApi::new(notifications.clone(), feed.clone(), host.streams_closed());
    let mut service = ReadyService::new(host, Routes::new(NotifyServiceServer::new(api)), store);
    feed.register_metrics(service.metrics());
    service.spawn_background(|stop| feed.run_tail(notifications, last_seq, config.poll_interval, stop));
    Ok(service)
}
