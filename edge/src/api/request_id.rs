//! Request ids, traces and error bodies: every request gets an id (the
//! caller's `x-request-id` if it is sensible, else a new one) and a span of
//! a trace (of the caller's `traceparent` if it sent a valid one, else of a
//! new trace), a tracing span that carries both, both in the response
//! (`x-request-id`, `traceparent`), and, for a failed request, the JSON
//! error body that names both.

use super::error::{ErrorBody, ErrorDetail, ErrorDetails};
use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use dishpatch::{
    trace::TraceContext,
    wire::{REQUEST_ID as REQUEST_ID_HEADER, TRACEPARENT, TRACESTATE},
};
use http::{HeaderValue, StatusCode};
use tracing::Instrument;

/// The id of the request being served (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// The middleware: outermost, so every response, errors from any layer
/// included, carries the id.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .filter(|id| is_sensible(id.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(dishpatch::ids::REQUEST.generate()).expect("an id is a valid header")
        });
    let trace = trace_of(request.headers());
    let trace_id = trace.trace_id();
    let traceparent = HeaderValue::try_from(trace.traceparent()).expect("hex is a valid header");
    request.extensions_mut().insert(RequestId(id.clone()));
    request.extensions_mut().insert(trace);
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = request.uri().path(),
        request_id = %id.to_str().unwrap_or_default(),
        trace_id = %trace_id,
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Some(details) = response.extensions_mut().remove::<ErrorDetails>() {
        response = error_body(response.status(), details, &id, trace_id, response);
    }
    span.in_scope(
        || tracing::debug!(status = response.status().as_u16(), elapsed = ?started.elapsed(), "answered"),
    );
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response.headers_mut().insert(TRACEPARENT, traceparent);
    response
}

fn error_body(
    status: StatusCode,
    details: ErrorDetails,
    id: &HeaderValue,
    trace_id: String,
    original: Response,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: details.code,
            message: details.message,
            request_id: id.to_str().unwrap_or_default().to_owned(),
            trace_id,
        },
    };
    let (parts, _) = original.into_parts();
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// A span of the trace the caller's `traceparent` names, or of a new one.
fn trace_of(headers: &http::HeaderMap) -> TraceContext {
    let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
    TraceContext::continued_or_started(header(TRACEPARENT), header(TRACESTATE))
}

/// 1 to 128 visible ASCII characters: anything else is replaced.
fn is_sensible(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}
