//! With notify-svc down, orders still succeed; when it comes back every
//! notification arrives, once, even if order-svc restarted meanwhile. On
//! SQLite and PostgreSQL.

use super::{Neighbours, move_to, place};
use dishpatch::proto::order::v1::{self as pb, OrderStatus};
use std::{collections::HashSet, time::Duration};
use test_support::{Backend, eventually};

async fn notifications_wait_out_a_notify_outage(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (order_svc, mut orders) = neighbours.order_replica().await;
    neighbours.stop_notify().await;

    let mut order_ids = Vec::new();
    for customer in ["ana", "bo", "cy"] {
        let order = orders
            .place_order(place(&restaurant_id, &items, customer, 1))
            .await
            .expect("orders succeed while notify-svc is down");
        order_ids.push(order.into_inner().id);
    }
    orders
        .update_order_status(move_to(&order_ids[0], OrderStatus::Accepted))
        .await
        .unwrap();
    // 3 orders × (customer + restaurant) + 1 move.
    let expected = 7;

    // The replica that wrote the outbox goes away; a new one must deliver it.
    order_svc.stop().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let first = orders
        .get_order(pb::GetOrderRequest {
            id: order_ids[0].clone(),
        })
        .await;
    assert_eq!(
        first
            .expect("the order outlived the restart")
            .into_inner()
            .status(),
        OrderStatus::Accepted
    );
    neighbours.restart_notify().await;
    eventually(
        "every notification delivered after the outage",
        Duration::from_secs(15),
        || async { (neighbours.notifications(None).await.len() >= expected).then_some(()) },
    )
    .await;

    // Give the relay time to send anything twice, then count again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = neighbours.notifications(None).await;
    assert_eq!(
        delivered.len(),
        expected,
        "each notification exactly once: {delivered:#?}"
    );
    let event_ids: HashSet<_> = delivered.iter().map(|n| n.event_id.as_str()).collect();
    assert_eq!(event_ids.len(), expected);
    for id in &order_ids {
        assert!(
            delivered
                .iter()
                .any(|n| &n.order_id == id && n.kind == "order.placed")
        );
    }
}

test_support::on_each_backend!(notifications_wait_out_a_notify_outage);
