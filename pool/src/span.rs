//! The span one attempt of a call is, exported when export is on
//! ([`dishpatch::otlp`]): the child of the call's span, and the parent of
//! the span its replica makes of it, so a trace shows every retry and hedge
//! and the replica each went to.

use crate::{
    channel::{ReplicaChannel, SentMethod},
    replica::Replica,
};
use dishpatch::{
    call::CallContext,
    otlp::{self, KeyValue, Span, SpanKind},
};
use tonic::Code;

/// An attempt's span: named after the method its channel sent once it is
/// known, and ended CANCELLED if dropped before its code was (a hedge that
/// lost, a call given up).
#[derive(Debug)]
pub(crate) struct AttemptSpan {
    /// The context the attempt sends, when it is a span of its own.
    context: Option<CallContext>,
    span: Span,
    sent: Option<SentMethod>,
    ended: bool,
}

impl AttemptSpan {
    /// The span of an attempt of a call made in `call`, on `replica` of
    /// `service`: none with export off.
    pub(crate) fn start(call: &CallContext, service: &'static str, replica: &Replica) -> Self {
        if !otlp::is_on() {
            return Self {
                context: None,
                span: Span::default(),
                sent: None,
                ended: true,
            };
        }
        let context = call.for_attempt();
        let mut span = Span::start(context.trace(), SpanKind::Client, || service.into());
        span.record(|| {
            [
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("dishpatch.replica", replica.addr().to_owned()),
            ]
        });
        let sent = span.is_recording().then(SentMethod::default);
        let ended = sent.is_none();
        Self {
            context: Some(context),
            span,
            sent,
            ended,
        }
    }

    /// What the attempt of a call made in `call` sends: a span of its own
    /// when it has one, else the call's.
    pub(crate) fn context<'a>(&'a self, call: &'a CallContext) -> &'a CallContext {
        self.context.as_ref().unwrap_or(call)
    }

    /// The replica's channel, telling this span the method it sends.
    pub(crate) fn channel(&self, replica: &Replica) -> ReplicaChannel {
        ReplicaChannel::new(replica.channel(), self.sent.clone())
    }

    /// Ends it, the attempt having ended with `code`.
    pub(crate) fn ended(mut self, code: Code) {
        self.end(code);
    }

    fn end(&mut self, code: Code) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(method) = self.sent.as_ref().and_then(|sent| sent.get()) {
            let (service, method) = (method.service(), method.method());
            self.span.rename(|| Some(format!("{service}/{method}").into()));
            self.span.record(|| {
                [
                    KeyValue::new("rpc.service", service.to_owned()),
                    KeyValue::new("rpc.method", method.to_owned()),
                ]
            });
        }
        self.span.record_grpc_status(code);
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}
