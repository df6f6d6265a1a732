//! The real binary stops cleanly on SIGTERM even while its neighbours are
//! unreachable and the relay is backing off, and its outbox survives.

use std::time::Duration;
use test_support::process::ServiceProcess;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

#[tokio::test]
async fn sigterm_stops_order_svc_while_its_neighbours_are_down() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/order.db", folder.path().display());
    // Nothing listens on port 1 of loopback: both neighbours are down.
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--restaurant-addr",
        "127.0.0.1:1",
        "--notify-addr",
        "127.0.0.1:1",
        "--drain",
        "200ms",
    ];
    let mut process = ServiceProcess::start(env!("CARGO_BIN_EXE_order-svc"), &args).await;
    let mut health = test_support::health_client(process.url()).await;
    let status = health
        .check(HealthCheckRequest {
            service: "dishpatch.order.v1.OrderService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status(),
        ServingStatus::Serving,
        "serving without its neighbours: they are called lazily"
    );

    process.terminate();
    let exit = process.wait(Duration::from_secs(15)).await;
    assert!(exit.success(), "exits 0, got {exit}");
}
