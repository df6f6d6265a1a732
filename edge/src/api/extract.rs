//! axum's JSON, query and path extractors, with their rejections turned
//! into [`ApiError`]s: 400 naming the field for malformed JSON, a wrong type
//! or a path that is not UTF-8, 413 for a body over the limit, 415 for a
//! body that is not JSON; and ids in paths, 404 when malformed.

use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use dishpatch::ids::IdKind;
use http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;

/// A JSON body.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused(rejection.status(), rejection.body_text())),
        }
    }
}

/// Query parameters.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused(StatusCode::BAD_REQUEST, rejection.body_text())),
        }
    }
}

/// Path parameters.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused(rejection.status(), rejection.body_text())),
        }
    }
}

/// An id from a REST path, checked to be of `kind` (`what` names it in the
/// error). A malformed id names no resource, so it is answered as an
/// unknown one is: 404.
pub(crate) fn path_id(kind: IdKind, what: &str, id: String) -> Result<String, ApiError> {
    match kind.check("id", &id) {
        Ok(()) => Ok(id),
        Err(malformed) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found: {malformed}"),
        )),
    }
}

fn refused(status: StatusCode, message: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload_too_large", "the request body is over 64 KiB")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "send the body as JSON, with Content-Type: application/json",
        ),
        // axum says 422 for well-formed JSON of the wrong shape; to a client
        // both are a bad request, and the message names the field.
        _ => ApiError::bad_request(message),
    }
}
