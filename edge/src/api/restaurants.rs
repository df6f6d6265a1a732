//! `/api/restaurants`: restaurants and their menus.

use super::{
    AppState,
    dto::{Menu, MenuItem, NewMenuItem, NewRestaurant, Restaurant, RestaurantList, RestaurantQuery},
    error::ApiError,
    extract::{Json, Path, Query},
    request_id::RequestId,
};
use axum::{Extension, extract::State, response::Response};
use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use dishpatch_pool::{CallKind, ReplicaPool};
use http::StatusCode;

fn client(pool: &ReplicaPool) -> RestaurantServiceClient<ReplicaPool> {
    RestaurantServiceClient::new(pool.clone())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Query(query): Query<RestaurantQuery>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.restaurants;
    let request = pb::ListRestaurantsRequest {
        cuisine: query.cuisine.unwrap_or_default(),
        query: query.q.unwrap_or_default(),
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            client(pool).list_restaurants(r).await
        })
        .await?;
    Ok(listed.respond::<RestaurantList>(StatusCode::OK))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Json(new): Json<NewRestaurant>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.restaurants;
    let request = pb::CreateRestaurantRequest::from(new);
    let created = state
        .call(pool, CallKind::NotIdempotent, &id, request, |r| async {
            client(pool).create_restaurant(r).await
        })
        .await?;
    Ok(created.respond::<Restaurant>(StatusCode::CREATED))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(restaurant_id): Path<String>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.restaurants;
    let request = pb::GetRestaurantRequest { id: restaurant_id };
    let found = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            client(pool).get_restaurant(r).await
        })
        .await?;
    Ok(found.respond::<Restaurant>(StatusCode::OK))
}

pub(crate) async fn menu(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(restaurant_id): Path<String>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.restaurants;
    let request = pb::GetMenuRequest { restaurant_id };
    let menu = state
        .call(pool, CallKind::Idempotent, &id, request, |r| async {
            client(pool).get_menu(r).await
        })
        .await?;
    Ok(menu.respond::<Menu>(StatusCode::OK))
}

pub(crate) async fn add_item(
    State(state): State<AppState>,
    Extension(id): Extension<RequestId>,
    Path(restaurant_id): Path<String>,
    Json(new): Json<NewMenuItem>,
) -> Result<Response, ApiError> {
    let pool = &state.pools.restaurants;
    let request = new.into_request(restaurant_id);
    let added = state
        .call(pool, CallKind::NotIdempotent, &id, request, |r| async {
            client(pool).add_menu_item(r).await
        })
        .await?;
    Ok(added.respond::<MenuItem>(StatusCode::CREATED))
}
