//! The outbox relay: delivers the notifications that order changes wrote to
//! the outbox to notify-svc, oldest first, and forgets each once delivered.
//!
//! Each replica relays the notifications its own writes queued, and
//! another's only once they have waited past the takeover time (that
//! replica stopped, or is stuck): two relays that both sent every row made
//! notify-svc record each twice (BENCHMARKS.md). Delivery is at least once:
//! a crash between delivering and forgetting, or a takeover of a relay that
//! was only slow, sends a notification twice, and notify-svc records each
//! event id once. While notify-svc is down the relay backs off
//! (doubling, with jitter) and the outbox keeps every notification.

use crate::store::{OrderStore, Pending};
use dishpatch::proto::notify::v1::{
    RecordNotificationRequest, RecordNotificationsRequest, notify_service_client::NotifyServiceClient,
};
use dishpatch::time::{Backoff, jittered};
use dishpatch::{
    call::CallContext,
    otlp::{KeyValue, Span, SpanKind},
    store::WriteError,
    trace::TraceContext,
};
use dishpatch_pool::{CallError, CallKind, ReplicaPool};
use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::{sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many notifications one pass reads from the outbox.
const BATCH: i64 = 100;
/// The first wait after a failed delivery.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Wakes the relay when this replica has written to the outbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    pub(crate) fn wake(&self) {
        self.0.notify_one();
    }
}

/// The relay of one replica.
#[derive(Debug)]
pub(crate) struct OutboxRelay {
    pub(crate) store: OrderStore,
    pub(crate) notify: ReplicaPool,
    pub(crate) waker: RelayWaker,
    pub(crate) poll_interval: Duration,
    /// How long another replica's notifications wait before this relay
    /// delivers them too.
    pub(crate) takeover: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) metrics: RelayMetrics,
}

/// What an operator watches of the outbox: how much waits, and how long
/// notifications wait.
#[derive(Debug, Clone)]
pub(crate) struct RelayMetrics {
    pending: Gauge,
    lag: Histogram,
    relayed: Counter,
}

impl RelayMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            pending: Gauge::default(),
            lag: dishpatch::metrics::latency_histogram(),
            relayed: Counter::default(),
        };
        registry.register(
            "outbox_pending",
            "Notifications waiting in the outbox, as the relay last counted them (replicas share the outbox)",
            metrics.pending.clone(),
        );
        registry.register_with_unit(
            "outbox_relay_lag",
            "Time from a notification entering the outbox to notify-svc recording it",
            Unit::Seconds,
            metrics.lag.clone(),
        );
        registry.register(
            "outbox_relayed",
            "Notifications this replica relayed to notify-svc",
            metrics.relayed.clone(),
        );
        metrics
    }
}

impl OutboxRelay {
    /// Relays until `stop`; what is left stays in the outbox for the next run.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(MIN_BACKOFF, self.max_backoff);
        loop {
            let wait = match self.deliver_batch().await {
                Ok(delivered) if delivered as i64 == BATCH => continue,
                Ok(delivered) => {
                    if delivered > 0 {
                        tracing::debug!(delivered, "notifications relayed");
                    }
                    backoff.reset();
                    self.poll_interval
                }
                Err(error) => {
                    let wait = jittered(backoff.next_wait(), 0.5);
                    tracing::warn!(%error, retry_in = ?wait, "relaying notifications failed; they stay in the outbox");
                    wait
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.waker.0.notified(), if backoff.is_reset() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers up to one batch, oldest first, in one call, and forgets it
    /// once notify-svc recorded it. Returns how many were delivered.
    async fn deliver_batch(&self) -> Result<usize, RelayError> {
        let pending = (self.store)
            .pending_outbox(BATCH, self.takeover)
            .await
            .map_err(WriteError::from)?;
        // A full batch may leave more behind: count them. The count is for
        // the metrics only: failing it must not hold the delivery up.
        let depth = match pending.len() as i64 {
            BATCH => self.store.outbox_depth().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "counting the outbox failed");
                BATCH
            }),
            short => short,
        };
        self.metrics.pending.set(depth);
        if pending.is_empty() {
            return Ok(0);
        }
        let queued_at: Vec<i64> = pending.iter().map(|pending| pending.queued_at).collect();
        let (outbox_ids, notifications): (Vec<i64>, Vec<_>) = pending
            .into_iter()
            .map(|Pending { outbox_id, event, .. }| {
                let notification = RecordNotificationRequest {
                    event_id: event.event_id,
                    order_id: event.order_id,
                    recipient: event.recipient,
                    kind: event.kind,
                    message: event.message,
                    traceparent: event.traceparent.unwrap_or_default(),
                };
                (outbox_id, notification)
            })
            .unzip();
        // The delivery is a span of the trace of the first notification whose
        // trace is sampled, child of the span that wrote it, and linked to
        // the spans that wrote the others (each notification names its own
        // trace too).
        // Parsed again only for links, which only a recorded span has.
        let traced = || {
            notifications
                .iter()
                .filter_map(|notification| TraceContext::continued(&notification.traceparent, None))
        };
        let delivery = traced()
            .find(TraceContext::is_sampled)
            .or_else(|| traced().next());
        let mut span = Span::start(delivery.as_ref(), SpanKind::Internal, || {
            "relay notifications".into()
        });
        if span.is_recording() {
            let mut linked: Vec<TraceContext> = delivery.iter().filter_map(TraceContext::caller).collect();
            let sampled = traced().filter(TraceContext::is_sampled);
            for writer in sampled.filter_map(|trace| trace.caller()) {
                if !linked.contains(&writer) {
                    span.link(&writer);
                    linked.push(writer);
                }
            }
            let count = notifications.len() as i64;
            span.record(|| [KeyValue::new("dishpatch.notifications", count)]);
        }
        let context = delivery.map_or_else(CallContext::default, |trace| {
            CallContext::default().with_trace(trace)
        });
        let request = RecordNotificationsRequest { notifications };
        // Recording is idempotent on the event id: safe to retry anywhere.
        // No caller waits: the pool's default deadline bounds the call.
        self.notify
            .call(
                &context,
                CallKind::IdempotentWrite,
                request,
                |channel, request| async move {
                    NotifyServiceClient::new(channel)
                        .record_notifications(request)
                        .await
                },
            )
            .await
            .inspect_err(|error| span.fail(|| error.to_string()))?;
        self.store.delivered(&outbox_ids).await?;
        let now = dishpatch::time::now_micros();
        for queued_at in queued_at {
            self.metrics
                .lag
                .observe(dishpatch::time::seconds_between(queued_at, now));
        }
        self.metrics.relayed.inc_by(outbox_ids.len() as u64);
        self.metrics.pending.dec_by(outbox_ids.len() as i64);
        Ok(outbox_ids.len())
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("notify-svc: {0}")]
    Notify(#[from] CallError),
    #[error("outbox: {0}")]
    Store(#[from] WriteError),
}
