//! restaurant-svc's integration tests: real servers on 127.0.0.1:0 over real
//! stores, and the real binary where signals matter.

mod catalog;
mod grpcurl;
mod lifecycle;
mod seeding;
mod tls;
mod validation;

use dishpatch::proto::restaurant::v1::restaurant_service_client::RestaurantServiceClient;
use test_support::{RunningService, TestStore, services::restaurant_config};
use tonic::transport::Channel;

/// A restaurant-svc on `store`, and a client of it.
async fn spawn(store: &TestStore, seed: bool) -> (RunningService, RestaurantServiceClient<Channel>) {
    let config = restaurant_svc::Config {
        no_seed: !seed,
        ..restaurant_config(store.url())
    };
    let service = test_support::start(
        restaurant_svc::build(config)
            .await
            .expect("restaurant-svc builds"),
    );
    let client = RestaurantServiceClient::connect(service.url())
        .await
        .expect("connects");
    (service, client)
}
