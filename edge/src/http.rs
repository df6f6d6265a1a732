//! Serving the router over HTTP/1.1 keep-alive connections, one task each,
//! at most so many at once, with a graceful stop that moves clients to
//! other edges between requests and lets the requests in flight finish
//! (for a while).
//!
//! Several edges can serve one listening socket, passed in by whoever bound
//! it ([`listener`]): the launcher runs its edges so. An edge that stops
//! then leaves the connections not yet accepted to the others, where edges
//! each binding the port with `SO_REUSEPORT` would drop those queued at the
//! one that closes.
//!
//! Not `axum::serve`: that one serves HTTP/1 and HTTP/2 on every
//! connection, and its connection state cost the edge about a third more
//! memory per idle connection (BENCHMARKS.md). Browsers and REST clients
//! reach the edge over HTTP/1.1 (HTTP/2 would come with TLS, in front of it).

use crate::StartError;
use axum::{Router, body::Body, extract::ConnectInfo, response::Response};
use dishpatch::{metrics::Held, server::bind_listener};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use prometheus_client::metrics::gauge::Gauge;
use std::{net::SocketAddr, sync::Arc, time::Duration};
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

/// The socket to serve: one passed in by systemd's socket activation
/// (`LISTEN_FDS`), else `addr`, bound here.
pub(crate) async fn listener(addr: SocketAddr) -> Result<TcpListener, StartError> {
    match listenfd::ListenFd::from_env().take_tcp_listener(0) {
        Ok(Some(passed)) => passed
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(passed))
            .map_err(StartError::PassedSocket),
        Ok(None) => Ok(bind_listener(addr).await?),
        Err(error) => Err(StartError::PassedSocket(error)),
    }
}

/// Serves `router` on `listener` until `shutdown`, `max_connections` at a
/// time (one past it is closed as it is accepted). Then it stops accepting;
/// for `drain` (or until clients have closed them all) it serves the
/// connections it has, each answer saying `Connection: close`; then it
/// closes the idle ones and waits (at most [`SHUTDOWN_LIMIT`]) for the
/// requests in flight.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    max_connections: u32,
    drain: Duration,
    open_connections: Gauge,
) {
    let open = Arc::new(Semaphore::new(max_connections as usize));
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
        let draining = shutdown.clone();
        // Each request knows its client's address (rate limits of
        // anonymous callers count by it).
        let service = router
            .clone()
            .map_request(move |request: http::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .map_response(move |mut response: Response| {
                if draining.is_cancelled() {
                    // hyper closes the connection once this answer is sent.
                    response
                        .headers_mut()
                        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                response
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
    // Every permit back means every connection closed.
    if tokio::time::timeout(drain, open.acquire_many(max_connections))
        .await
        .is_err()
    {
        tracing::debug!(?drain, "drain over; closing idle connections");
    }
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
