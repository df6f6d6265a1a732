//! notify-svc's metrics, at `GET /metrics` on its gRPC port: RPCs by method
//! and code (read from headers or trailers; CANCELLED for a stream its
//! client dropped; a path no contract names as `unknown`), its subscribers,
//! its feed's tail lag and its store's queries.

use super::record;
use dishpatch::{ids::ORDER, proto::notify::v1 as pb};
use std::time::Duration;
use test_support::{Backend, TestStore, eventually};
use tonic::Code;

/// The value of `series` (its name and labels, as exposed) in `text`.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn handled(method: &str, code: &str) -> String {
    format!(
        r#"dishpatch_grpc_server_handled_total{{service="dishpatch.notify.v1.NotifyService",method="{method}",code="{code}"}}"#
    )
}

#[tokio::test]
async fn rpcs_subscribers_and_the_feed_are_counted() {
    let store = TestStore::new(Backend::Sqlite).await;
    let (service, mut client) = super::spawn(&store).await;
    let metrics_url = format!("{}/metrics", service.url());
    let scrape = || async {
        let response = reqwest::get(&metrics_url).await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };

    client
        .record_notification(record("e-1", &ORDER.generate(), "ana"))
        .await
        .unwrap();
    let refused = client
        .record_notification(pb::RecordNotificationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut stream = client
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    stream
        .message()
        .await
        .unwrap()
        .expect("the recorded one, replayed");
    // The next comes through the feed, which counts how long it took.
    client
        .record_notification(record("e-2", &ORDER.generate(), "ana"))
        .await
        .unwrap();
    stream.message().await.unwrap().expect("the next one, live");
    let text = scrape().await;
    assert_eq!(
        value_of(&text, "dishpatch_notify_subscribers"),
        Some(1.0),
        "{text}"
    );

    // A path no contract names is counted, under no name of its own.
    let mut grpc = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(service.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let nowhere = grpc
        .unary::<_, pb::ListNotificationsResponse, _>(
            tonic::Request::new(pb::ListNotificationsRequest::default()),
            http::uri::PathAndQuery::from_static("/dishpatch.notify.v1.NotifyService/Invented"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(nowhere.code(), Code::Unimplemented);

    drop(stream);
    let text = eventually(
        "the dropped stream to be counted",
        Duration::from_secs(5),
        || async {
            let text = scrape().await;
            let ended = value_of(&text, &handled("Subscribe", "CANCELLED")) == Some(1.0)
                && value_of(&text, "dishpatch_notify_subscribers") == Some(0.0);
            ended.then_some(text)
        },
    )
    .await;
    assert_eq!(value_of(&text, &handled("RecordNotification", "OK")), Some(2.0));
    assert_eq!(
        value_of(&text, &handled("RecordNotification", "INVALID_ARGUMENT")),
        Some(1.0)
    );
    let unknown =
        r#"dishpatch_grpc_server_handled_total{service="unknown",method="unknown",code="UNIMPLEMENTED"}"#;
    assert_eq!(value_of(&text, unknown), Some(1.0), "{text}");
    assert!(!text.contains("Invented"), "{text}");
    let took = r#"dishpatch_grpc_server_handling_seconds_count{service="dishpatch.notify.v1.NotifyService",method="RecordNotification"}"#;
    assert_eq!(value_of(&text, took), Some(3.0));
    let stored = r#"dishpatch_store_query_duration_seconds_count{query="record_notification"}"#;
    assert_eq!(value_of(&text, stored), Some(2.0), "{text}");
    assert!(value_of(&text, "dishpatch_notify_tail_lag_seconds_count").unwrap() >= 1.0);
    assert!(value_of(&text, "dishpatch_store_write_turn_wait_seconds_count").unwrap() >= 1.0);
}
