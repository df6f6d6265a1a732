//! Two order-svc replicas on one store: each sees the other's writes at
//! once, a race to move one order has one winner, and the two relays
//! deliver each notification once. On SQLite and PostgreSQL.

use super::{Neighbours, move_to, place};
use dishpatch::proto::order::v1::{self as pb, OrderStatus};
use std::time::Duration;
use test_support::{Backend, eventually};
use tonic::Code;

async fn two_replicas_share_one_store(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_a, mut a) = neighbours.order_replica().await;
    let (_b, mut b) = neighbours.order_replica().await;

    // Both replicas take orders at the same time.
    let placing = (0..10).map(|n| {
        let mut client = if n % 2 == 0 { a.clone() } else { b.clone() };
        let request = place(&restaurant_id, &items, &format!("guest-{n}"), 1);
        async move { client.place_order(request).await.map(|order| order.into_inner()) }
    });
    let placed: Vec<pb::Order> = futures_util::future::try_join_all(placing)
        .await
        .expect("every concurrent order succeeds");

    for order in &placed {
        let seen_by_a = a
            .get_order(pb::GetOrderRequest { id: order.id.clone() })
            .await
            .unwrap()
            .into_inner();
        let seen_by_b = b
            .get_order(pb::GetOrderRequest { id: order.id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((&seen_by_a, &seen_by_b), (order, order));
    }

    // Both replicas accept the same order at once: exactly one wins.
    let id = &placed[0].id;
    let (first, second) = tokio::join!(
        a.update_order_status(move_to(id, OrderStatus::Accepted)),
        b.update_order_status(move_to(id, OrderStatus::Accepted)),
    );
    let outcomes = [first.map(|_| ()), second.map(|_| ())];
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let loser = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(loser.code(), Code::FailedPrecondition);
    assert!(
        loser.message().contains("from accepted to accepted"),
        "{}",
        loser.message()
    );
    let history = a
        .get_order(pb::GetOrderRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .status_history;
    assert_eq!(history.len(), 2, "one accepted entry: {history:?}");

    // 10 orders × 2 notifications + 1 move, each delivered once by two relays.
    let expected = 21;
    eventually("both relays to deliver", Duration::from_secs(15), || async {
        (neighbours.notifications(None).await.len() >= expected).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = neighbours.notifications(None).await;
    assert_eq!(delivered.len(), expected);
}

test_support::on_each_backend!(two_replicas_share_one_store);
