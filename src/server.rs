//! Serving a dishpatch gRPC service: `grpc.health.v1`, server reflection (v1
//! and v1alpha, so old and new grpcurl both work), a tracing span per request,
//! its RPCs counted and its metrics at `GET /metrics` (HTTP/1.1 on the same
//! port), and a graceful shutdown that loses no request.
//!
//! Shutdown, once the token given to [`ServiceHost::serve`] is cancelled:
//! 1. health turns NOT_SERVING, so balancers stop sending new calls;
//! 2. for the drain period the server keeps answering, late calls included;
//! 3. long-lived streams end ([`ServiceHost::streams_closed`]), the listener
//!    closes and in-flight calls finish, for at most [`IN_FLIGHT_LIMIT`].

use crate::{
    metrics::{RecordRpcs, RpcMetrics},
    tls::{CallersOnlyLayer, Tls},
    trace::trace_id_of,
    wire::{REQUEST_ID as REQUEST_ID_HEADER, TRACEPARENT},
};
use futures_util::{Stream, StreamExt};
use prometheus_client::registry::Registry;
use std::{net::SocketAddr, pin::Pin, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Response, Status,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_server::{Health, HealthServer},
    },
    server::{HealthReporter, HealthService},
};

/// How long in-flight calls may take to finish after the drain period.
pub const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(10);

/// A listen address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What went wrong.
    pub source: std::io::Error,
}

