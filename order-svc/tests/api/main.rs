//! order-svc's integration tests: the three services as real servers on
//! 127.0.0.1:0 over real stores, and the real binary where signals matter.

mod deadlines;
mod group_commit;
mod grpcurl;
mod idempotency;
mod life_cycle;
mod outbox;
mod process;
mod replicas;
mod tls;
mod validation;

use dishpatch::proto::{
    notify::v1::{self as notify, notify_service_client::NotifyServiceClient},
    order::v1::{self as pb, order_service_client::OrderServiceClient},
    restaurant::v1::{self as restaurant, restaurant_service_client::RestaurantServiceClient},
};
use std::net::SocketAddr;
use test_support::{
    Backend, RunningService, TestStore,
    services::{ANY_PORT, order_config, spawn_notify, spawn_restaurant},
};
use tonic::transport::Channel;

/// restaurant-svc (seeded) and notify-svc, each on its own store, and the
/// stores for order-svc replicas.
struct Neighbours {
    restaurant: RunningService,
    notify: Option<RunningService>,
    notify_addr: SocketAddr,
    restaurants: RestaurantServiceClient<Channel>,
    notifications: NotifyServiceClient<Channel>,
    order_store: TestStore,
    notify_store: TestStore,
    _restaurant_store: TestStore,
}

impl Neighbours {
    async fn start(backend: Backend) -> Self {
        let restaurant_store = TestStore::new(backend).await;
        let notify_store = TestStore::new(backend).await;
        let restaurant = spawn_restaurant(restaurant_store.url()).await;
        let notify = spawn_notify(notify_store.url(), ANY_PORT).await;
        Self {
            restaurants: RestaurantServiceClient::connect(restaurant.url()).await.unwrap(),
            notifications: NotifyServiceClient::connect(notify.url()).await.unwrap(),
            restaurant,
            notify_addr: notify.addr(),
            notify: Some(notify),
            order_store: TestStore::new(backend).await,
            notify_store,
            _restaurant_store: restaurant_store,
        }
    }

    /// An order-svc replica on the shared order store.
    async fn order_replica(&self) -> (RunningService, OrderServiceClient<Channel>) {
        spawn_order(&self.order_store, self.restaurant.addr(), self.notify_addr).await
    }

    /// Stops notify-svc; its address and store stay for [`Self::restart_notify`].
    async fn stop_notify(&mut self) {
        self.notify.take().expect("notify-svc is running").stop().await;
    }

    /// Starts notify-svc again on its old address and store.
    async fn restart_notify(&mut self) {
        self.notify = Some(spawn_notify(self.notify_store.url(), self.notify_addr).await);
    }

    /// A seeded restaurant and two of its available items.
    async fn menu(&mut self) -> (String, Vec<restaurant::MenuItem>) {
        let listed = self
            .restaurants
            .list_restaurants(restaurant::ListRestaurantsRequest::default())
            .await
            .unwrap();
        let restaurant_id = listed.into_inner().restaurants[0].id.clone();
        let menu = self
            .restaurants
            .get_menu(restaurant::GetMenuRequest {
                restaurant_id: restaurant_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let available = menu
            .items
            .into_iter()
            .filter(|item| item.available)
            .take(2)
            .collect();
        (restaurant_id, available)
    }

    /// Every notification recorded (about `order_id` only, if given), in
    /// sequence order; empty while notify-svc does not answer.
    async fn notifications(&self, order_id: Option<&str>) -> Vec<notify::Notification> {
        let request = notify::ListNotificationsRequest {
            order_id: order_id.unwrap_or_default().into(),
            page_size: 100,
            ..Default::default()
        };
        match self.notifications.clone().list_notifications(request).await {
            Ok(listed) => listed.into_inner().notifications,
            Err(_) => Vec::new(),
        }
    }
}

async fn spawn_order(
    store: &TestStore,
    restaurant: SocketAddr,
    notify: SocketAddr,
) -> (RunningService, OrderServiceClient<Channel>) {
    let config = order_config(store.url(), restaurant, notify);
    let service = test_support::start(order_svc::build(config).await.expect("order-svc builds"));
    let client = OrderServiceClient::connect(service.url())
        .await
        .expect("connects");
    (service, client)
}

/// An order of `quantity` of each item.
fn place(
    restaurant_id: &str,
    items: &[restaurant::MenuItem],
    customer: &str,
    quantity: i32,
) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        restaurant_id: restaurant_id.into(),
        customer: customer.into(),
        items: items
            .iter()
            .map(|item| pb::LineRequest {
                menu_item_id: item.id.clone(),
                quantity,
            })
            .collect(),
        delivery_address: Some("5 Hungry Lane".into()),
        note: None,
        idempotency_key: String::new(),
    }
}

fn move_to(order_id: &str, status: pb::OrderStatus) -> pb::UpdateOrderStatusRequest {
    pb::UpdateOrderStatusRequest {
        id: order_id.into(),
        status: status.into(),
    }
}
