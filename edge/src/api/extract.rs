//! axum's JSON, query and path extractors, with their rejections turned
//! into [`ApiError`]s: 400 naming the field for malformed JSON, a wrong type
//! or a path that is not UTF-8, 413 for a body over the limit, 415 for a
//! body that is not JSON; and ids in paths, 404 when malformed.

use super::error::ApiError;
use axum::extract::{
    FromRequest, FromRequestParts,
    rejection::{JsonRejection, PathRejection, QueryRejection},
};
use dishpatch::ids::IdKind;
use http::StatusCode;

/// A JSON body.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub(crate) T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub(crate) T);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        refused(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        refused(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        refused(rejection.status(), rejection.body_text())
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
