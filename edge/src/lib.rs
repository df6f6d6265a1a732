//! The HTTP/JSON edge of dishpatch: the REST API on port 3000, translated
//! into gRPC calls balanced over health-probed replica pools
//! ([`dishpatch_pool`]).
//!
//! - [`api`]: routes, JSON shapes, the one error mapping, request ids, live
//!   notification streams.
//! - `web`: the front end (`edge/web/`), served at `/`.
//! - [`build`] binds the listener and builds the pools; [`Edge::run`]
//!   probes and serves until shutdown.

pub mod api;
pub mod auth;
mod config;
mod http;
mod web;

pub use config::Config;

use dishpatch::proto::{
    notify::v1::notify_service_server::SERVICE_NAME as NOTIFY,
    order::v1::order_service_server::SERVICE_NAME as ORDER,
    restaurant::v1::restaurant_service_server::SERVICE_NAME as RESTAURANT,
};
use dishpatch::server::BindError;
use dishpatch_pool::{ReplicaPool, ReplicaSpec};
use std::{net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The listening socket passed in is unusable.
    #[error("the listening socket passed in (LISTEN_FDS): {0}")]
    PassedSocket(std::io::Error),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
}

/// The edge, bound and ready to run.
#[derive(Debug)]
pub struct Edge {
    listener: TcpListener,
    pools: api::Pools,
    verifier: Arc<auth::Verifier>,
    metrics: Arc<api::Metrics>,
    router: axum::Router,
    max_connections: u32,
    drain: std::time::Duration,
    /// Cancelled when the edge starts to shut down: live streams end.
    streams_closing: CancellationToken,
}

/// Builds the replica pools and binds the listener. No replica needs to be
/// up: until probes find one, its routes answer 503.
pub async fn build(config: Config) -> Result<Edge, StartError> {
    let tls = config.tls.load().map_err(StartError::Config)?;
    let pool = |service, health_name, replicas: &[ReplicaSpec], strategy| {
        ReplicaPool::new(
            service,
            health_name,
            replicas,
            config.pool_settings(strategy),
            tls.as_ref(),
        )
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
    let identity = identity(&config)?;
    let verifier = identity.verifier.clone();
    let listener = http::listener(config.listen).await?;
    let mut metrics = api::Metrics::default();
    metrics.count_pools(&pools, config.show_replicas);
    let metrics = Arc::new(metrics);
    let streams_closing = CancellationToken::new();
    let router = api::router(
        pools.clone(),
        api::ApiSettings {
            deadline: config.deadline,
            show_replicas: config.show_replicas,
            max_in_flight: config.max_in_flight as usize,
            body_read_timeout: config.body_read_timeout,
            rate_limits: api::RateLimitSettings {
                reads: config.rate_limit_reads,
                writes: config.rate_limit_writes,
                sign_ins: config.rate_limit_sign_ins,
            },
            cors_origins: config.cors_origins.clone(),
            streams: api::StreamSettings {
                keep_alive: config.stream_keep_alive,
                stall_limit: config.stream_stall_limit,
                reconnect: config.stream_retry,
                closing: streams_closing.clone(),
                limits: Arc::new(api::StreamLimits::new(
                    config.max_streams,
                    config.max_streams_per_caller,
                )),
            },
        },
        identity,
        metrics.clone(),
    );
    Ok(Edge {
        listener,
        pools,
        verifier,
        metrics,
        router,
        max_connections: config.max_connections,
        drain: config.drain,
        streams_closing,
    })
}

/// The token verifier, and development sign-in if configured (its key must
/// be one the verifier trusts, or its tokens would all be refused).
fn identity(config: &Config) -> Result<api::Identity, StartError> {
    let settings = config.verifier_settings().map_err(StartError::Config)?;
    let verifier = auth::Verifier::new(settings.clone()).map_err(StartError::Config)?;
    if !verifier.has_keys() {
        tracing::warn!("no token keys (--jwt-jwks, --jwt-pem): only anonymous reads will work");
    }
    let sign_in = match &config.dev_sign_in_key {
        None => None,
        Some(path) => {
            let key = auth::dev::DevKey::load(path).map_err(StartError::Config)?;
            if !verifier.knows_key(key.kid()) {
                return Err(StartError::Config(format!(
                    "--dev-sign-in-key {}: its public key (kid {}) is not among the token keys, so its tokens would be refused",
                    path.display(),
                    key.kid()
                )));
            }
            tracing::warn!("development sign-in is on: anyone who reaches this edge can sign in as anyone");
            Some(Arc::new(api::DevSignIn {
                key,
                issuer: settings.issuer,
                audience: settings.audience,
                ttl: config.dev_token_ttl,
            }))
        }
    };
    Ok(api::Identity {
        verifier: Arc::new(verifier),
        sign_in,
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
        let keys = tokio::spawn(self.verifier.clone().watch_keys(stop_pools.clone()));
        tracing::info!(addr = %self.local_addr(), "edge serving");
        let connections = self.metrics.connections.clone();
        // Live streams never finish by themselves: they end as shutdown
        // starts, so their clients reconnect elsewhere and the connections
        // can close.
        let streams_closing = self.streams_closing.clone();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                streams_closing.cancel();
            }
        });
        http::serve(
            self.listener,
            self.router,
            shutdown,
            self.max_connections,
            self.drain,
            connections,
        )
        .await;
        stop_pools.cancel();
        for pool in pools {
            pool.await.ok();
        }
        keys.await.ok();
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
