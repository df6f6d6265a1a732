//! `POST /api/dev/sign-in`: a token for whoever asks, as whatever they ask
//! to be, signed with the edge's development key. For one machine only
//! (the launcher turns it on; an edge reached by strangers never has it):
//! it lets the web front end, `curl` and the tests act as a customer,
//! restaurant staff or an admin without an identity provider. Off, the
//! route does not exist (404).

use super::{
    AppState, Call,
    dto::{SignIn, SignedIn},
    error::{ApiError, ErrorBody},
    extract::Json,
};
use crate::auth::{Principal, dev::DevKey};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_client::RestaurantServiceClient};
use dishpatch_pool::CallKind;
use http::StatusCode;
use std::time::Duration;

/// The most restaurants one staff member signs in for.
const MAX_RESTAURANTS: usize = 10;

/// What development sign-in signs with.
#[derive(Debug)]
pub struct DevSignIn {
    /// The key.
    pub key: DevKey,
    /// The `iss` of its tokens (the one the edge checks).
    pub issuer: String,
    /// The `aud` of its tokens (the one the edge checks).
    pub audience: String,
    /// How long its tokens last.
    pub ttl: Duration,
}

/// Signs in: a bearer token for the principal asked for.
#[utoipa::path(
    post,
    path = "/api/dev/sign-in",
    operation_id = "devSignIn",
    tag = "identity",
    request_body = SignIn,
    responses(
        (status = 200, description = "A bearer token for the principal asked for", body = SignedIn),
        (status = 404, description = "Development sign-in is off (an identity provider issues tokens)", body = ErrorBody),
    ),
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    call: Call,
    Json(asked): Json<SignIn>,
) -> Result<Response, ApiError> {
    let Some(dev) = state.identity.sign_in.as_deref() else {
        return Err(ApiError::no_route(&http::Method::POST, "/api/dev/sign-in"));
    };
    if asked.restaurants.len() > MAX_RESTAURANTS {
        return Err(ApiError::bad_request(format!(
            "restaurants: at most {MAX_RESTAURANTS}"
        )));
    }
    let principal =
        Principal::new(asked.sub, asked.role, asked.restaurants).map_err(ApiError::bad_request)?;
    // Staff of a restaurant that does not exist could do nothing; saying
    // so now beats a puzzling 403 later.
    for restaurant_id in &principal.restaurants {
        let request = pb::GetRestaurantRequest {
            id: restaurant_id.clone(),
        };
        (state.pools.restaurants)
            .call(&call, CallKind::Read, request, |channel, request| async move {
                RestaurantServiceClient::new(channel)
                    .get_restaurant(request)
                    .await
            })
            .await?;
    }
    let token = dev.key.sign(&principal, &dev.issuer, &dev.audience, dev.ttl);
    let signed_in = SignedIn::new(token, dev.ttl, principal);
    Ok((StatusCode::OK, axum::Json(signed_in)).into_response())
}
