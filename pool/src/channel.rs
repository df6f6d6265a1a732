//! The channel one attempt of a call goes through: a replica's tonic
//! channel, as a tower service the generated clients run over, that tells
//! failures to get an answer apart from answers.
//!
//! A tonic channel cannot be trusted to say a replica is gone: after a
//! failed connect it still reports ready (tonic#643). So whether an attempt
//! reached its replica is read from what the call itself returned: a
//! transport error comes back as [`Unanswered`], the source of the status
//! tonic makes of it.

use futures_util::future::BoxFuture;
use std::{
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};
use tonic::{GrpcMethod, body::Body, transport::Channel};
use tower::{BoxError, Service};

/// A replica's channel for one attempt. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaChannel {
    channel: Channel,
    /// Where to tell the attempt's span which method was called, if it is
    /// recorded: only the generated client that sends it knows.
    sent: Option<SentMethod>,
}

/// The method an attempt called, once it was sent.
pub(crate) type SentMethod = Arc<OnceLock<GrpcMethod<'static>>>;

impl ReplicaChannel {
    pub(crate) fn new(channel: Channel, sent: Option<SentMethod>) -> Self {
        Self { channel, sent }
    }
}

/// An attempt that got no answer from its replica.
#[derive(Debug)]
pub(crate) struct Unanswered {
    pub(crate) why: Why,
    /// What went wrong, with its causes.
    pub(crate) message: String,
}

/// Why an attempt got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// No connection could be made: nothing was sent.
    NotConnected,
    /// The request's own timeout (`grpc-timeout`, which the channel
    /// enforces too) passed first.
    TimedOut,
    /// The connection failed after the request may have been sent.
    Broken,
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unanswered {}

impl Unanswered {
    fn of(error: BoxError) -> Self {
        let why = if caused_by::<tonic::ConnectError>(&*error) {
            Why::NotConnected
        } else if caused_by::<tonic::TimeoutExpired>(&*error) {
            Why::TimedOut
        } else {
            Why::Broken
        };
        Self {
            why,
            message: error_chain(&*error),
        }
    }
}

impl Service<http::Request<Body>> for ReplicaChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.channel
            .poll_ready(context)
            .map_err(|error| Unanswered::of(error.into()).into())
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if let Some(sent) = &self.sent
            && let Some(method) = request.extensions().get::<GrpcMethod<'static>>()
        {
            let _ = sent.set(method.clone());
        }
        let sent = self.channel.call(request);
        Box::pin(async move { sent.await.map_err(|error| Unanswered::of(error.into()).into()) })
    }
}

/// An error and its sources, as one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
