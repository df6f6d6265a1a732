//! Signing in (development sign-in only: an identity provider issues the
//! tokens of a deployment).

use super::fields::{Customer, RestaurantId};
use crate::auth::{Principal, Role};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// Who to sign in as.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SignIn {
    /// Who: a customer's name (the one on their orders), or a staff
    /// member's or admin's id.
    #[schema(value_type = Customer)]
    pub(crate) sub: String,
    pub(crate) role: Role,
    /// The restaurants restaurant staff work for (1 to 10); none for
    /// others.
    #[serde(default)]
    #[schema(value_type = Vec<RestaurantId>, max_items = 10)]
    pub(crate) restaurants: Vec<String>,
}

/// A bearer token, and whom it names.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignedIn {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
    sub: String,
    role: Role,
    #[schema(value_type = Vec<RestaurantId>)]
    restaurants: Vec<String>,
}

impl SignedIn {
    pub(crate) fn new(token: String, ttl: Duration, principal: Principal) -> Self {
        Self {
            token,
            token_type: "Bearer",
            expires_in: ttl.as_secs(),
            sub: principal.sub,
            role: principal.role,
            restaurants: principal.restaurants,
        }
    }
}
