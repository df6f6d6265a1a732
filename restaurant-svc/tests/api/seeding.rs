//! An empty store gets sample restaurants once, however many replicas start.

use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use test_support::{Backend, TestStore, services::restaurant_config};

#[tokio::test]
async fn an_empty_store_is_seeded_once_by_replicas_starting_together() {
    let store = TestStore::new(Backend::Sqlite).await;
    let (a, b) = tokio::join!(
        restaurant_svc::build(restaurant_config(store.url())),
        restaurant_svc::build(restaurant_config(store.url())),
    );
    let (a, _b) = (test_support::start(a.unwrap()), test_support::start(b.unwrap()));
    let mut client = RestaurantServiceClient::connect(a.url()).await.unwrap();
    let listed = client
        .list_restaurants(pb::ListRestaurantsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.restaurants.len(), 6, "six sample restaurants, each once");
    for restaurant in &listed.restaurants {
        let menu = client
            .get_menu(pb::GetMenuRequest {
                restaurant_id: restaurant.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(menu.items.len() >= 4, "{} has a menu", restaurant.name);
    }
}

#[tokio::test]
async fn no_seed_leaves_the_store_empty() {
    let store = TestStore::new(Backend::Sqlite).await;
    let (_service, mut client) = super::spawn(&store, false).await;
    let listed = client
        .list_restaurants(pb::ListRestaurantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.restaurants.is_empty());
}
