//! Prometheus metrics every dishpatch process shares ([`prometheus_client`],
//! the crate linkerd uses): the registry and its text format, the latency
//! buckets, gRPC codes as label values, and the recording of a server's
//! RPCs ([`RecordRpcs`], a tower layer on the tonic server), which counts
//! them and gives each the span of its trace that it is.
//!
//! A service serves its metrics at `GET /metrics` over HTTP/1.1 on its gRPC
//! port ([`crate::server`]): one port per replica, so whatever finds the
//! replica (the launcher's map, DNS) finds its metrics too.

use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, LazyLock},
    task::{Context, Poll, ready},
    time::Instant,
};
use tonic::Code;

use crate::{
    otlp::{KeyValue, Span, SpanKind},
    trace::TraceContext,
    wire::REQUEST_ID,
};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A registry whose metrics are all named `dishpatch_…`.
pub fn registry() -> Registry {
    Registry::with_prefix("dishpatch")
}

/// The metrics of `registry` in Prometheus's text format.
pub fn render(registry: &Registry) -> String {
    let mut rendered = String::new();
    prometheus_text::encode(&mut rendered, registry).expect("writing to a String does not fail");
    rendered
}

/// A latency histogram with buckets from 0.5 ms to ~8 s, doubling.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Counts one in a gauge while it lives: whatever is open or in flight,
/// however it ends (a client going away drops it half-way).
#[derive(Debug)]
pub struct Held(Gauge);

impl Held {
    /// Adds one to `gauge` until dropped.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A gRPC code's canonical name (`NOT_FOUND`), as label values spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every gRPC code, in number order (`Code as usize` indexes it).
pub const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// An RPC's method, as its labels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

/// An RPC's method and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HandledLabels {
    service: &'static str,
    method: &'static str,
    code: &'static str,
}

/// Every method a dishpatch server can serve, by request path
/// (`/dishpatch.order.v1.OrderService/PlaceOrder`), read from the
/// descriptor sets: labels come from here, so a caller inventing paths
/// cannot invent series.
static METHODS: LazyLock<HashMap<String, (String, String)>> = LazyLock::new(|| {
    use prost::Message as _;
    let sets = [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashMap::new();
    for set in sets {
        let set = prost_types::FileDescriptorSet::decode(set).expect("built-in descriptor sets decode");
        for file in set.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let path = format!("/{service_name}/{}", method.name());
                    methods.insert(path, (service_name.clone(), method.name().to_owned()));
                }
            }
        }
    }
    methods
});

fn method_of(path: &str) -> MethodLabels {
    match METHODS.get(path) {
        Some((service, method)) => MethodLabels { service, method },
        None => MethodLabels {
            service: "unknown",
            method: "unknown",
        },
    }
}

/// A gRPC server's RPCs: how many, how they ended, how long they took.
#[derive(Debug)]
pub struct RpcMetrics {
    handled: Family<HandledLabels, Counter>,
    duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
}

impl RpcMetrics {
    /// The metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let handled = Family::default();
        registry.register(
            "grpc_server_handled",
            "RPCs answered, by service, method and gRPC code",
            handled.clone(),
        );
        let duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "grpc_server_handling",
            "Time from an RPC's arrival to its last byte (a stream's whole life), by service and method",
            Unit::Seconds,
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "grpc_server_in_flight",
            "RPCs being handled, streams included",
            in_flight.clone(),
        );
        Self {
            handled,
            duration,
            in_flight,
        }
    }

    fn record(&self, method: MethodLabels, code: Code, started: Instant) {
        self.in_flight.dec();
        self.duration
            .get_or_create(&method)
            .observe(started.elapsed().as_secs_f64());
        let labels = HandledLabels {
            service: method.service,
            method: method.method,
            code: code_name(code),
        };
        self.handled.get_or_create(&labels).inc();
    }
}

