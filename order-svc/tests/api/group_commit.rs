//! Orders placed at once are stored together (group commit): each caller
//! still gets its own order, a key used twice in one batch places one order,
//! and every stored order reads back as it was answered.

use super::{Neighbours, place};
use dishpatch::proto::order::v1 as pb;
use std::collections::HashSet;
use test_support::Backend;

#[tokio::test]
async fn concurrent_orders_each_get_their_own() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, orders) = neighbours.order_replica().await;

    // 40 customers, each with its own quantity; the last ten send their
    // order twice with one key.
    let requests: Vec<pb::PlaceOrderRequest> = (0..50)
        .map(|n| {
            let customer = if n < 40 { n } else { n - 10 };
            pb::PlaceOrderRequest {
                idempotency_key: if customer >= 30 {
                    format!("key-{customer}")
                } else {
                    String::new()
                },
                ..place(
                    &restaurant_id,
                    &items,
                    &format!("guest-{customer}"),
                    customer % 99 + 1,
                )
            }
        })
        .collect();
    let placing = requests.iter().map(|request| {
        let (mut client, request) = (orders.clone(), request.clone());
        async move { client.place_order(request).await.map(tonic::Response::into_inner) }
    });
    let placed = futures_util::future::try_join_all(placing)
        .await
        .expect("every order is placed");

    for (request, order) in requests.iter().zip(&placed) {
        assert_eq!(order.customer, request.customer, "each caller gets its own order");
        assert!(
            order
                .items
                .iter()
                .all(|line| line.quantity == request.items[0].quantity)
        );
        let stored = orders
            .clone()
            .get_order(pb::GetOrderRequest { id: order.id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&stored, order, "the order reads back as answered");
    }
    let distinct: HashSet<&str> = placed.iter().map(|order| order.id.as_str()).collect();
    assert_eq!(distinct.len(), 40, "one order per customer, the keyed ones once");
}
