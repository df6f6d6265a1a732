//! Request ids, traces and error bodies: every request gets an id (the
//! caller's `x-request-id` if it is sensible, else a new one) and a span of
//! a trace (of the caller's `traceparent` if it sent a valid one, else of a
//! new trace), a tracing span that carries both, both in the response
//! (`x-request-id`, `traceparent`), and, for a failed request, the JSON
//! error body that names both.

use super::{
    error::{ErrorBody, ErrorDetails},
    metrics::{method_of, route_of},
};
use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use dishpatch::{
    otlp::{self, KeyValue, Span, SpanKind},
    trace::TraceContext,
    wire::header::{REQUEST_ID as REQUEST_ID_HEADER, TRACEPARENT},
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
        .get(&REQUEST_ID_HEADER)
        .filter(|id| is_sensible(id.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(dishpatch::ids::REQUEST.generate()).expect("an id is a valid header")
        });
    let trace = TraceContext::of_headers(request.headers());
    let trace_id = trace.trace_id();
    let traceparent = HeaderValue::try_from(trace.traceparent()).expect("hex is a valid header");
    let mut exported = exported_span(&request, &trace, &id);
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
    let status = response.status();
    exported.record(|| {
        [KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        )]
    });
    if status.is_server_error() {
        exported.fail(|| status.to_string());
    }
    exported.end();
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
    let request_id = id.to_str().unwrap_or_default().to_owned();
    let body = ErrorBody::new(details.code, details.message, request_id, trace_id);
    let (parts, _) = original.into_parts();
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The request's span as exported ([`dishpatch::otlp`]), named by its route
/// template; scrapes of `/metrics` and `/health` are left out, as the
/// plumbing they are.
fn exported_span(request: &Request, trace: &TraceContext, id: &HeaderValue) -> Span {
    if !otlp::is_on() {
        return Span::default();
    }
    // Named as metrics count it: a route template, never the raw path.
    let route = route_of(request.extensions().get::<MatchedPath>());
    let method = method_of(request.method());
    let plumbing = matches!(route, "/metrics" | "/health");
    let mut span = Span::start((!plumbing).then_some(trace), SpanKind::Server, || {
        format!("{method} {route}").into()
    });
    span.record(|| {
        [
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new("url.path", request.uri().path().to_owned()),
            KeyValue::new("dishpatch.request_id", id.to_str().unwrap_or_default().to_owned()),
        ]
    });
    span
}

/// 1 to 128 visible ASCII characters: anything else is replaced.
fn is_sensible(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}
