//! Placing with an idempotency key is safe to retry.

use super::{Neighbours, place};
use dishpatch::proto::order::v1 as pb;
use dishpatch::proto::restaurant::v1 as restaurant;
use test_support::Backend;
use tonic::Code;

#[tokio::test]
async fn the_same_key_places_one_order() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let keyed = pb::PlaceOrderRequest {
        idempotency_key: "checkout-77".into(),
        ..place(&restaurant_id, &items, "ana", 1)
    };

    // Retries racing each other, then one after the fact.
    let (mut racer_a, mut racer_b) = (orders.clone(), orders.clone());
    let (first, second) = tokio::join!(
        racer_a.place_order(keyed.clone()),
        racer_b.place_order(keyed.clone())
    );
    let (first, second) = (first.unwrap().into_inner(), second.unwrap().into_inner());
    let third = orders.place_order(keyed.clone()).await.unwrap().into_inner();
    assert_eq!(first.id, second.id);
    assert_eq!(first, third);
    let listed = orders
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders.len(), 1, "one order for one key");

    let different = pb::PlaceOrderRequest {
        items: keyed.items[..1].to_vec(),
        ..keyed.clone()
    };
    let reused = orders.place_order(different).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert!(
        reused.message().contains("checkout-77") && reused.message().contains(&first.id),
        "{}",
        reused.message()
    );

    let other_customer = pb::PlaceOrderRequest {
        customer: "bo".into(),
        ..keyed
    };
    let theirs = orders.place_order(other_customer).await.unwrap().into_inner();
    assert_ne!(theirs.id, first.id, "keys are per customer");
}

#[tokio::test]
async fn a_retry_gets_its_order_after_the_menu_changed() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let keyed = pb::PlaceOrderRequest {
        idempotency_key: "checkout-78".into(),
        ..place(&restaurant_id, &items, "ana", 1)
    };
    let placed = orders.place_order(keyed.clone()).await.unwrap().into_inner();

    neighbours
        .restaurants
        .update_menu_item(restaurant::UpdateMenuItemRequest {
            restaurant_id: restaurant_id.clone(),
            menu_item_id: items[0].id.clone(),
            available: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let retried = orders.place_order(keyed.clone()).await.unwrap().into_inner();
    assert_eq!(retried, placed, "the retry answers with the order placed before");

    let fresh = pb::PlaceOrderRequest {
        idempotency_key: "checkout-79".into(),
        ..keyed
    };
    let refused = orders.place_order(fresh).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
}
