//! Spans exported over OTLP/gRPC ([`opentelemetry_otlp`]) when the
//! environment names a collector (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); when it does not, a [`Span`] is
//! nothing and costs one check.
//!
//! A span's identity is its [`TraceContext`]: the ids exported are the ids
//! the trace context carries from hop to hop, so a collector joins the
//! spans of every process into one trace with no propagator of its own.
//! That is why spans are built here as the SDK's finished [`SpanData`] and
//! handed to its batch processor (which sends them from a thread of its
//! own), and not through the SDK's tracer, which picks ids itself.
//!
//! The spans: the edge's span of each request (server), each attempt a pool
//! makes (client), each RPC a service answers (server; health checks and
//! reflection are left out), and each batch the outbox relay delivers
//! (linked to the trace of every notification in it).

use crate::trace::TraceContext;
use opentelemetry::{
    InstrumentationScope, Key,
    trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor},
};
use std::{borrow::Cow, sync::OnceLock, time::SystemTime};
use tonic::Code;

pub use opentelemetry::{KeyValue, trace::SpanKind};

/// The variables that turn export on (the second only for traces).
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// The export of this process, once started.
static EXPORT: OnceLock<Export> = OnceLock::new();

#[derive(Debug)]
struct Export {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

/// Export could not start: the environment's settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The exporter refused its settings (an endpoint that is not a URL,
    /// an `https` one: only plain gRPC is built in).
    #[error("starting OTLP export: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A protocol other than gRPC was asked for.
    #[error("starting OTLP export: {0}: only OTLP over gRPC (`grpc`) is built in")]
    Protocol(String),
}

/// Whether spans are exported: when not, a caller may skip what it does
/// only for them.
pub fn is_on() -> bool {
    EXPORT.get().is_some()
}

