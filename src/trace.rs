//! W3C Trace Context: which trace a request belongs to, and which span of
//! it a hop is. The edge takes a caller's `traceparent` (and `tracestate`)
//! or starts a trace; every call made for the request carries it on
//! ([`crate::call::CallContext`]), so one order can be followed through
//! every service's log lines by its trace id.
//!
//! `traceparent` is `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags:
//! 2 hex>`; a value that breaks the rules (upper case, all-zero ids, the
//! reserved version `ff`) is ignored and a new trace started, as the
//! specification asks.

use crate::wire::header;
use http::HeaderName;

/// A span of a trace: the trace's id, this span's, the span that called it
/// (if any), whether the trace is sampled, and the vendors' `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    parent_id: Option<u64>,
    sampled: bool,
    state: Option<String>,
}

/// The longest `tracestate` kept (the specification's 32 members of at
/// most 256 characters are more than any caller of ours sends).
const MAX_TRACESTATE: usize = 512;

impl TraceContext {
    /// The first span of a new trace.
    pub fn start() -> Self {
        Self {
            trace_id: random_trace_id(),
            span_id: random_span_id(),
            parent_id: None,
            sampled: true,
            state: None,
        }
    }

    /// A new span of the trace a caller's `traceparent` names, child of the
    /// caller's span; `None` if the header breaks the rules.
    pub fn continued(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let (trace_id, parent_id, flags) = parse_traceparent(traceparent)?;
        let state = tracestate
            .map(str::trim)
            .filter(|state| !state.is_empty() && state.len() <= MAX_TRACESTATE)
            .filter(|state| state.bytes().all(|b| (b' '..=b'~').contains(&b)))
            .map(str::to_owned);
        Some(Self {
            trace_id,
            span_id: random_span_id(),
            parent_id: Some(parent_id),
            sampled: flags & 1 == 1,
            state,
        })
    }

    /// A span of the trace a caller's `traceparent` names, if it sent a
    /// valid one, else of a new trace: what a hop that receives a request
    /// works in.
    pub fn continued_or_started(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        traceparent
            .and_then(|traceparent| Self::continued(traceparent, tracestate))
            .unwrap_or_else(Self::start)
    }

    /// A span of the trace the `traceparent` and `tracestate` headers of a
    /// request name, or of a new trace: what a hop that receives the
    /// request works in.
    pub fn of_headers(headers: &http::HeaderMap) -> Self {
        let text = |name: HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
        Self::continued_or_started(text(header::TRACEPARENT), text(header::TRACESTATE))
    }

    /// The span that called this one (what a link to it names), if the
    /// trace was continued.
    pub fn caller(&self) -> Option<Self> {
        self.parent_id.map(|caller| Self {
            span_id: caller,
            parent_id: None,
            state: self.state.clone(),
            ..*self
        })
    }

    /// A span of the same trace, child of this one: what one attempt of a
    /// call made from this span is.
    pub fn child(&self) -> Self {
        Self {
            span_id: random_span_id(),
            parent_id: Some(self.span_id),
            state: self.state.clone(),
            ..*self
        }
    }

    /// The trace's id, as 32 lower-case hex digits (how logs and error
    /// bodies show it).
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The trace's id as a number (for the exported span).
    pub(crate) fn trace_id_bits(&self) -> u128 {
        self.trace_id
    }

    /// Whether the trace is sampled: its spans are recorded only if so.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// This span's id.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The caller's span, if the trace was continued.
    pub fn parent_id(&self) -> Option<u64> {
        self.parent_id
    }

    /// The `traceparent` naming this span as the parent: what a call made
    /// from this span sends, and what the edge answers with.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The vendors' `tracestate`, passed on unchanged.
    pub fn tracestate(&self) -> Option<&str> {
        self.state.as_deref()
    }
}

/// The trace id a valid `traceparent` names, as [`TraceContext::trace_id`]
/// shows it; for a log line, where no span of it is needed.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    parse_traceparent(traceparent).map(|(trace_id, ..)| format!("{trace_id:032x}"))
}

/// The trace id, parent id and flags of a `traceparent`.
fn parse_traceparent(value: &str) -> Option<(u128, u64, u8)> {
    let value = value.trim();
    let mut fields = value.split('-');
    let version = hex_field(fields.next()?, 2)?;
    let trace_id = hex_field(fields.next()?, 32)?;
    let parent_id = hex_field(fields.next()?, 16)?;
    let flags = hex_field(fields.next()?, 2)?;
    // Version 00 has exactly four fields; a later version may add more.
    let more = fields.next().is_some();
    if version == 0xff || (version == 0 && more) || trace_id == 0 || parent_id == 0 {
        return None;
    }
    Some((
        trace_id,
        u64::try_from(parent_id).ok()?,
        u8::try_from(flags).ok()?,
    ))
}

/// A field of exactly `digits` lower-case hex digits.
fn hex_field(field: &str, digits: usize) -> Option<u128> {
    let valid = field.len() == digits && field.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| u128::from_str_radix(field, 16).ok()).flatten()
}

/// A random, non-zero trace id. fastrand's generator (per thread, no
/// system call) is random enough for ids that only need to be unique.
fn random_trace_id() -> u128 {
    fastrand::u128(1..)
}

/// A random, non-zero span id.
fn random_span_id() -> u64 {
    fastrand::u64(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_traceparent_as_a_child_span() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let continued = TraceContext::continued(header, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(continued.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(continued.parent_id(), Some(0x00f0_67aa_0ba9_02b7));
        assert_ne!(continued.span_id(), 0x00f0_67aa_0ba9_02b7, "a span of its own");
        assert_eq!(continued.tracestate(), Some("congo=t61rcWkgMzE"));
        let sent = continued.traceparent();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent.ends_with("-01"),
            "{sent}"
        );
        let next_hop = TraceContext::continued(&sent, None).unwrap();
        assert_eq!(next_hop.parent_id(), Some(continued.span_id()));

        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(
            TraceContext::continued(unsampled, None)
                .unwrap()
                .traceparent()
                .ends_with("-00")
        );
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        assert!(
            TraceContext::continued(future, None).is_some(),
            "a later version's extra fields"
        );
    }

    #[test]
    fn refuses_what_breaks_the_rules() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::continued(bad, None), None, "{bad:?}");
        }
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let junk_state = TraceContext::continued(header, Some("a=\u{7f}b")).unwrap();
        assert_eq!(
            junk_state.tracestate(),
            None,
            "an unprintable tracestate is dropped"
        );
    }

    #[test]
    fn a_child_is_a_new_span_of_the_same_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let parent = TraceContext::continued(header, Some("congo=t61rcWkgMzE")).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.parent_id(), Some(parent.span_id()));
        assert_ne!(child.span_id(), parent.span_id());
        assert!(!child.is_sampled(), "sampled as its parent");
        assert_eq!(child.tracestate(), parent.tracestate());
    }

    #[test]
    fn a_started_trace_has_random_non_zero_ids() {
        let (a, b) = (TraceContext::start(), TraceContext::start());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), 0);
        assert_eq!(a.parent_id(), None);
        let parsed = TraceContext::continued(&a.traceparent(), None).unwrap();
        assert_eq!(parsed.trace_id(), a.trace_id());
    }
}
