//! Every request is checked, with a message that names the problem.

use super::record;
use dishpatch::proto::notify::v1 as pb;
use test_support::{Backend, TestStore, assert_refused};
use tonic::Code;

#[tokio::test]
async fn refuses_bad_requests() {
    let store = TestStore::new(Backend::Sqlite).await;
    let (_service, mut client) = super::spawn(&store).await;

    let bad_records = [
        (
            pb::RecordNotificationRequest {
                event_id: String::new(),
                ..record("e", "", "ana")
            },
            "event_id is required",
        ),
        (
            pb::RecordNotificationRequest {
                recipient: " ".into(),
                ..record("e", "", "ana")
            },
            "recipient is required",
        ),
        (
            pb::RecordNotificationRequest {
                kind: "order placed".into(),
                ..record("e", "", "ana")
            },
            "kind \"order placed\" may hold only",
        ),
        (
            pb::RecordNotificationRequest {
                message: String::new(),
                ..record("e", "", "ana")
            },
            "message is required",
        ),
        (
            pb::RecordNotificationRequest {
                message: "m".repeat(1001),
                ..record("e", "", "ana")
            },
            "message must be at most 1000",
        ),
        (
            record("e", "ord_nope", "ana"),
            "order_id \"ord_nope\" is malformed",
        ),
        (
            pb::RecordNotificationRequest {
                traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".into(),
                ..record("e", "", "ana")
            },
            "traceparent must be empty or a W3C traceparent",
        ),
    ];
    for (request, fragment) in bad_records {
        assert_refused(
            client.record_notification(request).await,
            Code::InvalidArgument,
            fragment,
        );
    }

    let bad_batches = [
        (
            Vec::new(),
            "notifications must hold 1 to 500 notifications, got 0",
        ),
        (
            (0..501).map(|n| record(&format!("e{n}"), "", "ana")).collect(),
            "got 501",
        ),
        (
            vec![
                record("fine", "", "ana"),
                pb::RecordNotificationRequest {
                    recipient: String::new(),
                    ..record("e", "", "ana")
                },
            ],
            "notifications[1]: recipient is required",
        ),
    ];
    for (notifications, fragment) in bad_batches {
        assert_refused(
            client
                .record_notifications(pb::RecordNotificationsRequest { notifications })
                .await,
            Code::InvalidArgument,
            fragment,
        );
    }
    let listed = client
        .list_notifications(pb::ListNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.notifications.is_empty(), "a refused batch records nothing");

    let bad_lists = [
        (
            pb::ListNotificationsRequest {
                page_token: "abc".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListNotificationsRequest {
                page_size: 1000,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListNotificationsRequest {
                order_id: "x".into(),
                ..Default::default()
            },
            "order_id",
        ),
        (
            pb::ListNotificationsRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -5,
                }),
                ..Default::default()
            },
            "since",
        ),
    ];
    for (request, fragment) in bad_lists {
        assert_refused(
            client.list_notifications(request).await,
            Code::InvalidArgument,
            fragment,
        );
    }

    let status = client
        .subscribe(pb::SubscribeRequest {
            order_id: "ord_1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
