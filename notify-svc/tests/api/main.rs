//! notify-svc's integration tests: real servers on 127.0.0.1:0 over real
//! stores.

mod grpcurl;
mod log;
mod metrics;
mod subscribe;
mod validation;

use dishpatch::proto::notify::v1::{self as pb, notify_service_client::NotifyServiceClient};
use test_support::{RunningService, TestStore, services::notify_config};
use tonic::transport::Channel;

/// A notify-svc on `store`, and a client of it.
async fn spawn(store: &TestStore) -> (RunningService, NotifyServiceClient<Channel>) {
    let service = test_support::start(
        notify_svc::build(notify_config(store.url()))
            .await
            .expect("notify-svc builds"),
    );
    let client = NotifyServiceClient::connect(service.url())
        .await
        .expect("connects");
    (service, client)
}

/// A valid notification request for `event_id`.
fn record(event_id: &str, order_id: &str, recipient: &str) -> pb::RecordNotificationRequest {
    pb::RecordNotificationRequest {
        event_id: event_id.into(),
        order_id: order_id.into(),
        recipient: recipient.into(),
        kind: "order.placed".into(),
        message: format!("event {event_id}"),
        traceparent: String::new(),
    }
}
