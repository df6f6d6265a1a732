//! The names dishpatch puts on the wire beside its messages: HTTP headers
//! and gRPC metadata keys, and the markers carried in them. Written once
//! here, read by the edge, the pool and the services alike.

use tonic::{Status, metadata::MetadataValue};

/// The request id: sent by a client (or made by the edge), carried by every
/// call made for the request, named in every log line and error body.
pub const REQUEST_ID: &str = "x-request-id";

/// W3C Trace Context: the trace a request belongs to and the span that
/// made a call ([`crate::trace`]), as HTTP headers and gRPC metadata alike.
pub const TRACEPARENT: &str = "traceparent";

/// The vendors' part of W3C Trace Context, passed on unchanged.
pub const TRACESTATE: &str = "tracestate";

/// The response header that names the replica that answered.
pub const SERVED_BY: &str = "x-served-by";

/// The caller's deadline as microseconds since the Unix epoch, beside gRPC's
/// own relative `grpc-timeout`. A relative timeout starts counting when the
/// callee reads the call, so a process that was stopped (SIGSTOP, a long
/// pause) with calls queued would find them all fresh when it resumes; the
/// absolute deadline lets it see that their callers gave up long ago.
pub const DEADLINE: &str = "x-dishpatch-deadline";

/// gRPC's relative deadline (the standard `grpc-timeout` metadata).
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The REST header that makes a write safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Status metadata by which a replica says its UNAVAILABLE is not its own
/// but that of what it depends on (another service, its store); the value
/// names it. Callers' pools keep such a replica in rotation.
pub const DEPENDENCY: &str = "x-dishpatch-dependency";

/// The HTTP headers among these names as [`http::HeaderName`]s, made at
/// compile time: a header inserted or looked up by a `&str` name has that
/// name parsed every time (2.7% of the edge's CPU under read load).
pub mod header {
    use http::HeaderName;

    /// [`super::REQUEST_ID`].
    pub const REQUEST_ID: HeaderName = HeaderName::from_static(super::REQUEST_ID);
    /// [`super::TRACEPARENT`].
    pub const TRACEPARENT: HeaderName = HeaderName::from_static(super::TRACEPARENT);
    /// [`super::TRACESTATE`].
    pub const TRACESTATE: HeaderName = HeaderName::from_static(super::TRACESTATE);
    /// [`super::SERVED_BY`].
    pub const SERVED_BY: HeaderName = HeaderName::from_static(super::SERVED_BY);
}

/// `status` (UNAVAILABLE) marked as caused by `dependency`, so callers'
/// pools keep the replica that answered it in rotation.
pub fn dependency_unavailable(mut status: Status, dependency: &'static str) -> Status {
    status
        .metadata_mut()
        .insert(DEPENDENCY, MetadataValue::from_static(dependency));
    status
}
