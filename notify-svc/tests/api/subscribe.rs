//! Subscribe replays from a sequence number, then follows what any replica
//! records; on SQLite and PostgreSQL.

use super::record;
use dishpatch::{ids::ORDER, proto::notify::v1 as pb};
use std::time::Duration;
use test_support::{Backend, TestStore};
use tonic::Streaming;

async fn next(stream: &mut Streaming<pb::Notification>) -> pb::Notification {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a notification arrives within 5 s")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

async fn replays_then_follows_every_replica(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_a, mut replica_a) = super::spawn(&store).await;
    let (_b, mut replica_b) = super::spawn(&store).await;
    let order = ORDER.generate();

    let mut recorded = Vec::new();
    for n in 0..3 {
        let response = replica_a
            .record_notification(record(&format!("old-{n}"), &order, "ana"))
            .await
            .unwrap();
        recorded.push(response.into_inner().notification.unwrap());
    }

    // Resume after the first: the second and third are replayed.
    let mut stream = replica_a
        .subscribe(pb::SubscribeRequest {
            after_seq: recorded[0].seq,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut stream).await, recorded[1]);
    assert_eq!(next(&mut stream).await, recorded[2]);

    // New ones follow, whichever replica records them, in order, once.
    for n in 0..4 {
        let writer = if n % 2 == 0 {
            &mut replica_b
        } else {
            &mut replica_a
        };
        let response = writer
            .record_notification(record(&format!("new-{n}"), &order, "ana"))
            .await
            .unwrap();
        let expected = response.into_inner().notification.unwrap();
        assert_eq!(next(&mut stream).await, expected, "new-{n} arrives live");
    }
    // A duplicate event records nothing, so nothing more arrives.
    replica_b
        .record_notification(record("new-0", &order, "ana"))
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(quiet.is_err(), "nothing more arrives: {quiet:?}");
}

async fn filters_the_stream(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store).await;
    let (mine, other) = (ORDER.generate(), ORDER.generate());
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            order_id: mine.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .record_notification(record("other", &other, "bo"))
        .await
        .unwrap();
    client
        .record_notification(record("mine", &mine, "ana"))
        .await
        .unwrap();
    let received = next(&mut stream).await;
    assert_eq!(
        (received.event_id.as_str(), received.order_id.as_str()),
        ("mine", mine.as_str())
    );
}

/// A subscriber that stops reading while thousands are recorded (more than
/// its connection's flow-control window, ~2 MiB, and the feed keep for it)
/// gets every one when it reads again: in order, once.
async fn one_that_falls_behind_misses_nothing(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store).await;
    let order = ORDER.generate();
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            order_id: order.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .record_notification(record("first", &order, "ana"))
        .await
        .unwrap();
    let first = next(&mut stream).await;

    let mut recorded = std::collections::BTreeSet::new();
    for batch in 0..12 {
        let notifications: Vec<_> = (0..500)
            .map(|n| pb::RecordNotificationRequest {
                message: "a long message ".repeat(60),
                ..record(&format!("behind-{batch}-{n}"), &order, "ana")
            })
            .collect();
        recorded.extend(notifications.iter().map(|n| n.event_id.clone()));
        client
            .record_notifications(pb::RecordNotificationsRequest { notifications })
            .await
            .unwrap();
    }
    let (mut last_seq, mut received) = (first.seq, std::collections::BTreeSet::new());
    while received.len() < recorded.len() {
        let notification = next(&mut stream).await;
        assert!(
            notification.seq > last_seq,
            "in order, once: {} after {last_seq}",
            notification.seq
        );
        last_seq = notification.seq;
        received.insert(notification.event_id);
    }
    assert_eq!(received, recorded);
    let quiet = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(quiet.is_err(), "nothing more arrives: {quiet:?}");
}

/// A replica with no subscriber does not read what is recorded, only where
/// the log ends; a subscriber who arrives there while another replica keeps
/// recording still gets everything for it, from its replay or live: here
/// one subscriber after another, each alone on its replica, each sent its
/// notification by the other replica as it subscribes.
async fn one_who_subscribes_while_nobody_follows_misses_nothing(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_a, mut replica_a) = super::spawn(&store).await;
    let (_b, mut replica_b) = super::spawn(&store).await;
    // Others' notifications, all the while, so that the log's end moves.
    let noise = tokio::spawn({
        let mut replica_b = replica_b.clone();
        async move {
            for n in 0.. {
                let noise = record(&format!("noise-{n}"), &ORDER.generate(), "others");
                if replica_b.record_notification(noise).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    for n in 0..30 {
        let recipient = format!("guest-{n}");
        let mut stream = replica_a
            .subscribe(pb::SubscribeRequest {
                recipient: recipient.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let expected = replica_b
            .record_notification(record(&format!("for-{n}"), &ORDER.generate(), &recipient))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        assert_eq!(next(&mut stream).await, expected, "{recipient}'s notification");
    }
    noise.abort();
}

test_support::on_each_backend!(
    replays_then_follows_every_replica,
    filters_the_stream,
    one_that_falls_behind_misses_nothing,
    one_who_subscribes_while_nobody_follows_misses_nothing
);

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let store = TestStore::new(Backend::Sqlite).await;
    let (service, mut client) = super::spawn(&store).await;
    let mut stream = client
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), service.stop())
        .await
        .expect("an open subscription does not hold the server open");
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
}
