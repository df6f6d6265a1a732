//! order-svc over mutual TLS on both sides: it answers the edge, and calls
//! restaurant-svc (to price an order) and notify-svc (to relay its
//! notification) with a certificate of its own.

use super::place;
use dishpatch::proto::{
    notify::v1::{ListNotificationsRequest, notify_service_client::NotifyServiceClient},
    order::v1::order_service_client::OrderServiceClient,
    restaurant::v1::{
        GetMenuRequest, ListRestaurantsRequest, restaurant_service_client::RestaurantServiceClient,
    },
};
use std::time::Duration;
use test_support::{
    Backend, RunningService, TestStore, eventually,
    services::{notify_config, order_config, restaurant_config, run_notify, run_restaurant},
    tls::{TestCerts, channel},
};

#[tokio::test]
async fn an_order_is_priced_placed_and_relayed_over_mutual_tls() {
    let certs = TestCerts::new();
    let stores = [
        TestStore::new(Backend::Sqlite).await,
        TestStore::new(Backend::Sqlite).await,
        TestStore::new(Backend::Sqlite).await,
    ];
    let mut restaurant = restaurant_config(stores[0].url());
    restaurant.tls = certs.serve_args("restaurant-svc");
    let restaurant = run_restaurant(restaurant).await;
    let mut notify = notify_config(stores[1].url());
    notify.tls = certs.serve_args("notify-svc");
    let notify = run_notify(notify).await;
    let order = order_svc::Config {
        tls: certs.serve_args("order-svc"),
        ..order_config(stores[2].url(), restaurant.addr(), notify.addr())
    };
    let order = test_support::start(order_svc::build(order).await.unwrap());

    // The test calls as the edge does.
    let edge = certs.tls("edge");
    let channel = |service: &RunningService, name: &str| channel(service.addr(), edge.client(name));
    let mut restaurants = RestaurantServiceClient::new(channel(&restaurant, "restaurant-svc"));
    let listed = restaurants
        .list_restaurants(ListRestaurantsRequest::default())
        .await
        .unwrap();
    let restaurant_id = listed.into_inner().restaurants[0].id.clone();
    let menu = restaurants
        .get_menu(GetMenuRequest {
            restaurant_id: restaurant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let item = menu.items.into_iter().find(|item| item.available).unwrap();

    let placed = OrderServiceClient::new(channel(&order, "order-svc"))
        .place_order(place(&restaurant_id, std::slice::from_ref(&item), "ana", 2))
        .await
        .expect("placed: priced by restaurant-svc over mutual TLS")
        .into_inner();
    assert_eq!(placed.total_cents, 2 * item.price_cents);

    let notifications = NotifyServiceClient::new(channel(&notify, "notify-svc"));
    eventually(
        "the order's notification, relayed over mutual TLS",
        Duration::from_secs(10),
        || async {
            let request = ListNotificationsRequest {
                order_id: placed.id.clone(),
                ..Default::default()
            };
            let listed = notifications.clone().list_notifications(request).await.ok()?;
            (!listed.into_inner().notifications.is_empty()).then_some(())
        },
    )
    .await;
}
