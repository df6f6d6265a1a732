//! Who the caller is: the bearer token of `Authorization`, verified
//! ([`crate::auth::Verifier`]), kept as a request extension that the
//! handlers needing a caller take as [`Caller`]. A request without a token
//! is anonymous; one with a bad token is refused (401) whatever it asks
//! for, so a client learns at once that its token is bad rather than
//! browsing as nobody.

use super::error::ApiError;
use crate::auth::{Principal, Verified, Verifier};
use axum::{
    extract::{FromRequestParts, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, header::AUTHORIZATION, request::Parts};
use std::sync::Arc;

/// The middleware: verifies the token, if there is one.
pub(crate) async fn authenticate(
    State(verifier): State<Arc<Verifier>>,
    mut request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        Ok(None) => {}
        Ok(Some(token)) => match verifier.verify(token) {
            Ok(verified) => {
                request.extensions_mut().insert(verified);
            }
            Err(rejected) => return ApiError::invalid_token(rejected.to_string()).into_response(),
        },
        Err(refused) => return refused.into_response(),
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::invalid_token("send the token as Authorization: Bearer <token>");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// The verified caller of a route that needs one; an anonymous request to
/// such a route is answered 401.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Verified);

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0.principal
    }
}

impl<S: Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Verified>()
            .cloned()
            .map(Self)
            .ok_or_else(ApiError::unauthenticated)
    }
}
