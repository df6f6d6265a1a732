//! What a call carries from hop to hop: the request id, and the deadline
//! the caller set (`grpc-timeout`), so a downstream call gets only the time
//! that remains.

use std::time::{Duration, Instant};
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataMap},
};

use crate::wire::{GRPC_TIMEOUT as TIMEOUT_HEADER, REQUEST_ID as REQUEST_ID_HEADER};

/// The request id and deadline of an incoming call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    request_id: Option<AsciiMetadataValue>,
    deadline: Option<Instant>,
}

impl CallContext {
    /// Reads the context of an incoming call. Call it first thing in a
    /// handler: the deadline counts from now.
    pub fn of<T>(request: &Request<T>) -> Self {
        Self::from_metadata(request.metadata())
    }

    fn from_metadata(metadata: &MetadataMap) -> Self {
        let deadline = metadata
            .get(TIMEOUT_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|timeout| Instant::now() + timeout);
        Self {
            request_id: metadata.get(REQUEST_ID_HEADER).cloned(),
            deadline,
        }
    }

    /// When a downstream call made for this one must be done: the caller's
    /// deadline, or `default` from now when the caller set none.
    pub fn deadline(&self, default: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.deadline.unwrap_or_else(|| Instant::now() + default))
    }

    /// A request for a downstream call made on behalf of this one: the same
    /// request id, and a timeout of what remains of the deadline (or
    /// `default_timeout` when the caller set none). DEADLINE_EXCEEDED when
    /// nothing remains.
    pub fn downstream<U>(&self, message: U, default_timeout: Duration) -> Result<Request<U>, Status> {
        let timeout = match self.deadline {
            Some(deadline) => deadline
                .checked_duration_since(Instant::now())
                .filter(|remaining| !remaining.is_zero())
                .ok_or_else(|| Status::deadline_exceeded("the caller's deadline has passed"))?,
            None => default_timeout,
        };
        let mut request = Request::new(message);
        request.set_timeout(timeout);
        if let Some(id) = &self.request_id {
            request.metadata_mut().insert(REQUEST_ID_HEADER, id.clone());
        }
        Ok(request)
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

    #[test]
    fn downstream_carries_request_id_and_remaining_deadline() {
        let mut incoming = Request::new(());
        incoming
            .metadata_mut()
            .insert(REQUEST_ID_HEADER, "req-42".parse().unwrap());
        incoming
            .metadata_mut()
            .insert(TIMEOUT_HEADER, "2S".parse().unwrap());
        let context = CallContext::of(&incoming);

        let outgoing = context.downstream((), Duration::from_secs(60)).unwrap();
        assert_eq!(outgoing.metadata().get(REQUEST_ID_HEADER).unwrap(), "req-42");
        let timeout =
            parse_grpc_timeout(outgoing.metadata().get(TIMEOUT_HEADER).unwrap().to_str().unwrap()).unwrap();
        assert!(
            timeout <= Duration::from_secs(2) && timeout > Duration::from_secs(1),
            "{timeout:?}"
        );
    }

    #[test]
    fn downstream_refuses_a_passed_deadline() {
        let context = CallContext {
            request_id: None,
            deadline: Some(Instant::now()),
        };
        let status = context.downstream((), Duration::from_secs(1)).unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }
}