/// Export, running. [`Exporting::finish`] sends what is still queued.
#[derive(Debug)]
#[must_use = "finish it before the process exits, or its last spans are lost"]
pub struct Exporting(&'static Export);

/// Starts exporting this process's spans, as `service` (unless
/// `OTEL_SERVICE_NAME` names it), if the environment names a collector.
/// The exporter's other settings are the standard variables
/// (`OTEL_EXPORTER_OTLP_TIMEOUT`, `…_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`,
/// `OTEL_RESOURCE_ATTRIBUTES`, …). Call it once, inside the Tokio runtime,
/// which the exporter's gRPC channel runs on.
pub fn start_from_env(service: &str) -> Result<Option<Exporting>, StartError> {
    let set = |name| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let disabled = set("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true"));
    if disabled || !ENDPOINT_VARIABLES.into_iter().any(|name| set(name).is_some()) || EXPORT.get().is_some() {
        return Ok(None);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ] {
        if let Some(protocol) = set(name).filter(|protocol| protocol != "grpc") {
            return Err(StartError::Protocol(format!("{name}={protocol}")));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
    let mut processor = BatchSpanProcessor::builder(exporter).build();
    processor.set_resource(&resource(service));
    let scope = InstrumentationScope::builder("dishpatch")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let export = EXPORT.get_or_init(|| Export { processor, scope });
    tracing::info!(
        endpoint = ENDPOINT_VARIABLES.into_iter().rev().find_map(set),
        "exporting spans over OTLP"
    );
    Ok(Some(Exporting(export)))
}

/// The process the spans come from: `service.name` is `service` and
/// `service.instance.id` a new id, unless the environment
/// (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
fn resource(service: &str) -> Resource {
    let detected = Resource::builder().build();
    let has = |key: &'static str| detected.get(&Key::from_static_str(key));
    let mut resource = Resource::builder();
    let unnamed = has("service.name").is_none_or(|name| name.as_str().starts_with("unknown_service"));
    if unnamed {
        resource = resource.with_service_name(service.to_owned());
    }
    if has("service.instance.id").is_none() {
        let instance = uuid::Uuid::now_v7().to_string();
        resource = resource.with_attribute(KeyValue::new("service.instance.id", instance));
    }
    resource.build()
}

impl Exporting {
    /// Sends the spans still queued (waiting at most 5 s), and stops.
    pub async fn finish(self) {
        let export = self.0;
        // Shutting down blocks until the processor's thread has sent its last
        // batch over a channel that runs on the runtime: not on a runtime
        // thread.
        let stopped = tokio::task::spawn_blocking(move || export.processor.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(%error, "the last spans may not have been exported");
        }
    }
}

/// A span being timed: exported when it is dropped (or [`Span::end`]ed), if
/// export is on and its trace is sampled; nothing otherwise, so what it
/// would record is given as closures, called only when it records.
#[derive(Debug, Default)]
#[must_use = "a span is timed until it is dropped"]
pub struct Span(Option<Box<SpanData>>);

impl Span {
    /// Starts the span `trace` is (none without a trace), of `kind`, named
    /// `name`: for a server span, its parent was the caller's; for others,
    /// this process's.
    pub fn start(
        trace: Option<&TraceContext>,
        kind: SpanKind,
        name: impl FnOnce() -> Cow<'static, str>,
    ) -> Self {
        let (Some(export), Some(trace)) = (EXPORT.get(), trace) else {
            return Self(None);
        };
        if !trace.is_sampled() {
            return Self(None);
        }
        let now = SystemTime::now();
        Self(Some(Box::new(SpanData {
            span_context: span_context_of(trace),
            parent_span_id: trace.parent_id().map_or(SpanId::INVALID, SpanId::from),
            parent_span_is_remote: trace.parent_id().is_some() && kind == SpanKind::Server,
            span_kind: kind,
            name: name(),
            start_time: now,
            end_time: now,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: export.scope.clone(),
        })))
    }

    /// Whether it will be exported.
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// Names it, now that the name is known.
    pub fn rename(&mut self, name: impl FnOnce() -> Option<Cow<'static, str>>) {
        if let Some(data) = &mut self.0
            && let Some(name) = name()
        {
            data.name = name;
        }
    }

    /// Adds attributes to it.
    pub fn record<I: IntoIterator<Item = KeyValue>>(&mut self, attributes: impl FnOnce() -> I) {
        if let Some(data) = &mut self.0 {
            data.attributes.extend(attributes());
        }
    }

    /// Links it to the span `trace` is, of another trace that it also
    /// served.
    pub fn link(&mut self, trace: &TraceContext) {
        if let Some(data) = &mut self.0 {
            data.links
                .links
                .push(opentelemetry::trace::Link::with_context(span_context_of(trace)));
        }
    }

    /// Marks it failed, for the reason `description` gives.
    pub fn fail(&mut self, description: impl FnOnce() -> String) {
        if let Some(data) = &mut self.0 {
            data.status = Status::error(description());
        }
    }

    /// Records how the RPC it is ended. A server's span failed if the
    /// fault was the server's (OpenTelemetry's gRPC conventions); a
    /// client's, unless the call succeeded.
    pub fn record_grpc_status(&mut self, code: Code) {
        let Some(data) = &mut self.0 else {
            return;
        };
        data.attributes
            .push(KeyValue::new("rpc.grpc.status_code", code as i64));
        let failed = match data.span_kind {
            SpanKind::Server => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
            _ => code != Code::Ok,
        };
        if failed {
            data.status = Status::error(crate::metrics::code_name(code));
        }
    }

    /// Ends it now (as dropping it does).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let (Some(mut data), Some(export)) = (self.0.take(), EXPORT.get()) {
            data.end_time = SystemTime::now();
            export.processor.on_end(*data);
        }
    }
}

fn span_context_of(trace: &TraceContext) -> SpanContext {
    let state = trace
        .tracestate()
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    let flags = if trace.is_sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        TraceId::from(trace.trace_id_bits()),
        SpanId::from(trace.span_id()),
        flags,
        false,
        state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_records_nothing_when_export_is_off() {
        // This process never started export.
        let mut span = Span::start(Some(&TraceContext::start()), SpanKind::Server, || {
            unreachable!("named only when recording")
        });
        assert!(!span.is_recording());
        span.record(|| -> [KeyValue; 0] { unreachable!("recorded only when recording") });
        span.record_grpc_status(Code::Internal);
    }
}
