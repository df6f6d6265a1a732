//! The real binary: SIGTERM turns health NOT_SERVING first, the service
//! keeps answering through the drain, then exits 0, even once nobody reads
//! its log; a restart keeps data.

use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use std::time::Duration;
use test_support::process::ServiceProcess;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const BINARY: &str = env!("CARGO_BIN_EXE_restaurant-svc");

fn args<'a>(database_url: &'a str, drain: &'a str) -> [&'a str; 6] {
    [
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--drain",
        drain,
    ]
}

#[tokio::test]
async fn sigterm_turns_not_serving_then_drains_then_exits_zero() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/restaurant.db", folder.path().display());
    let mut process = ServiceProcess::start(BINARY, &args(&url, "1s")).await;

    let mut health = test_support::health_client(process.url()).await;
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "dishpatch.restaurant.v1.RestaurantService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    process.terminate();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("health changes promptly")
        .unwrap()
        .expect("the watch stream is still open");
    assert_eq!(
        next.status(),
        ServingStatus::NotServing,
        "NOT_SERVING comes before exit"
    );

    // Still draining: calls are answered, new connections included.
    let mut late = RestaurantServiceClient::connect(process.url())
        .await
        .expect("still accepting during the drain");
    let listed = late
        .list_restaurants(pb::ListRestaurantsRequest::default())
        .await
        .expect("still answering");
    assert!(!listed.into_inner().restaurants.is_empty());

    let exit = process.wait(Duration::from_secs(15)).await;
    assert!(exit.success(), "exits 0 after draining, got {exit}");
    assert!(
        tokio::time::timeout(Duration::from_secs(1), watch.message())
            .await
            .is_ok_and(|end| matches!(end, Ok(None) | Err(_))),
        "the watch stream ended with the server"
    );
}

#[tokio::test]
async fn sigterm_stops_a_service_whose_log_reader_went_away() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/restaurant.db", folder.path().display());
    // As when the launcher that started it was killed: its stderr is a pipe
    // nobody reads any more, so every log line fails to be written.
    let mut command = tokio::process::Command::new(BINARY);
    command
        .args(args(&url, "200ms"))
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    let (mut child, _) = dishpatch::child::start_listening(command, Duration::from_secs(30))
        .await
        .unwrap();
    drop(child.stderr.take());

    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("SIGTERM stops it though its log cannot be written")
        .unwrap();
    assert!(exit.success(), "exits 0, got {exit}");
}

#[tokio::test]
async fn a_restarted_process_keeps_its_data() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/restaurant.db", folder.path().display());
    let mut first = ServiceProcess::start(BINARY, &args(&url, "0s")).await;
    let mut client = RestaurantServiceClient::connect(first.url()).await.unwrap();
    let created = client
        .create_restaurant(pb::CreateRestaurantRequest {
            name: "Survivor Grill".into(),
            cuisine: "grill".into(),
            address: "2 Restart Row".into(),
            rating: None,
        })
        .await
        .unwrap()
        .into_inner();
    first.terminate();
    assert!(first.wait(Duration::from_secs(15)).await.success());

    let second = ServiceProcess::start(BINARY, &args(&url, "0s")).await;
    let mut client = RestaurantServiceClient::connect(second.url()).await.unwrap();
    let fetched = client
        .get_restaurant(pb::GetRestaurantRequest {
            id: created.id.clone(),
        })
        .await
        .expect("the restaurant outlived the process")
        .into_inner();
    assert_eq!(fetched, created);
}
