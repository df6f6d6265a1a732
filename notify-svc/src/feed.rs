//! The live feed: every notification recorded by any replica sharing the
//! store, in sequence order, to the subscribers of this replica it is for.
//!
//! One tail task per replica reads the log past the last number it has seen
//! (at once after a local insert, and every poll interval for other
//! replicas' inserts) and hands each notification to the followers it
//! matches, found by its order and its recipient: one notification wakes
//! its own streams, not every stream; with no followers it reads only
//! where the log ends. A subscriber follows first, then
//! replays the log from its resume point, then takes what the tail hands
//! it, skipping what it has already sent: so nothing recorded between
//! replay and follow is lost or sent twice.

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
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How many notifications one store read returns, in the tail and replays.
const BATCH: i64 = 500;
/// A replay's first read: small, so that its first notification goes out
/// after reading a few, not [`BATCH`] (at a million notifications a
/// kitchen's replay from a deep seq took 12 ms to its first, reading 500
/// scattered rows). Each next read is four times larger, up to `BATCH`.
const FIRST_REPLAY_BATCH: i64 = 32;
/// How far a slow subscriber may fall behind before it replays from the
/// store instead.
const FOLLOW_CAPACITY: usize = 1024;

/// What a follower is indexed by: the narrowest part of its filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Order(String),
    Recipient(String),
    Everything,
}

impl Key {
    fn of(filter: &NotificationFilter) -> Self {
        match (&filter.order_id, &filter.recipient) {
            (Some(order), _) => Self::Order(order.clone()),
            (None, Some(recipient)) => Self::Recipient(recipient.clone()),
            (None, None) => Self::Everything,
        }
    }
}

/// A subscriber as the tail sees it.
#[derive(Debug)]
struct Follower {
    id: u64,
    filter: NotificationFilter,
    sender: mpsc::Sender<Arc<pb::Notification>>,
}

/// This replica's followers, indexed by [`Key`].
#[derive(Debug, Default)]
struct Followers {
    next_id: u64,
    by_key: HashMap<Key, Vec<Follower>>,
}

