//! dishpatch's load generator: drives a scenario at the edge over HTTP/1.1
//! keep-alive or straight at restaurant-svc over gRPC, in a closed or open
//! loop, and reports throughput, HDR latency percentiles and errors.
//!
//! - [`target`]: where the load goes.
//! - [`scenario`]: what each worker sends.
//! - [`load`]: the closed and open loops.
//! - [`report`]: what was measured.
//! - [`suite`], [`baseline`]: the side-by-side baseline and its reference
//!   servers; [`idle`]: idle keep-alive connections, for memory.

pub mod baseline;
pub mod fanout;
mod grpc;
mod http;
pub mod idle;
pub mod load;
pub mod report;
pub mod scale;
pub mod scenario;
pub mod seed;
pub mod suite;
pub mod target;

use scenario::Catalog;
use target::Target;

/// Finds the restaurants (and their available items) the load will use:
/// through the edge's REST API, or restaurant-svc's ListRestaurants.
pub async fn discover_catalog(target: &Target) -> Result<Catalog, String> {
    let restaurants = match target {
        Target::Http { authority } => discover_over_http(authority).await?,
        Target::Grpc { authority } => discover_over_grpc(authority).await?,
    };
    if restaurants.is_empty() {
        return Err(format!(
            "{target} has no restaurant with an available menu item to load"
        ));
    }
    Ok(Catalog { restaurants })
}

async fn discover_over_http(authority: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let get = |path: String| async move {
        let url = format!("http://{authority}{path}");
        let body = fetch(&url).await?;
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|error| format!("{url}: {error}"))
    };
    let listed = get("/api/restaurants?limit=100".into()).await?;
    let mut restaurants = Vec::new();
    for restaurant in listed["restaurants"].as_array().into_iter().flatten() {
        let Some(id) = restaurant["id"].as_str() else {
            continue;
        };
        let menu = get(format!("/api/restaurants/{id}/menu")).await?;
        let items: Vec<String> = menu["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["available"] == true)
            .filter_map(|item| item["id"].as_str().map(str::to_owned))
            .collect();
        if !items.is_empty() {
            restaurants.push((id.to_owned(), items));
        }
    }
    Ok(restaurants)
}

/// A plain GET over one fresh HTTP/1.1 connection.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    use http_body_util::{BodyExt, Empty};
    let uri: ::http::Uri = url.parse().map_err(|error| format!("{url}: {error}"))?;
    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| format!("{url}: {error}"))?;
    tokio::spawn(connection);
    let request = ::http::Request::get(uri.path_and_query().map(ToString::to_string).unwrap_or_default())
        .header(::http::header::HOST, authority)
        .body(Empty::<hyper::body::Bytes>::new())
        .expect("a well-formed request");
    let answer = sender
        .send_request(request)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    if !answer.status().is_success() {
        return Err(format!("{url}: {}", answer.status()));
    }
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    Ok(body.to_bytes().to_vec())
}

async fn discover_over_grpc(authority: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    use dishpatch::proto::restaurant::v1::{
        GetMenuRequest, ListRestaurantsRequest, restaurant_service_client::RestaurantServiceClient,
    };
    let channel = grpc::connect(authority, 1).await?.remove(0);
    let mut client = RestaurantServiceClient::new(channel);
    let request = ListRestaurantsRequest {
        page_size: 100,
        ..Default::default()
    };
    let listed = client
        .list_restaurants(request)
        .await
        .map_err(|status| status.message().to_owned())?;
    let mut restaurants = Vec::new();
    for restaurant in listed.into_inner().restaurants {
        let menu = client
            .get_menu(GetMenuRequest {
                restaurant_id: restaurant.id.clone(),
            })
            .await
            .map_err(|status| status.message().to_owned())?;
        let items: Vec<String> = menu
            .into_inner()
            .items
            .into_iter()
            .filter(|item| item.available)
            .map(|item| item.id)
            .collect();
        if !items.is_empty() {
            restaurants.push((restaurant.id, items));
        }
    }
    Ok(restaurants)
}
