//! The HTTP/JSON edge of dishpatch: the REST API on port 3000, translated
//! into gRPC calls balanced over health-probed replica pools
//! ([`dishpatch_pool`]).
//!
//! - [`api`]: routes, JSON shapes, the one error mapping, request ids.
//! - [`build`] binds the listener and builds the pools; [`Edge::run`]
//!   probes and serves until shutdown.

pub mod api;
mod config;
mod http;

pub use config::Config;

use dishpatch::proto::{
    notify::v1::notify_service_server::SERVICE_NAME as NOTIFY,
    order::v1::order_service_server::SERVICE_NAME as ORDER,
    restaurant::v1::restaurant_service_server::SERVICE_NAME as RESTAURANT,
};
use dishpatch::server::{BindError, bind_listener};
use dishpatch_pool::{ReplicaPool, ReplicaSpec};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
}

/// The edge, bound and ready to run.
#[derive(Debug)]
pub struct Edge {
    listener: TcpListener,
    pools: api::Pools,
    router: axum::Router,
    max_connections: usize,
}

/// Builds the replica pools and binds the listener. No replica needs to be
/// up: until probes find one, its routes answer 503.
pub async fn build(config: Config) -> Result<Edge, StartError> {
    let pool = |service, health_name, replicas: &[ReplicaSpec], strategy| {
        ReplicaPool::new(service, health_name, replicas, config.pool_settings(strategy))
            .map_err(StartError::Config)
    };
    let pools = api::Pools {
        restaurants: pool(
            "restaurant-svc",
            RESTAURANT,
            &config.restaurant_replicas,
            config.restaurant_balance,
        )?,
        orders: pool("order-svc", ORDER, &config.order_replicas, config.order_balance)?,
        notifications: pool(
            "notify-svc",
            NOTIFY,
            &config.notify_replicas,
            config.notify_balance,
        )?,
    };
    let listener = bind_listener(config.listen).await?;
    let router = api::router(
        pools.clone(),
        api::ApiSettings {
            deadline: config.deadline,
            show_replicas: config.show_replicas,
            max_in_flight: config.max_in_flight as usize,
            body_read_timeout: config.body_read_timeout,
        },
    );
    Ok(Edge {
        listener,
        pools,
        router,
        max_connections: config.max_connections as usize,
    })
}

impl Edge {
    /// The address the edge listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Probes the replicas and serves until `shutdown`, then finishes the
    /// requests in flight and stops the probers.
    pub async fn run(self, shutdown: CancellationToken) {
        let stop_pools = CancellationToken::new();
        let pools = [
            &self.pools.restaurants,
            &self.pools.orders,
            &self.pools.notifications,
        ]
        .map(|pool| pool.spawn(stop_pools.clone()));
        tracing::info!(addr = %self.local_addr(), "edge serving");
        http::serve(self.listener, self.router, shutdown, self.max_connections).await;
        stop_pools.cancel();
        for pool in pools {
            pool.await.ok();
        }
        tracing::info!("edge stopped");
    }
}

impl dishpatch::binary::Program for Edge {
    fn local_addr(&self) -> SocketAddr {
        Edge::local_addr(self)
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), Box<dyn std::error::Error>> {
        self.run(shutdown).await;
        Ok(())
    }
}
