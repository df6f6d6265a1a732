//! Recording is idempotent on event id; listing filters and pages; on
//! SQLite and PostgreSQL.

use super::record;
use dishpatch::{ids::ORDER, proto::notify::v1 as pb};
use test_support::{Backend, TestStore};

async fn records_each_event_once(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store).await;
    let order = ORDER.generate();

    let first = client
        .record_notification(record("evt-1", &order, "ana"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    let again = client
        .record_notification(record("evt-1", &order, "ana"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate, "the same event id is a duplicate");
    assert_eq!(
        again.notification, first.notification,
        "and answers the notification first recorded"
    );

    let second = client
        .record_notification(record("evt-2", &order, "ana"))
        .await
        .unwrap()
        .into_inner();
    let (first, second) = (first.notification.unwrap(), second.notification.unwrap());
    assert!(second.seq > first.seq, "sequence numbers increase");
    assert!(first.id.starts_with("ntf_"));

    let listed = client
        .list_notifications(pb::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.notifications, [first, second]);
}

async fn records_a_batch_in_order_once_per_event(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store).await;
    let order = ORDER.generate();
    client
        .record_notification(record("known", &order, "ana"))
        .await
        .unwrap();

    let batch = ["b-1", "known", "b-2", "b-1", "b-3"]
        .map(|event_id| record(event_id, &order, "ana"))
        .to_vec();
    let counted = client
        .record_notifications(pb::RecordNotificationsRequest { notifications: batch })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((counted.recorded, counted.duplicates), (3, 2));

    let listed = client
        .list_notifications(pb::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .notifications;
    let events: Vec<&str> = listed.iter().map(|n| n.event_id.as_str()).collect();
    assert_eq!(
        events,
        ["known", "b-1", "b-2", "b-3"],
        "each event once, in the batch's order"
    );
    assert!(listed.windows(2).all(|pair| pair[0].seq < pair[1].seq));

    let again = client
        .record_notifications(pb::RecordNotificationsRequest {
            notifications: vec![record("b-2", &order, "ana")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.recorded, again.duplicates),
        (0, 1),
        "a retried batch records nothing"
    );
}

async fn lists_by_order_recipient_and_time_in_pages(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (_service, mut client) = super::spawn(&store).await;
    let (order_a, order_b) = (ORDER.generate(), ORDER.generate());
    for n in 0..5 {
        client
            .record_notification(record(&format!("a-{n}"), &order_a, "ana"))
            .await
            .unwrap();
        client
            .record_notification(record(&format!("b-{n}"), &order_b, "bo"))
            .await
            .unwrap();
    }

    let by_order = client
        .list_notifications(pb::ListNotificationsRequest {
            order_id: order_a.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_order.notifications.len(), 5);
    assert!(
        by_order
            .notifications
            .iter()
            .all(|n| n.order_id == order_a && n.recipient == "ana")
    );

    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_notifications(pb::ListNotificationsRequest {
                recipient: "bo".into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(
            page.notifications
                .iter()
                .map(|n| n.event_id.clone())
                .collect::<Vec<_>>(),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, [vec!["b-0", "b-1"], vec!["b-2", "b-3"], vec!["b-4"]]);

    let all = client
        .list_notifications(pb::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let last = all.notifications.last().unwrap().clone();
    let since_last = client
        .list_notifications(pb::ListNotificationsRequest {
            since: last.created_at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!since_last.notifications.is_empty() && since_last.notifications.iter().all(|n| n.seq > 0));
    assert!(since_last.notifications.contains(&last));
    let future = prost_types::Timestamp {
        seconds: last.created_at.unwrap().seconds + 3600,
        nanos: 0,
    };
    let none = client
        .list_notifications(pb::ListNotificationsRequest {
            since: Some(future),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.notifications.is_empty());
}

async fn restarting_keeps_the_log(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (service, mut client) = super::spawn(&store).await;
    let recorded = client
        .record_notification(record("kept", "", "ana"))
        .await
        .unwrap()
        .into_inner();
    service.stop().await;

    let (_service, mut client) = super::spawn(&store).await;
    let again = client
        .record_notification(record("kept", "", "ana"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate, "the restarted service still knows the event");
    assert_eq!(again.notification, recorded.notification);
}

test_support::on_each_backend!(
    records_each_event_once,
    records_a_batch_in_order_once_per_event,
    lists_by_order_recipient_and_time_in_pages,
    restarting_keeps_the_log,
);
