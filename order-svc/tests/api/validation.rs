//! Every request is checked: bad input gets INVALID_ARGUMENT (NOT_FOUND for
//! unknown ids, FAILED_PRECONDITION for items off sale) with a message that
//! names the problem, and nothing is stored.

use super::{Neighbours, place};
use dishpatch::proto::{order::v1 as pb, restaurant::v1 as restaurant};
use test_support::{Backend, assert_refused};
use tonic::Code;

const UNKNOWN_ORDER: &str = "ord_00000000000000000000000000000000";
const UNKNOWN_RESTAURANT: &str = "rst_00000000000000000000000000000000";
const UNKNOWN_ITEM: &str = "itm_00000000000000000000000000000000";

#[tokio::test]
async fn refuses_bad_orders_and_stores_none_of_them() {
    let mut neighbours = Neighbours::start(Backend::Sqlite).await;
    let (restaurant_id, items) = neighbours.menu().await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;
    let good = place(&restaurant_id, &items, "ana", 1);
    let line = |id: &str, quantity| pb::LineRequest {
        menu_item_id: id.into(),
        quantity,
    };
    let item = items[0].id.as_str();

    let off_sale = neighbours
        .restaurants
        .add_menu_item(restaurant::AddMenuItemRequest {
            restaurant_id: restaurant_id.clone(),
            name: "Sold Out Special".into(),
            price_cents: 999,
            available: Some(false),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let cases = [
        (
            pb::PlaceOrderRequest {
                restaurant_id: String::new(),
                ..good.clone()
            },
            Code::InvalidArgument,
            "restaurant_id is required",
        ),
        (
            pb::PlaceOrderRequest {
                restaurant_id: "pizza".into(),
                ..good.clone()
            },
            Code::InvalidArgument,
            "restaurant_id \"pizza\" is malformed",
        ),
        (
            pb::PlaceOrderRequest {
                customer: " ".into(),
                ..good.clone()
            },
            Code::InvalidArgument,
            "customer is required",
        ),
        (
            pb::PlaceOrderRequest {
                customer: "c".repeat(101),
                ..good.clone()
            },
            Code::InvalidArgument,
            "customer must be at most 100",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![],
                ..good.clone()
            },
            Code::InvalidArgument,
            "at least one menu item",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(item, 0)],
                ..good.clone()
            },
            Code::InvalidArgument,
            "items[0].quantity must be between 1 and 99, got 0",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(item, 100)],
                ..good.clone()
            },
            Code::InvalidArgument,
            "items[0].quantity must be between 1 and 99, got 100",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(item, -3)],
                ..good.clone()
            },
            Code::InvalidArgument,
            "items[0].quantity",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(item, 1), line(item, 1)],
                ..good.clone()
            },
            Code::InvalidArgument,
            "listed twice",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line("", 1)],
                ..good.clone()
            },
            Code::InvalidArgument,
            "items[0].menu_item_id is required",
        ),
        (
            pb::PlaceOrderRequest {
                items: (0..51).map(|_| line(UNKNOWN_ITEM, 1)).collect(),
                ..good.clone()
            },
            Code::InvalidArgument,
            "at most 50",
        ),
        (
            pb::PlaceOrderRequest {
                note: Some("n".repeat(501)),
                ..good.clone()
            },
            Code::InvalidArgument,
            "note must be at most 500",
        ),
        (
            pb::PlaceOrderRequest {
                delivery_address: Some("a".repeat(201)),
                ..good.clone()
            },
            Code::InvalidArgument,
            "delivery_address must be at most 200",
        ),
        (
            pb::PlaceOrderRequest {
                idempotency_key: "k".repeat(101),
                ..good.clone()
            },
            Code::InvalidArgument,
            "idempotency_key must be at most 100",
        ),
        (
            pb::PlaceOrderRequest {
                restaurant_id: UNKNOWN_RESTAURANT.into(),
                ..good.clone()
            },
            Code::NotFound,
            UNKNOWN_RESTAURANT,
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(UNKNOWN_ITEM, 1)],
                ..good.clone()
            },
            Code::NotFound,
            "is not on the menu",
        ),
        (
            pb::PlaceOrderRequest {
                items: vec![line(&off_sale.id, 1)],
                ..good.clone()
            },
            Code::FailedPrecondition,
            "Sold Out Special",
        ),
    ];
    for (request, code, fragment) in cases {
        assert_refused(orders.place_order(request).await, code, fragment);
    }
    let listed = orders
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.orders.is_empty(), "no refused order was stored");
}

#[tokio::test]
async fn refuses_bad_reads_and_moves() {
    let neighbours = Neighbours::start(Backend::Sqlite).await;
    let (_order_svc, mut orders) = neighbours.order_replica().await;

    let get = |id: &str| pb::GetOrderRequest { id: id.into() };
    let status = orders.get_order(get("")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "id is required")
    );
    let status = orders.get_order(get("ord_xyz")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = orders.get_order(get(UNKNOWN_ORDER)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::NotFound,
            format!("order {UNKNOWN_ORDER} not found").as_str()
        )
    );

    let moves = [
        (
            pb::UpdateOrderStatusRequest {
                id: UNKNOWN_ORDER.into(),
                status: 0,
            },
            Code::InvalidArgument,
            "status is required",
        ),
        (
            pb::UpdateOrderStatusRequest {
                id: UNKNOWN_ORDER.into(),
                status: 42,
            },
            Code::InvalidArgument,
            "status 42 is not a known order status",
        ),
        (
            pb::UpdateOrderStatusRequest {
                id: "nope".into(),
                status: 2,
            },
            Code::InvalidArgument,
            "id \"nope\" is malformed",
        ),
        (
            pb::UpdateOrderStatusRequest {
                id: UNKNOWN_ORDER.into(),
                status: 2,
            },
            Code::NotFound,
            "not found",
        ),
    ];
    for (request, code, fragment) in moves {
        assert_refused(orders.update_order_status(request).await, code, fragment);
    }

    let lists = [
        (
            pb::ListOrdersRequest {
                status: 99,
                ..Default::default()
            },
            "status 99 is not a known order status",
        ),
        (
            pb::ListOrdersRequest {
                restaurant_id: "r".into(),
                ..Default::default()
            },
            "restaurant_id",
        ),
        (
            pb::ListOrdersRequest {
                page_token: "2".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListOrdersRequest {
                page_size: 500,
                ..Default::default()
            },
            "page_size",
        ),
    ];
    for (request, fragment) in lists {
        assert_refused(orders.list_orders(request).await, Code::InvalidArgument, fragment);
    }
}
