//! An order's whole life across the three services; on SQLite and
//! PostgreSQL.

use super::{Neighbours, move_to, place};
use dishpatch::proto::{order::v1 as pb, restaurant::v1 as restaurant};
use pb::OrderStatus::*;
use std::time::Duration;
use test_support::{Backend, eventually};
use tonic::Code;

async fn an_order_lives_from_placed_to_delivered(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let (restaurant_id, items) = neighbours.menu().await;

    let placed = orders
        .place_order(place(&restaurant_id, &items, "ana", 2))
        .await
        .unwrap()
        .into_inner();
    assert!(placed.id.starts_with("ord_"));
    assert_eq!(placed.status(), Placed);
    assert_eq!(placed.items.len(), 2);
    for (line, item) in placed.items.iter().zip(&items) {
        assert_eq!(line.menu_item_id, item.id);
        assert_eq!(line.name, item.name);
        assert_eq!(line.unit_price_cents, item.price_cents, "priced from the menu");
        assert_eq!(line.line_total_cents, item.price_cents * 2);
    }
    let expected_total: i64 = items.iter().map(|item| item.price_cents * 2).sum();
    assert_eq!(placed.total_cents, expected_total);
    assert_eq!(placed.delivery_address.as_deref(), Some("5 Hungry Lane"));

    let mut order = placed.clone();
    for next in [Accepted, Preparing, Ready, OutForDelivery, Delivered] {
        order = orders
            .update_order_status(move_to(&placed.id, next))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(order.status(), next);
    }
    let history: Vec<_> = order
        .status_history
        .iter()
        .map(|change| change.status())
        .collect();
    assert_eq!(
        history,
        [Placed, Accepted, Preparing, Ready, OutForDelivery, Delivered]
    );
    let micros =
        |at: &Option<prost_types::Timestamp>| dishpatch::time::from_timestamp(at.as_ref().unwrap()).unwrap();
    assert!(micros(&order.updated_at) > micros(&order.created_at));

    let fetched = orders
        .get_order(pb::GetOrderRequest {
            id: placed.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, order, "what is read back is what was answered");

    let refused = orders
        .update_order_status(move_to(&placed.id, Cancelled))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        format!(
            "order {} cannot move from delivered to cancelled: delivered is final",
            placed.id
        )
    );

    // Seven notifications: placed (customer and restaurant), then one per move.
    let notifications = eventually(
        "every notification of the order",
        Duration::from_secs(10),
        || async {
            let listed = neighbours.notifications(Some(&placed.id)).await;
            (listed.len() >= 7).then_some(listed)
        },
    )
    .await;
    let kinds: Vec<_> = notifications
        .iter()
        .map(|n| (n.kind.as_str(), n.recipient.as_str()))
        .collect();
    let restaurant_recipient = format!("restaurant:{restaurant_id}");
    assert_eq!(
        kinds,
        [
            ("order.placed", "ana"),
            ("order.placed", restaurant_recipient.as_str()),
            ("order.accepted", "ana"),
            ("order.preparing", "ana"),
            ("order.ready", "ana"),
            ("order.out_for_delivery", "ana"),
            ("order.delivered", "ana"),
        ]
    );
    assert!(notifications[0].message.contains(&placed.id));
}

async fn cancelling_and_refused_moves(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let (restaurant_id, items) = neighbours.menu().await;

    let order = orders
        .place_order(place(&restaurant_id, &items, "bo", 1))
        .await
        .unwrap()
        .into_inner();
    let skipped = orders
        .update_order_status(move_to(&order.id, Ready))
        .await
        .unwrap_err();
    assert_eq!(skipped.code(), Code::FailedPrecondition);
    assert!(
        skipped
            .message()
            .contains("cannot move from placed to ready: from placed it can move to accepted or cancelled"),
        "{}",
        skipped.message()
    );
    orders
        .update_order_status(move_to(&order.id, Accepted))
        .await
        .unwrap();
    let cancelled = orders
        .update_order_status(move_to(&order.id, Cancelled))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status(), Cancelled);
    let after = orders
        .update_order_status(move_to(&order.id, Preparing))
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition);
    assert!(
        after.message().contains("from cancelled to preparing"),
        "{}",
        after.message()
    );

    let preparing = orders
        .place_order(place(&restaurant_id, &items, "bo", 1))
        .await
        .unwrap()
        .into_inner();
    orders
        .update_order_status(move_to(&preparing.id, Accepted))
        .await
        .unwrap();
    orders
        .update_order_status(move_to(&preparing.id, Preparing))
        .await
        .unwrap();
    let too_late = orders
        .update_order_status(move_to(&preparing.id, Cancelled))
        .await
        .unwrap_err();
    assert_eq!(
        too_late.code(),
        Code::FailedPrecondition,
        "a dish being cooked cannot be cancelled"
    );
}

async fn prices_are_kept_when_the_menu_changes(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let (restaurant_id, items) = neighbours.menu().await;
    let order = orders
        .place_order(place(&restaurant_id, &items[..1], "cy", 1))
        .await
        .unwrap()
        .into_inner();

    neighbours
        .restaurants
        .update_menu_item(restaurant::UpdateMenuItemRequest {
            restaurant_id: restaurant_id.clone(),
            menu_item_id: items[0].id.clone(),
            price_cents: Some(items[0].price_cents + 500),
            ..Default::default()
        })
        .await
        .unwrap();
    let fetched = orders
        .get_order(pb::GetOrderRequest { id: order.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fetched.total_cents, items[0].price_cents,
        "an order keeps the price it was placed at"
    );
    let next = orders
        .place_order(place(&restaurant_id, &items[..1], "cy", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next.total_cents,
        items[0].price_cents + 500,
        "a new order gets the new price"
    );
}

async fn lists_orders_newest_first_with_filters(backend: Backend) {
    let mut neighbours = Neighbours::start(backend).await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let (restaurant_id, items) = neighbours.menu().await;
    let mut placed = Vec::new();
    for n in 0..5 {
        let customer = if n % 2 == 0 { "ana" } else { "bo" };
        placed.push(
            orders
                .place_order(place(&restaurant_id, &items, customer, 1))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    orders
        .update_order_status(move_to(&placed[4].id, Accepted))
        .await
        .unwrap();

    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = orders
            .list_orders(pb::ListOrdersRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.orders.iter().map(|order| order.id.clone()));
        assert!(
            page.orders
                .iter()
                .all(|order| !order.items.is_empty() && !order.status_history.is_empty())
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let newest_first: Vec<_> = placed.iter().rev().map(|order| order.id.clone()).collect();
    assert_eq!(ids, newest_first);

    let anas = orders
        .list_orders(pb::ListOrdersRequest {
            customer: "ana".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(anas.orders.len(), 3);
    let accepted = orders
        .list_orders(pb::ListOrdersRequest {
            status: Accepted.into(),
            restaurant_id: restaurant_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        accepted.orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [placed[4].id.as_str()]
    );
}

test_support::on_each_backend!(
    an_order_lives_from_placed_to_delivered,
    cancelling_and_refused_moves,
    prices_are_kept_when_the_menu_changes,
    lists_orders_newest_first_with_filters,
);

#[tokio::test]
async fn pricing_fails_cleanly_while_restaurant_svc_is_down() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    // Move only restaurant-svc out: the order store must outlive this test.
    neighbours.restaurant.stop().await;

    let refused = orders
        .place_order(place(&restaurant_id, &items, "dee", 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("restaurant-svc"),
        "{}",
        refused.message()
    );
    let listed = orders
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.orders.is_empty(), "no half-made order is stored");
}
