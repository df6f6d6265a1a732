//! Serving the router over HTTP/1.1 keep-alive connections, one task each,
//! at most so many at once, with a graceful stop that lets the requests in
//! flight finish (for a while).
//!
//! Not `axum::serve`: that one serves HTTP/1 and HTTP/2 on every
//! connection, and its connection state cost the edge about a third more
//! memory per idle connection (BENCHMARKS.md). Browsers and REST clients
//! reach the edge over HTTP/1.1 (HTTP/2 would come with TLS, in front of it).

use axum::{Router, body::Body, extract::ConnectInfo};
use dishpatch::metrics::Held;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use prometheus_client::metrics::gauge::Gauge;
use std::{sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait before accepting again after the process ran out of
/// file descriptors (or another error of the listener, not the connection).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a stopping edge waits for the requests in flight before it
/// closes their connections.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown`, `max_connections` at a
/// time (one past it is closed as it is accepted), then stops accepting,
/// closes idle connections and waits (at most [`SHUTDOWN_LIMIT`]) for the
/// requests in flight.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    max_connections: usize,
    open_connections: Gauge,
) {
    let open = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Dropped: closed at once, rather than held without an answer.
            tracing::debug!("at the most connections; closing a new one");
            continue;
        };
        // Responses are written whole; waiting to coalesce them only delays.
        stream.set_nodelay(true).ok();
        // Each request knows its client's address (rate limits of
        // anonymous callers count by it).
        let service = router
            .clone()
            .map_request(move |request: http::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        let open = Held::new(&open_connections);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_LIMIT, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(limit = ?SHUTDOWN_LIMIT, "requests still in flight; closing their connections");
    }
}

/// Errors of one connection (the client gave up before it was accepted),
/// not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
