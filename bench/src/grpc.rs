//! gRPC straight at restaurant-svc: many workers share a few HTTP/2
//! connections, each request its own stream.

use crate::{load::Outcome, scenario::Operation};
use dishpatch::proto::restaurant::v1::{
    GetMenuRequest, GetRestaurantRequest, ListRestaurantsRequest,
    restaurant_service_client::RestaurantServiceClient,
};
use tonic::transport::{Channel, Endpoint};

/// Opens `connections` HTTP/2 connections to `authority`.
pub(crate) async fn connect(authority: &str, connections: usize) -> Result<Vec<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|error| format!("gRPC target {authority}: {error}"))?
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| format!("connecting to {authority}: {error}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// One worker's client, on one of the shared connections.
#[derive(Debug, Clone)]
pub(crate) struct GrpcConnection {
    restaurants: RestaurantServiceClient<Channel>,
}

impl GrpcConnection {
    /// A client on `channel`.
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            restaurants: RestaurantServiceClient::new(channel),
        }
    }

    /// Sends `operation` as its gRPC call.
    pub(crate) async fn send(&mut self, operation: &Operation) -> Outcome {
        let answered = match operation {
            Operation::GetRestaurant(id) => self
                .restaurants
                .get_restaurant(GetRestaurantRequest { id: id.clone() })
                .await
                .map(drop),
            Operation::GetMenu(id) => self
                .restaurants
                .get_menu(GetMenuRequest {
                    restaurant_id: id.clone(),
                })
                .await
                .map(drop),
            Operation::ListRestaurants => self
                .restaurants
                .list_restaurants(ListRestaurantsRequest::default())
                .await
                .map(drop),
            Operation::PlaceOrder { .. } | Operation::MoveOrder { .. } => {
                unreachable!("write scenarios are refused for gRPC targets before the load starts")
            }
        };
        match answered {
            Ok(()) => Outcome::Ok,
            Err(status) => Outcome::Failed(format!("grpc {:?}", status.code())),
        }
    }
}
