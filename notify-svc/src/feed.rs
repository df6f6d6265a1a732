//! The live feed: every notification recorded by any replica sharing the
//! store, in sequence order, to every subscriber of this replica.
//!
//! One tail task per replica reads the log past the last number it has seen
//! (at once after a local insert, and every poll interval for other
//! replicas' inserts) and broadcasts what it finds. A subscriber joins the
//! broadcast first, then replays the log from its resume point, then follows
//! the broadcast, skipping what it has already sent: so nothing recorded
//! between replay and follow is lost or sent twice.

use crate::{
    domain::{NotificationFilter, Page},
    store::NotificationStore,
};
use dishpatch::metrics::Held;
use dishpatch::proto::notify::v1 as pb;
use prometheus_client::{
    metrics::{gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::{sync::Arc, time::Duration};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How many notifications one store read returns, in the tail and replays.
const BATCH: i64 = 500;
/// How far a slow subscriber may fall behind before it replays from the
/// store instead.
const BROADCAST_CAPACITY: usize = 4096;

/// The live feed of one replica.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    sender: broadcast::Sender<Arc<pb::Notification>>,
    recorded_here: Arc<Notify>,
    /// Subscribers being served.
    subscribers: Gauge,
    /// Time from a notification's recording to its broadcast here.
    tail_lag: Histogram,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::Sender::new(BROADCAST_CAPACITY),
            recorded_here: Arc::new(Notify::new()),
            subscribers: Gauge::default(),
            tail_lag: dishpatch::metrics::latency_histogram(),
        }
    }

    /// Registers the feed's metrics in `registry`.
    pub(crate) fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "notify_subscribers",
            "Subscribe streams this replica is serving",
            self.subscribers.clone(),
        );
        registry.register_with_unit(
            "notify_tail_lag",
            "Time from a notification's recording (by any replica) to this replica's feed broadcasting it",
            Unit::Seconds,
            self.tail_lag.clone(),
        );
    }

    /// Tells the tail a notification was just recorded here.
    pub(crate) fn recorded(&self) {
        self.recorded_here.notify_one();
    }

    /// Reads the log's tail and broadcasts it until `stop`.
    pub(crate) async fn run_tail(
        self,
        store: NotificationStore,
        mut last_seq: u64,
        poll_interval: Duration,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.recorded_here.notified() => {}
                () = tokio::time::sleep(poll_interval) => {}
            }
            loop {
                let page = Page {
                    after_seq: last_seq,
                    size: BATCH,
                };
                let batch = match store.list(&NotificationFilter::default(), page).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::warn!(%error, "reading the notification log failed; retrying");
                        break;
                    }
                };
                let full = batch.len() as i64 == BATCH;
                let now = dishpatch::time::now_micros();
                for notification in batch {
                    last_seq = notification.seq;
                    if let Some(recorded) = &notification.created_at
                        && let Ok(recorded) = dishpatch::time::from_timestamp(recorded)
                    {
                        self.tail_lag
                            .observe(dishpatch::time::seconds_between(recorded, now));
                    }
                    // No receiver is fine: nobody is subscribed right now.
                    let _ = self.sender.send(Arc::new(notification));
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// Streams the notifications after `after_seq` that pass `filter` into
    /// `out`, then the new ones as they come, until the client goes away or
    /// `stop`.
    pub(crate) async fn serve_subscriber(
        &self,
        store: NotificationStore,
        filter: NotificationFilter,
        mut after_seq: u64,
        out: mpsc::Sender<Result<pb::Notification, Status>>,
        stop: CancellationToken,
    ) {
        let _subscribed = Held::new(&self.subscribers);
        'replay: loop {
            let mut live = self.sender.subscribe();
            loop {
                let page = Page {
                    after_seq,
                    size: BATCH,
                };
                let batch = match store.list(&filter, page).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::warn!(%error, "replaying the notification log failed");
                        let _ = out
                            .send(Err(Status::unavailable(
                                "reading the notification log failed; resubscribe",
                            )))
                            .await;
                        return;
                    }
                };
                let full = batch.len() as i64 == BATCH;
                for notification in batch {
                    after_seq = notification.seq;
                    if out.send(Ok(notification)).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return,
                    () = out.closed() => return,
                    received = live.recv() => received,
                };
                match received {
                    Ok(notification) => {
                        if notification.seq <= after_seq || !filter.matches(&notification) {
                            continue;
                        }
                        after_seq = notification.seq;
                        if out
                            .send(Ok(pb::Notification::clone(&notification)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "subscriber fell behind; replaying from the store");
                        continue 'replay;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}
