//! grpcurl, with no proto files, finds the service through reflection and
//! places an order with it.

use super::Neighbours;
use test_support::{Backend, grpcurl};

#[tokio::test]
async fn grpcurl_lists_and_calls_order_svc() {
    if grpcurl::skipped() {
        return;
    }
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (order_svc, _client) = neighbours.order_replica().await;

    let services = grpcurl::grpcurl(order_svc.addr(), None, &["list"]).await;
    assert!(services.contains("dishpatch.order.v1.OrderService"), "{services}");

    let request = serde_json::json!({
        "restaurantId": restaurant_id,
        "customer": "grpcurl",
        "items": [{"menuItemId": items[0].id, "quantity": 2}],
    });
    let placed = grpcurl::grpcurl(
        order_svc.addr(),
        Some(&request.to_string()),
        &["dishpatch.order.v1.OrderService/PlaceOrder"],
    )
    .await;
    let placed: serde_json::Value = serde_json::from_str(&placed).expect("grpcurl prints JSON");
    assert_eq!(placed["status"], "ORDER_STATUS_PLACED", "{placed}");
    assert_eq!(
        placed["totalCents"],
        (items[0].price_cents * 2).to_string(),
        "{placed}"
    );
}
