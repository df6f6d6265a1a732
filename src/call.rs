//! What a call carries from hop to hop: the request id, the trace it
//! belongs to ([`TraceContext`]), and the deadline the caller set, so a
//! downstream call gets only the time that remains and a callee can tell
//! that its caller has given up.
//!
//! The deadline travels twice: as gRPC's relative `grpc-timeout`, which
//! tonic's server enforces, and as an absolute time
//! ([`wire::DEADLINE`](crate::wire::DEADLINE)), which survives a callee that
//! was stopped with the call queued (a relative timeout only starts when
//! the call is read). A callee keeps the earlier of the two, giving the
//! absolute one [`CLOCK_SKEW_ALLOWANCE`]: hosts' clocks differ a little, and
//! a callee whose clock runs ahead must not refuse every call.
//!
//! A callee keeps back part of a relative timeout (a tenth, at most 100 ms): the
//! caller's clock started before the call reached it, and the answer takes
//! time to get back. Without it, a write committed in that last stretch
//! could be stored after its caller was told it failed. Each hop keeps back
//! its own share: a call two hops down has up to 200 ms less.

use crate::{
    trace::TraceContext,
    wire::{DEADLINE, GRPC_TIMEOUT, REQUEST_ID, TRACEPARENT, TRACESTATE},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tonic::{
    Request,
    metadata::{AsciiMetadataValue, MetadataMap},
};

/// How far a callee's clock may run ahead of its caller's before it reads
/// the caller's absolute deadline as passed too early. Stalls longer than
/// this are still seen.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(1);

/// The most a callee keeps back of a relative timeout for the call's way
/// here and its answer's way back.
const MAX_ANSWER_RESERVE: Duration = Duration::from_millis(100);

/// What a callee keeps back of a relative `timeout` for the call's way here
/// and its answer's way back: a tenth, at most [`MAX_ANSWER_RESERVE`].
fn answer_reserve(timeout: Duration) -> Duration {
    (timeout / 10).min(MAX_ANSWER_RESERVE)
}

/// The request id, trace and deadline of a call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    request_id: Option<AsciiMetadataValue>,
    trace: Option<TraceContext>,
    deadline: Option<Instant>,
}

impl CallContext {
    /// A context that starts here (at the edge): `request_id` on every
    /// call made for it, all done by `deadline`.
    pub fn new(request_id: Option<AsciiMetadataValue>, deadline: Option<Instant>) -> Self {
        Self {
            request_id,
            trace: None,
            deadline,
        }
    }

    /// This context, its calls made from the span `trace`.
    pub fn with_trace(self, trace: TraceContext) -> Self {
        Self {
            trace: Some(trace),
            ..self
        }
    }

    /// Reads the context of an incoming call. Call it first thing in a
    /// handler: a relative deadline counts from now.
    ///
    /// The call's span of its trace is the one the server made of it (a
    /// request extension, the span [`crate::metrics::RecordRpcs`] exports),
    /// else one made here from its metadata.
    pub fn of<T>(request: &Request<T>) -> Self {
        Self::from_metadata(request.metadata(), request.extensions().get::<TraceContext>())
    }

    fn from_metadata(metadata: &MetadataMap, trace: Option<&TraceContext>) -> Self {
        let now = Instant::now();
        let relative = metadata
            .get(GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|timeout| now + timeout - answer_reserve(timeout));
        let absolute = metadata
            .get(DEADLINE)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .map(|micros| {
                let at = UNIX_EPOCH + Duration::from_micros(micros) + CLOCK_SKEW_ALLOWANCE;
                now + at.duration_since(SystemTime::now()).unwrap_or_default()
            });
        let trace = trace
            .cloned()
            .unwrap_or_else(|| TraceContext::of_headers(metadata.as_ref()));
        if trace.parent_id().is_none() {
            // Started here: the call's log span had no trace to name.
            tracing::Span::current().record("trace_id", tracing::field::display(trace.trace_id()));
        }
        Self {
            request_id: metadata.get(REQUEST_ID).cloned(),
            // A span of the caller's trace; a call without one (or with a
            // broken one) starts its own, which its log lines then name.
            trace: Some(trace),
            deadline: match (relative, absolute) {
                (Some(relative), Some(absolute)) => Some(relative.min(absolute)),
                (relative, absolute) => relative.or(absolute),
            },
        }
    }

