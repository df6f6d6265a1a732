//! grpcurl, with no proto files, finds the service through reflection and
//! calls it.

use test_support::{Backend, TestStore, grpcurl};

#[tokio::test]
async fn grpcurl_lists_and_calls_restaurant_svc() {
    if grpcurl::skipped() {
        return;
    }
    let store = TestStore::new(Backend::Sqlite).await;
    let (service, _client) = super::spawn(&store, true).await;

    let services = grpcurl::grpcurl(service.addr(), None, &["list"]).await;
    assert!(
        services.contains("dishpatch.restaurant.v1.RestaurantService"),
        "{services}"
    );
    assert!(services.contains("grpc.health.v1.Health"), "{services}");

    let listed = grpcurl::grpcurl(
        service.addr(),
        Some(r#"{"cuisine": "japanese"}"#),
        &["dishpatch.restaurant.v1.RestaurantService/ListRestaurants"],
    )
    .await;
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("grpcurl prints JSON");
    assert_eq!(listed["restaurants"][0]["name"], "Sakura Sushi Bar", "{listed}");
}
