//! A replica's channel as a tower service: it says which replica answered
//! (`x-served-by`), counts what it served, and takes the replica out of
//! rotation the moment a call finds it unreachable or UNAVAILABLE, without
//! waiting for the next probe. A tonic channel cannot be trusted to say so
//! itself: after a failed connect it still reports ready (tonic#643).
//!
//! Two failures leave the replica in rotation: a call that ran out of its
//! deadline (DEADLINE_EXCEEDED: the replica is slow for this caller's
//! budget, not gone), and an UNAVAILABLE the replica marks as its
//! dependency's ([`dishpatch::wire::dependency_unavailable`]: order-svc when restaurant-svc
//! is down is itself fine, and its other calls still work).

use super::{
    Shared,
    replica::{Observation, Replica},
};
use dishpatch::wire::{DEPENDENCY, SERVED_BY};
use futures_util::future::BoxFuture;
use std::{
    sync::Arc,
    task::{Context, Poll},
};
use tonic::{Code, Status, body::Body, metadata::MetadataValue};
use tower::{BoxError, Service, ServiceExt};

/// Status metadata marking a call that never reached a replica, so even a
/// write may be sent again: its value says why (`no-replica`, `connect`).
pub(crate) const UNREACHED: &str = "x-dishpatch-unreached";

/// The status of a call that could not be sent anywhere.
pub(crate) fn no_healthy_replica(service: &str) -> Status {
    unreached(
        Status::unavailable(format!("no healthy replica of {service}")),
        "no-replica",
    )
}

fn unreached(mut status: Status, why: &'static str) -> Status {
    status
        .metadata_mut()
        .insert(UNREACHED, MetadataValue::from_static(why));
    status
}

/// Whether a call failed before reaching any replica.
pub(crate) fn never_reached(status: &Status) -> bool {
    status.metadata().get(UNREACHED).is_some()
}

/// Whether a call failed because no replica was in rotation.
pub fn had_no_replica(status: &Status) -> bool {
    status
        .metadata()
        .get(UNREACHED)
        .is_some_and(|why| why == "no-replica")
}

/// One replica's channel, reporting to its pool.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaEndpoint {
    pub(crate) replica: Arc<Replica>,
    pub(crate) shared: Arc<Shared>,
}

impl Service<http::Request<Body>> for ReplicaEndpoint {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The channel's own readiness is awaited per call, below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Self { replica, shared } = self.clone();
        Box::pin(async move {
            let mut channel = replica.channel();
            let sent = match channel.ready().await {
                Ok(ready) => ready.call(request).await,
                Err(error) => Err(error),
            };
            match sent {
                Ok(mut response) => {
                    replica.count_served();
                    if grpc_status(&response) == Some(Code::Unavailable)
                        && !response.headers().contains_key(DEPENDENCY)
                    {
                        shared.observe(&replica, Observation::CallFailed("answered UNAVAILABLE".into()));
                    }
                    response
                        .headers_mut()
                        .insert(SERVED_BY, replica.served_by().clone());
                    Ok(response)
                }
                Err(error) => {
                    let (service, addr) = (&shared.service, replica.addr());
                    if caused_by::<tonic::TimeoutExpired>(&error) {
                        let status =
                            Status::deadline_exceeded(format!("{service} ({addr}) did not answer in time"));
                        return Err(status.into());
                    }
                    let message = error_chain(&error);
                    shared.observe(&replica, Observation::CallFailed(message.clone()));
                    let status = Status::unavailable(format!("{service} ({addr}): {message}"));
                    if caused_by::<tonic::ConnectError>(&error) {
                        // Not connected: the request was never sent.
                        return Err(unreached(status, "connect").into());
                    }
                    Err(status.into())
                }
            }
        })
    }
}

/// The gRPC status of a trailers-only response (how a server answers an
/// error before any message), if any.
fn grpc_status(response: &http::Response<Body>) -> Option<Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Whether `E` is `error` or one of its sources.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<E>() {
            return true;
        }
        cause = error.source();
    }
    false
}
