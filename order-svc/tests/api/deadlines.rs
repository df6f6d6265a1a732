//! An order is stored only while its caller waits for it: never after the
//! caller was told it failed.

use super::{Neighbours, place};
use dishpatch::{proto::order::v1 as pb, store::Store, wire};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use test_support::Backend;
use tonic::Code;

/// The orders of `customer`.
async fn orders_of(
    orders: &mut pb::order_service_client::OrderServiceClient<tonic::transport::Channel>,
    customer: &str,
) -> Vec<pb::Order> {
    let request = pb::ListOrdersRequest {
        customer: customer.into(),
        ..Default::default()
    };
    orders.list_orders(request).await.unwrap().into_inner().orders
}

#[tokio::test]
async fn an_order_is_stored_only_while_its_answer_can_reach_the_caller_in_time() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;

    // Another writer of the same SQLite file (as another replica would be)
    // holds the write turn.
    let other_writer = Store::open(neighbours.order_store.url(), &order_svc::MIGRATIONS)
        .await
        .unwrap();
    let held = other_writer.write_turn(None).await.unwrap();

    // The turn comes free 10 ms before the caller's 1 s is up: a write
    // made then would be stored as its caller gives up, or after, since
    // the caller counts its second from before the call reached
    // order-svc. The call itself stays open, as when its cancellation is
    // still on its way. order-svc keeps back 100 ms of the second for that
    // (tolerating up to 90 ms here between sending the call and
    // order-svc reading it), so it does not write.
    let comes_free = tokio::time::Instant::now() + Duration::from_millis(990);
    let mut request = tonic::Request::new(place(&restaurant_id, &items, "impatient", 1));
    request.set_timeout(Duration::from_secs(1));
    let mut call = orders.clone();
    let answer = tokio::spawn(async move { call.place_order(request).await });
    tokio::time::sleep_until(comes_free).await;
    drop(held);

    let refused = answer
        .await
        .unwrap()
        .expect_err("no order is stored in the last stretch of its caller's time");
    assert!(
        matches!(refused.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{refused:?}"
    );
    assert!(
        orders_of(&mut orders, "impatient").await.is_empty(),
        "the caller was told it failed: it is not stored"
    );
    let placed = orders
        .place_order(place(&restaurant_id, &items, "patient", 1))
        .await
        .unwrap();
    assert_eq!(placed.into_inner().customer, "patient", "the writer goes on");
}

#[tokio::test]
async fn a_call_read_after_its_absolute_deadline_stores_nothing() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;

    // As a replica that was stopped (SIGSTOP) reads a call queued before:
    // its relative timeout looks fresh, its absolute deadline has passed.
    let mut request = tonic::Request::new(place(&restaurant_id, &items, "stale", 1));
    request.set_timeout(Duration::from_secs(5));
    let a_while_ago = SystemTime::now() - Duration::from_secs(3);
    let micros = a_while_ago.duration_since(UNIX_EPOCH).unwrap().as_micros();
    request
        .metadata_mut()
        .insert(wire::DEADLINE, micros.to_string().parse().unwrap());
    let refused = orders.place_order(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
    assert!(orders_of(&mut orders, "stale").await.is_empty());
}

#[tokio::test]
async fn a_replica_gone_silent_inside_a_transaction_holds_up_orders_only_briefly() {
    if test_support::postgres::skipped() {
        return;
    }
    let mut neighbours = Neighbours::start(Backend::Postgres).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;

    // Another replica inserted Ana's order with key k1, and then went
    // silent before committing: cut off from the network, or frozen.
    let silent = Store::open(neighbours.order_store.url(), &order_svc::MIGRATIONS)
        .await
        .unwrap();
    let mut held = silent.begin_write("silent", None).await.unwrap();
    sqlx::query(
        "INSERT INTO orders (id, restaurant_id, restaurant_name, customer, status, total_cents,
                             idempotency_key, created_at, updated_at)
         VALUES ('ord_silent', $1, 'x', 'ana', 'placed', 1, 'k1', 0, 0)",
    )
    .bind(&restaurant_id)
    .execute(&mut **held)
    .await
    .unwrap();

    // The edge retries Ana's order, with its key, on this replica: the
    // insert waits for the silent one's transaction, which the server ends.
    let mut retry = place(&restaurant_id, &items, "ana", 1);
    retry.idempotency_key = "k1".into();
    let mut request = tonic::Request::new(retry);
    request.set_timeout(Duration::from_secs(10));
    let placed = orders
        .place_order(request)
        .await
        .expect("placed once the silent transaction is ended");
    assert_ne!(placed.into_inner().id, "ord_silent");
    assert!(
        held.commit().await.is_err(),
        "the silent replica's transaction was rolled back"
    );
    assert_eq!(orders_of(&mut orders, "ana").await.len(), 1, "one order");
}
