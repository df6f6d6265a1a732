//! `/api/restaurants`: restaurants and their menus.

use super::{
    AppState, Call,
    dto::{
        Menu, MenuItem, NewMenuItem, NewRestaurant, Restaurant, RestaurantId, RestaurantList, RestaurantQuery,
    },
    error::{ApiError, ErrorBody},
    extract::{Json, Path, Query, path_id},
    identity::Caller,
    respond,
};
use axum::{extract::State, response::Response};
use dishpatch::ids::RESTAURANT;
use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use dishpatch_pool::{CallKind, ReplicaChannel};
use http::StatusCode;

fn client(channel: ReplicaChannel) -> RestaurantServiceClient<ReplicaChannel> {
    RestaurantServiceClient::new(channel)
}

/// Lists restaurants, by name and cuisine, a page at a time.
#[utoipa::path(
    get,
    path = "/api/restaurants",
    operation_id = "listRestaurants",
    tag = "restaurants",
    params(RestaurantQuery),
    responses(
        (status = 200, description = "A page of restaurants", body = RestaurantList),
        (status = 400, description = "A malformed query", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    call: Call,
    Query(query): Query<RestaurantQuery>,
) -> Result<Response, ApiError> {
    let request = pb::ListRestaurantsRequest {
        cuisine: query.cuisine.unwrap_or_default(),
        query: query.q.unwrap_or_default(),
        page_size: query.limit.unwrap_or_default(),
        page_token: query.cursor.unwrap_or_default(),
    };
    let listed = (state.pools.restaurants)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            client(channel).list_restaurants(request).await
        })
        .await?;
    Ok(respond::<RestaurantList, _>(listed, StatusCode::OK))
}

/// Creates a restaurant (admins only).
#[utoipa::path(
    post,
    path = "/api/restaurants",
    operation_id = "createRestaurant",
    security(("bearer" = [])),
    tag = "restaurants",
    request_body = NewRestaurant,
    responses(
        (status = 201, description = "The restaurant created", body = Restaurant),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Json(new): Json<NewRestaurant>,
) -> Result<Response, ApiError> {
    caller.require_admin("create restaurants")?;
    let request = pb::CreateRestaurantRequest::from(new);
    let created = (state.pools.restaurants)
        .call(&call, CallKind::Write, request, |channel, request| async move {
            client(channel).create_restaurant(request).await
        })
        .await?;
    Ok(respond::<Restaurant, _>(created, StatusCode::CREATED))
}

/// One restaurant.
#[utoipa::path(
    get,
    path = "/api/restaurants/{id}",
    operation_id = "getRestaurant",
    tag = "restaurants",
    params(("id" = RestaurantId, Path, description = "The restaurant's id")),
    responses(
        (status = 200, description = "The restaurant", body = Restaurant),
        (status = 404, description = "No such restaurant", body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    call: Call,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(RESTAURANT, "restaurant", id)?;
    let request = pb::GetRestaurantRequest { id };
    let found = (state.pools.restaurants)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            client(channel).get_restaurant(request).await
        })
        .await?;
    Ok(respond::<Restaurant, _>(found, StatusCode::OK))
}

/// A restaurant's menu.
#[utoipa::path(
    get,
    path = "/api/restaurants/{id}/menu",
    operation_id = "getMenu",
    tag = "restaurants",
    params(("id" = RestaurantId, Path, description = "The restaurant's id")),
    responses(
        (status = 200, description = "Its menu", body = Menu),
        (status = 404, description = "No such restaurant", body = ErrorBody),
    ),
)]
pub(crate) async fn menu(
    State(state): State<AppState>,
    call: Call,
    Path(restaurant_id): Path<String>,
) -> Result<Response, ApiError> {
    let restaurant_id = path_id(RESTAURANT, "restaurant", restaurant_id)?;
    let request = pb::GetMenuRequest { restaurant_id };
    let menu = (state.pools.restaurants)
        .call(&call, CallKind::Read, request, |channel, request| async move {
            client(channel).get_menu(request).await
        })
        .await?;
    Ok(respond::<Menu, _>(menu, StatusCode::OK))
}

/// Adds an item to a restaurant's menu (its staff, or an admin).
#[utoipa::path(
    post,
    path = "/api/restaurants/{id}/menu/items",
    operation_id = "addMenuItem",
    security(("bearer" = [])),
    tag = "restaurants",
    params(("id" = RestaurantId, Path, description = "The restaurant's id")),
    request_body = NewMenuItem,
    responses(
        (status = 201, description = "The item added", body = MenuItem),
        (status = 404, description = "No such restaurant", body = ErrorBody),
        (status = 409, description = "The menu already has an item of that name", body = ErrorBody),
    ),
)]
pub(crate) async fn add_item(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    Path(restaurant_id): Path<String>,
    Json(new): Json<NewMenuItem>,
) -> Result<Response, ApiError> {
    let restaurant_id = path_id(RESTAURANT, "restaurant", restaurant_id)?;
    caller.require_staff_of(&restaurant_id)?;
    let request = new.into_request(restaurant_id);
    let added = (state.pools.restaurants)
        .call(&call, CallKind::Write, request, |channel, request| async move {
            client(channel).add_menu_item(request).await
        })
        .await?;
    Ok(respond::<MenuItem, _>(added, StatusCode::CREATED))
}