/// A tower layer recording every gRPC request a server answers: counted
/// into [`RpcMetrics`], and, when spans are exported ([`crate::otlp`]),
/// made a span of the caller's trace (or of a new one), exported when it
/// ends and found by its handler in the request's extensions
/// ([`crate::call::CallContext::of`]). Requests that are not gRPC (a
/// metrics scrape) pass unrecorded.
#[derive(Debug, Clone)]
pub struct RecordRpcs(Arc<RpcMetrics>);

impl RecordRpcs {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<RpcMetrics>) -> Self {
        Self(metrics)
    }
}

impl<S> tower::Layer<S> for RecordRpcs {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// [`RecordRpcs`]'s service.
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Recorded<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<RecordedBody<ResBody>>;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        let rpc = is_grpc.then(|| {
            self.metrics.in_flight.inc();
            let method = method_of(request.uri().path());
            let span = server_span(&mut request, method);
            Rpc {
                metrics: self.metrics.clone(),
                method,
                span,
                started: Instant::now(),
                ended: false,
            }
        });
        RecordedFuture {
            inner: self.inner.call(request),
            rpc,
        }
    }
}

/// The span of its trace that an RPC of `method` is, exported if export is
/// on, and put in the request's extensions for its handler. Health checks
/// and reflection, the plumbing, make none.
fn server_span<B>(request: &mut http::Request<B>, method: MethodLabels) -> Span {
    let traced = !method.service.starts_with("grpc.") && method.service != "unknown";
    if !traced || !crate::otlp::is_on() {
        return Span::default();
    }
    let headers = request.headers();
    let trace = TraceContext::of_headers(headers);
    let mut span = Span::start(Some(&trace), SpanKind::Server, || {
        format!("{}/{}", method.service, method.method).into()
    });
    span.record(|| {
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .map(|id| KeyValue::new("dishpatch.request_id", id.to_owned()));
        [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", method.service),
            KeyValue::new("rpc.method", method.method),
        ]
        .into_iter()
        .chain(request_id)
    });
    request.extensions_mut().insert(trace);
    span
}

/// An RPC being answered, recorded once when it ends, however it ends:
/// counted, and its span exported.
#[derive(Debug)]
struct Rpc {
    metrics: Arc<RpcMetrics>,
    method: MethodLabels,
    span: Span,
    started: Instant,
    ended: bool,
}

impl Rpc {
    fn ended(mut self, code: Code) {
        self.end(code);
    }

    fn end(&mut self, code: Code) {
        if !self.ended {
            self.ended = true;
            self.metrics.record(self.method, code, self.started);
            self.span.record_grpc_status(code);
        }
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        // Dropped before its status was known: the caller went away.
        self.end(Code::Cancelled);
    }
}

/// The code in a `grpc-status` header or trailer.
fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|status| Code::from_bytes(status.as_bytes()))
}

pin_project! {
    /// [`Recorded`]'s future: an answer that carries its status in its
    /// headers (a failure) ends the RPC; any other hands it to the body.
    #[derive(Debug)]
    pub struct RecordedFuture<F> {
        #[pin]
        inner: F,
        rpc: Option<Rpc>,
    }
}

impl<F, ResBody, E> Future for RecordedFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<RecordedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answered = ready!(this.inner.poll(cx));
        let mut rpc = this.rpc.take();
        Poll::Ready(answered.map(|response| {
            if let Some(code) = status_in(response.headers())
                && let Some(rpc) = rpc.take()
            {
                rpc.ended(code);
            }
            response.map(|inner| RecordedBody { inner, rpc })
        }))
    }
}

pin_project! {
    /// A response body that ends its RPC with the status in its trailers,
    /// or as CANCELLED if it is dropped before them.
    #[derive(Debug)]
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        rpc: Option<Rpc>,
    }
}

impl<B: Body> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let ended = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| status_in(trailers).unwrap_or(Code::Unknown)),
            // A body that fails or ends without trailers ended the RPC
            // without a status.
            Some(Err(_)) | None => Some(Code::Unknown),
        };
        if let Some(code) = ended
            && let Some(rpc) = this.rpc.take()
        {
            rpc.ended(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