/// Binds a TCP listener on `addr` (port 0 picks a free port); the error
/// names the address.
pub async fn bind_listener(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service could not read the descriptor sets.
    #[error("building server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A bound gRPC listener with its health reporter, ready to serve one
/// dishpatch service.
#[derive(Debug)]
pub struct ServiceHost {
    listener: TcpListener,
    local_addr: SocketAddr,
    service_name: &'static str,
    health: HealthReporter,
    drain: Duration,
    streams_closed: CancellationToken,
    /// Mutual TLS, and who may call, when on.
    tls: Option<(Tls, CallersOnlyLayer)>,
}

impl ServiceHost {
    /// Binds `addr` (port 0 picks a free port) for the service whose fully
    /// qualified gRPC name is `service_name`; shutdown drains for `drain`.
    pub async fn bind(
        addr: SocketAddr,
        service_name: &'static str,
        drain: Duration,
    ) -> Result<Self, BindError> {
        let listener = bind_listener(addr).await?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        Ok(Self {
            listener,
            local_addr,
            service_name,
            health: HealthReporter::new(),
            drain,
            streams_closed: CancellationToken::new(),
            tls: None,
        })
    }

    /// Serves over mutual TLS when `tls` is given ([`crate::tls`]): only
    /// `callers` may call the service's methods.
    pub fn with_tls(mut self, tls: Option<Tls>, callers: &'static [&'static str]) -> Self {
        let service = self.service_name;
        self.tls = tls.map(|tls| (tls, CallersOnlyLayer { service, callers }));
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Cancelled when the drain period is over: long-lived streams and
    /// background work end then.
    pub fn streams_closed(&self) -> CancellationToken {
        self.streams_closed.clone()
    }

    /// Serves `routes` (plus health and reflection, and `metrics` with the
    /// server's own RPC metrics at `GET /metrics`) until `shutdown` is
    /// cancelled and the shutdown sequence in the module docs has run.
    /// Health is SERVING from the first call on: build `routes` only once the
    /// service is ready (store migrated, downstream clients built).
    pub async fn serve(
        self,
        routes: Routes,
        mut metrics: Registry,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            local_addr,
            service_name,
            health,
            drain,
            streams_closed,
            tls,
        } = self;

        // Advertise only what this server serves: the descriptor set holds
        // every dishpatch contract.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name(service_name)
                .with_service_name("grpc.health.v1.Health")
        };
        let routes = routes
            .add_service(HealthServer::new(DrainingHealth {
                inner: HealthService::from_health_reporter(health.clone()),
                streams_closed: streams_closed.clone(),
            }))
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        let rpcs = Arc::new(RpcMetrics::register(&mut metrics));
        let routes = with_metrics_page(routes, Arc::new(metrics));

        health.set_service_status("", ServingStatus::Serving).await;
        health
            .set_service_status(service_name, ServingStatus::Serving)
            .await;
        tracing::info!(%local_addr, service = service_name, "serving");

        let stop_accepting = {
            let streams_closed = streams_closed.clone();
            async move {
                shutdown.cancelled().await;
                tracing::info!(?drain, "health NOT_SERVING; draining");
                health.set_service_status("", ServingStatus::NotServing).await;
                health
                    .set_service_status(service_name, ServingStatus::NotServing)
                    .await;
                tokio::time::sleep(drain).await;
                tracing::info!("drain over; finishing in-flight calls");
                streams_closed.cancel();
            }
        };
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut server = Server::builder();
        let mut callers_only = None;
        if let Some((tls, rule)) = tls {
            server = server.tls_config(tls.server())?;
            callers_only = Some(rule);
        }
        let server = server
            // HTTP/1.1 only for `GET /metrics`: gRPC needs HTTP/2.
            .accept_http1(true)
            .trace_fn(request_span)
            .layer(RecordRpcs::new(rpcs))
            .layer(tower::util::option_layer(callers_only))
            .layer(tower::util::MapResponseLayer::new(
                undecodable_is_invalid_argument,
            ))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop_accepting);

        tokio::select! {
            served = server => served?,
            () = async {
                streams_closed.cancelled().await;
                tokio::time::sleep(IN_FLIGHT_LIMIT).await;
            } => tracing::warn!(limit = ?IN_FLIGHT_LIMIT, "in-flight calls still open; stopping anyway"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// `routes` with `GET /metrics` serving `metrics` in Prometheus's text
/// format. Prometheus scrapes over HTTP/1.1, which the server accepts too.
fn with_metrics_page(routes: Routes, metrics: Arc<Registry>) -> Routes {
    let page = axum::routing::get(move || {
        let metrics = metrics.clone();
        async move {
            (
                [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
                crate::metrics::render(&metrics),
            )
        }
    });
    Routes::from(routes.into_axum_router().route("/metrics", page))
}

/// A request the server could not decode (not protobuf, or not this
/// method's message) is the caller's mistake: INVALID_ARGUMENT, not the
/// INTERNAL tonic answers with (its codec maps every decode error so, as
/// gRPC's table does for a client decoding a response).
fn undecodable_is_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let undecodable = headers.get("grpc-status").is_some_and(|status| status == "13")
        && headers.get("grpc-message").is_some_and(|message| {
            let message = message.as_bytes();
            message.starts_with(b"failed to decode Protobuf message")
                || message.starts_with(b"failed%20to%20decode%20Protobuf%20message")
        });
    if undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}

/// One span per call, carrying the method, the caller's request id and the
/// trace id, so every log line of a call can be found by either. A call
/// that brings no trace has none here until its handler reads its context
/// ([`crate::call::CallContext::of`]), which starts one and records it.
fn request_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let header = |name| request.headers().get(name).and_then(|value| value.to_str().ok());
    let request_id = header(REQUEST_ID_HEADER).unwrap_or("");
    let span = tracing::info_span!(
        "grpc",
        method = request.uri().path(),
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(trace_id) = header(TRACEPARENT).and_then(trace_id_of) {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// tonic-health's service, except that `Watch` streams end when the drain is
/// over: otherwise a balancer's open Watch would hold the server open.
#[derive(Debug)]
struct DrainingHealth {
    inner: HealthService,
    streams_closed: CancellationToken,
}

#[tonic::async_trait]
impl Health for DrainingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let updates = self.inner.watch(request).await?.into_inner();
        let until_closed = updates.take_until(self.streams_closed.clone().cancelled_owned());
        Ok(Response::new(Box::pin(until_closed)))
    }
}
