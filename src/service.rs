//! A dishpatch service assembled and ready to run: its bound host, its gRPC
//! routes, its background tasks and its store.

use crate::{
    server::{BindError, ServeError, ServiceHost},
    store::{OpenError, Store},
};
use prometheus_client::registry::Registry;
use std::{future::Future, net::SocketAddr};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The store could not be prepared (seeded, read at start).
    #[error("preparing the store: {0}")]
    Prepare(#[from] sqlx::Error),
}

/// A service ready to run.
#[derive(Debug)]
pub struct ReadyService {
    host: ServiceHost,
    routes: Routes,
    store: Store,
    metrics: Registry,
    tasks: JoinSet<()>,
}

impl ReadyService {
    /// A service serving `routes` on `host`, over `store`.
    pub fn new(host: ServiceHost, routes: Routes, store: Store) -> Self {
        let mut metrics = crate::metrics::registry();
        store.register_metrics(&mut metrics);
        Self {
            host,
            routes,
            store,
            metrics,
            tasks: JoinSet::new(),
        }
    }

    /// The registry of the metrics it serves: register the service's own
    /// there before it runs.
    pub fn metrics(&mut self) -> &mut Registry {
        &mut self.metrics
    }

    /// Runs `task` beside the server. It must end once `stop` (cancelled
    /// when the drain is over, or when serving fails) is cancelled: `run`
    /// waits for it.
    pub fn spawn_background<F>(&mut self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.host.streams_closed()));
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// Serves until `shutdown` is cancelled and the drain is over, then
    /// waits for the background tasks and closes the store.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let stop = self.host.streams_closed();
        let served = self.host.serve(self.routes, self.metrics, shutdown).await;
        stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.store.close().await;
        served
    }
}

impl crate::binary::Program for ReadyService {
    fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), Box<dyn std::error::Error>> {
        Ok(self.run(shutdown).await?)
    }
}