    /// When the answer must be on its way for the caller to get it in
    /// time, if the caller set a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the caller's deadline has passed: work done for it now is
    /// work nobody waits for, and a write made now could be stored after
    /// its caller was told it failed.
    pub fn has_expired(&self) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= Instant::now())
    }

    /// The request id, if the call came with one.
    pub fn request_id(&self) -> Option<&AsciiMetadataValue> {
        self.request_id.as_ref()
    }

    /// The span of the trace this call is, if it has one.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// This context with another deadline: for a call made again, later,
    /// for the same request (a stream resumed).
    pub fn with_deadline(&self, deadline: Option<Instant>) -> Self {
        Self {
            deadline,
            ..self.clone()
        }
    }

    /// This context, for one attempt of a downstream call: its calls made
    /// from a span of their own, child of this one.
    pub fn for_attempt(&self) -> Self {
        Self {
            request_id: self.request_id.clone(),
            trace: self.trace.as_ref().map(TraceContext::child),
            deadline: self.deadline,
        }
    }

    /// A request carrying `message` for a downstream call made for this
    /// one, which may take `timeout` (no more than what remains of this
    /// call's deadline): the request id, the trace (this call's span as
    /// the parent), and the deadline both ways.
    pub fn request<M>(&self, message: M, timeout: Duration) -> Request<M> {
        let mut request = Request::new(message);
        request.set_timeout(timeout);
        let metadata = request.metadata_mut();
        if let Some(id) = &self.request_id {
            metadata.insert(REQUEST_ID, id.clone());
        }
        if let Some(trace) = &self.trace {
            let traceparent = AsciiMetadataValue::try_from(trace.traceparent()).expect("hex is ASCII");
            metadata.insert(TRACEPARENT, traceparent);
            if let Some(state) = trace
                .tracestate()
                .and_then(|state| AsciiMetadataValue::try_from(state).ok())
            {
                metadata.insert(TRACESTATE, state);
            }
        }
        let deadline = SystemTime::now() + timeout;
        let micros = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        metadata.insert(
            DEADLINE,
            AsciiMetadataValue::try_from(micros.to_string()).expect("digits are ASCII"),
        );
        request
    }
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit
/// (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        for bad in ["", "S", "5", "5x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_request_carries_the_request_id_and_its_deadline_both_ways() {
        let context = CallContext::new(Some("req-42".parse().unwrap()), None);
        let outgoing = context.request((), Duration::from_secs(2));
        let metadata = outgoing.metadata();
        assert_eq!(metadata.get(REQUEST_ID).unwrap(), "req-42");
        let timeout = parse_grpc_timeout(metadata.get(GRPC_TIMEOUT).unwrap().to_str().unwrap()).unwrap();
        assert!(
            timeout <= Duration::from_secs(2) && timeout > Duration::from_secs(1),
            "{timeout:?}"
        );

        let incoming = CallContext::of(&outgoing);
        assert_eq!(incoming.request_id().unwrap(), "req-42");
        let remaining = incoming.deadline().unwrap() - Instant::now();
        assert!(
            remaining <= Duration::from_secs(2) && remaining > Duration::from_secs(1),
            "the relative timeout is the earlier: {remaining:?}"
        );
        assert!(!incoming.has_expired());
    }

    #[test]
    fn a_callee_keeps_back_part_of_a_relative_timeout_for_the_answer() {
        for (timeout, at_most) in [("300m", 270), ("5S", 4900)] {
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert(GRPC_TIMEOUT, timeout.parse().unwrap());
            let remaining = CallContext::of(&request).deadline().unwrap() - Instant::now();
            assert!(
                remaining <= Duration::from_millis(at_most)
                    && remaining > Duration::from_millis(at_most) - Duration::from_millis(50),
                "{timeout}: {remaining:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_request_carries_the_trace_with_its_caller_s_span_as_parent() {
        let edge = TraceContext::start();
        let context = CallContext::new(None, None).with_trace(edge.clone());
        let outgoing = context.request((), Duration::from_secs(1));
        assert_eq!(
            outgoing.metadata().get(TRACEPARENT).unwrap(),
            edge.traceparent().as_str()
        );

        let service = CallContext::of(&outgoing);
        let trace = service.trace().unwrap();
        assert_eq!(trace.trace_id(), edge.trace_id());
        assert_eq!(trace.parent_id(), Some(edge.span_id()));
        let downstream = CallContext::of(&service.request((), Duration::from_secs(1)));
        assert_eq!(downstream.trace().unwrap().parent_id(), Some(trace.span_id()));

        let untraced = CallContext::of(&Request::new(()));
        let started = untraced.trace().expect("a call without a trace starts one");
        assert_eq!(started.parent_id(), None);
    }

    #[tokio::test]
    async fn a_call_read_after_its_absolute_deadline_has_expired() {
        // As a callee stopped for a while finds a call it had queued: the
        // relative timeout looks fresh, the absolute deadline (and the
        // allowance for clock skew) has passed.
        let mut stale = Request::new(());
        stale.metadata_mut().insert(GRPC_TIMEOUT, "5S".parse().unwrap());
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let micros = an_hour_ago.duration_since(UNIX_EPOCH).unwrap().as_micros();
        stale
            .metadata_mut()
            .insert(DEADLINE, micros.to_string().parse().unwrap());
        assert!(CallContext::of(&stale).has_expired());

        // A deadline just passed by the callee's clock is within the
        // allowance: its clock may run ahead.
        let mut skewed = Request::new(());
        let just_passed = SystemTime::now() - Duration::from_millis(100);
        let micros = just_passed.duration_since(UNIX_EPOCH).unwrap().as_micros();
        skewed
            .metadata_mut()
            .insert(DEADLINE, micros.to_string().parse().unwrap());
        assert!(!CallContext::of(&skewed).has_expired());

        let mut fresh = Request::new(());
        fresh.metadata_mut().insert(GRPC_TIMEOUT, "5S".parse().unwrap());
        assert!(!CallContext::of(&fresh).has_expired());
        assert!(CallContext::of(&Request::new(())).deadline().is_none());
    }
}
