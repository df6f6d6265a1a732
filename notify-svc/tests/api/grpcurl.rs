//! grpcurl, with no proto files, finds the service through reflection and
//! calls it.

use test_support::{Backend, TestStore, grpcurl};

#[tokio::test]
async fn grpcurl_lists_and_calls_notify_svc() {
    if grpcurl::skipped() {
        return;
    }
    let store = TestStore::new(Backend::Sqlite).await;
    let (service, _client) = super::spawn(&store).await;

    let services = grpcurl::grpcurl(service.addr(), None, &["list"]).await;
    assert!(
        services.contains("dishpatch.notify.v1.NotifyService"),
        "{services}"
    );

    let recorded = grpcurl::grpcurl(
        service.addr(),
        Some(r#"{"eventId": "grpcurl-1", "recipient": "ana", "kind": "test.ping", "message": "hello"}"#),
        &["dishpatch.notify.v1.NotifyService/RecordNotification"],
    )
    .await;
    let recorded: serde_json::Value = serde_json::from_str(&recorded).expect("grpcurl prints JSON");
    assert_eq!(recorded["notification"]["message"], "hello", "{recorded}");
    assert_eq!(recorded["notification"]["seq"], "1", "{recorded}");
}