impl Followers {
    fn follow(
        &mut self,
        filter: NotificationFilter,
        sender: mpsc::Sender<Arc<pb::Notification>>,
    ) -> (u64, Key) {
        self.next_id += 1;
        let (id, key) = (self.next_id, Key::of(&filter));
        self.by_key
            .entry(key.clone())
            .or_default()
            .push(Follower { id, filter, sender });
        (id, key)
    }

    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn unfollow(&mut self, id: u64, key: &Key) {
        if let Some(followers) = self.by_key.get_mut(key) {
            followers.retain(|follower| follower.id != id);
            if followers.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    /// Hands `notification` to every follower it matches. A follower whose
    /// queue is full is dropped from the index: its queue ends, which tells
    /// it to replay from the store.
    fn hand_out(&mut self, notification: &Arc<pb::Notification>) {
        let keys = [
            Key::Order(notification.order_id.clone()),
            Key::Recipient(notification.recipient.clone()),
            Key::Everything,
        ];
        for key in keys {
            let Some(followers) = self.by_key.get_mut(&key) else {
                continue;
            };
            followers.retain(|follower| {
                !follower.filter.matches(notification)
                    || follower.sender.try_send(Arc::clone(notification)).is_ok()
            });
            if followers.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }
}

/// A subscriber's place among the followers, given up when dropped.
struct Following<'a> {
    followers: &'a Mutex<Followers>,
    id: u64,
    key: Key,
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        lock(self.followers).unfollow(self.id, &self.key);
    }
}

/// The followers, whatever a panicking holder left: each change to them is
/// whole before anything can panic.
fn lock(followers: &Mutex<Followers>) -> std::sync::MutexGuard<'_, Followers> {
    followers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The live feed of one replica.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    followers: Arc<Mutex<Followers>>,
    recorded_here: Arc<Notify>,
    /// Subscribers being served.
    subscribers: Gauge,
    /// Time from a notification's recording to its broadcast here.
    tail_lag: Histogram,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self {
            followers: Arc::default(),
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
            if lock(&self.followers).is_empty() {
                // Nobody here to hand anything to: only where the log ends
                // is needed, so that a subscriber's live part starts there.
                // Read before looking again, so one who followed meanwhile
                // replays from the store whatever this skips.
                match store.last_seq().await {
                    Ok(last) if lock(&self.followers).is_empty() => {
                        last_seq = last;
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "reading where the notification log ends failed; retrying");
                        continue;
                    }
                }
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
                let mut followers = lock(&self.followers);
                for notification in batch {
                    last_seq = notification.seq;
                    if let Some(recorded) = &notification.created_at
                        && let Ok(recorded) = dishpatch::time::from_timestamp(recorded)
                    {
                        self.tail_lag
                            .observe(dishpatch::time::seconds_between(recorded, now));
                    }
                    followers.hand_out(&Arc::new(notification));
                }
                drop(followers);
                if !full {
                    break;
                }
            }
        }
    }

    /// Puts a subscriber among the followers until the returned guard drops.
    fn follow(
        &self,
        filter: NotificationFilter,
        sender: mpsc::Sender<Arc<pb::Notification>>,
    ) -> Following<'_> {
        let (id, key) = lock(&self.followers).follow(filter, sender);
        Following {
            followers: &self.followers,
            id,
            key,
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
            let (sender, mut live) = mpsc::channel(FOLLOW_CAPACITY);
            let _following = self.follow(filter.clone(), sender);
            let mut size = FIRST_REPLAY_BATCH;
            loop {
                let page = Page { after_seq, size };
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
                let full = batch.len() as i64 == size;
                for notification in batch {
                    after_seq = notification.seq;
                    if out.send(Ok(notification)).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
                size = (size * 4).min(BATCH);
            }
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return,
                    () = out.closed() => return,
                    received = live.recv() => received,
                };
                let Some(notification) = received else {
                    tracing::debug!("subscriber fell behind; replaying from the store");
                    continue 'replay;
                };
                if notification.seq <= after_seq {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(order: Option<&str>, recipient: Option<&str>) -> NotificationFilter {
        NotificationFilter {
            order_id: order.map(str::to_owned),
            recipient: recipient.map(str::to_owned),
            since: None,
        }
    }

    fn notification(seq: u64, order: &str, recipient: &str) -> Arc<pb::Notification> {
        Arc::new(pb::Notification {
            seq,
            order_id: order.into(),
            recipient: recipient.into(),
            ..Default::default()
        })
    }

    /// The seqs waiting in `queue`.
    fn waiting(queue: &mut mpsc::Receiver<Arc<pb::Notification>>) -> Vec<u64> {
        std::iter::from_fn(|| queue.try_recv().ok())
            .map(|notification| notification.seq)
            .collect()
    }

    #[test]
    fn each_notification_reaches_the_followers_it_matches() {
        let mut followers = Followers::default();
        let mut follow = |order, recipient| {
            let (sender, queue) = mpsc::channel(16);
            followers.follow(filter(order, recipient), sender);
            queue
        };
        let mut order_a = follow(Some("a"), None);
        let mut order_a_for_bo = follow(Some("a"), Some("bo"));
        let mut ana = follow(None, Some("ana"));
        let mut everything = follow(None, None);

        followers.hand_out(&notification(1, "a", "ana"));
        followers.hand_out(&notification(2, "b", "ana"));
        followers.hand_out(&notification(3, "a", "bo"));
        followers.hand_out(&notification(4, "", "cy"));

        assert_eq!(waiting(&mut order_a), [1, 3]);
        assert_eq!(waiting(&mut order_a_for_bo), [3]);
        assert_eq!(waiting(&mut ana), [1, 2]);
        assert_eq!(waiting(&mut everything), [1, 2, 3, 4]);
    }

    #[test]
    fn a_follower_that_falls_behind_is_let_go_and_one_that_leaves_is_forgotten() {
        let mut followers = Followers::default();
        let (sender, mut slow) = mpsc::channel(2);
        followers.follow(filter(Some("a"), None), sender);
        let (sender, _gone) = mpsc::channel(2);
        let (id, key) = followers.follow(filter(Some("a"), None), sender);
        followers.unfollow(id, &key);

        for seq in 1..=3 {
            followers.hand_out(&notification(seq, "a", "ana"));
        }
        // The third did not fit: the slow one keeps what it had, then its
        // queue ends, which sends it back to the store.
        assert_eq!(waiting(&mut slow), [1, 2]);
        assert!(slow.is_closed());
        assert!(followers.by_key.is_empty(), "nobody follows any more");
    }
}
