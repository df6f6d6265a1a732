//! With notify-svc down, orders still succeed and their notifications wait
//! in the outbox (its metrics say how many); when it comes back every
//! notification arrives, once, in the trace of the request that caused it,
//! even if order-svc restarted meanwhile. On SQLite and PostgreSQL.

use super::{Neighbours, move_to, place};
use dishpatch::proto::order::v1::{self as pb, OrderStatus};
use std::{collections::HashSet, time::Duration};
use test_support::{Backend, RunningService, eventually};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// `dishpatch_outbox_pending` as `order_svc` serves it at `/metrics`.
async fn outbox_pending(order_svc: &RunningService) -> Option<f64> {
    let text = reqwest::get(format!("{}/metrics", order_svc.url()))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("dishpatch_outbox_pending ")?.parse().ok())
}

async fn notifications_wait_out_a_notify_outage(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (order_svc, mut orders) = neighbours.order_replica().await;
    neighbours.stop_notify().await;

    let mut order_ids = Vec::new();
    for customer in ["ana", "bo", "cy"] {
        let mut request = tonic::Request::new(place(&restaurant_id, &items, customer, 1));
        if customer == "ana" {
            let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
            request
                .metadata_mut()
                .insert("traceparent", traceparent.parse().unwrap());
        }
        let order = orders
            .place_order(request)
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

    eventually(
        "the relay to count what waits",
        Duration::from_secs(10),
        || async { (outbox_pending(&order_svc).await? >= 1.0).then_some(()) },
    )
    .await;

    // The replica that wrote the outbox goes away; a new one must deliver it.
    order_svc.stop().await;
    let (order_svc, mut orders) = neighbours.order_replica().await;
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
    for notification in &delivered {
        let traced = notification.order_id == order_ids[0] && notification.kind == "order.placed";
        if traced {
            assert_eq!(notification.trace_id, TRACE_ID, "kept through the outage");
        } else {
            assert_ne!(notification.trace_id, TRACE_ID, "{notification:?}");
        }
    }
    eventually("the outbox counted empty", Duration::from_secs(10), || async {
        (outbox_pending(&order_svc).await? == 0.0).then_some(())
    })
    .await;
    for id in &order_ids {
        assert!(
            delivered
                .iter()
                .any(|n| &n.order_id == id && n.kind == "order.placed")
        );
    }
}

test_support::on_each_backend!(notifications_wait_out_a_notify_outage);
