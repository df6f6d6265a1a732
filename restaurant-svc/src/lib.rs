//! restaurant-svc: restaurants, their menus and prices, over gRPC.
//!
//! [`build`] opens (and if need be seeds) the store and binds the listener;
//! [`ReadyService::run`] serves until shutdown.

mod catalog;
mod config;
mod domain;
mod grpc;
mod seed;
mod store;

pub use config::Config;
pub use dishpatch::service::{ReadyService, StartError};

use dishpatch::{
    proto::restaurant::v1::restaurant_service_server::{RestaurantServiceServer, SERVICE_NAME},
    server::ServiceHost,
    store::Store,
};
use tonic::service::Routes;

dishpatch::migrations!();

/// Who may call this service's methods over mutual TLS (by the name in
/// their certificates): The edge, and order-svc, which prices orders from menus.
const CALLERS: &[&str] = &["edge", "order-svc"];

/// Opens the store (migrated, and seeded when empty unless `no_seed`) and
/// binds the listener: the returned service is ready to run.
pub async fn build(config: Config) -> Result<ReadyService, StartError> {
    let tls = (config.tls)
        .load_for(env!("CARGO_PKG_NAME"), config.listen)
        .map_err(StartError::Config)?;
    let store = Store::open(&config.database_url, &MIGRATIONS).await?;
    let restaurants = store::RestaurantStore::new(store.clone());
    if !config.no_seed {
        seed::seed_if_empty(&restaurants).await?;
    }
    let catalog = catalog::Catalog::load(restaurants.clone()).await?;
    let host = ServiceHost::bind(config.listen, SERVICE_NAME, config.drain)
        .await?
        .with_tls(tls, CALLERS);
    let routes = Routes::new(RestaurantServiceServer::new(grpc::RestaurantApi::new(
        restaurants,
        catalog,
    )));
    Ok(ReadyService::new(host, routes, store))
}
