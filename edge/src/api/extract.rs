//! axum's JSON, query and path extractors, with their rejections turned
//! into [`ApiError`]s: 400 naming the field for malformed JSON, a wrong type
//! or a path that is not UTF-8, 413 for a body over the limit, 415 for a
//! body that is not JSON; and ids in paths, 404 when malformed.

use super::{AppState, error::ApiError};
use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
};
use dishpatch::ids::IdKind;
use http::StatusCode;
use serde::de::DeserializeOwned;

/// A JSON body, which must be an object. (serde reads a struct from an
/// array of its fields in order too, `["rst_…", "ana", …]`: a form the
/// contract does not have, so it is refused rather than half-understood.)
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        let is_json = content_type.is_some_and(|media| {
            media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
        });
        if !is_json {
            return Err(refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, String::new()));
        }
        // A body trickled a byte at a time must not hold its connection,
        // and a place among the requests in flight, for ever.
        let limit = state.body_read_timeout;
        let bytes = tokio::time::timeout(limit, Bytes::from_request(request, state))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("the request body did not arrive within {limit:?}"),
                )
            })?
            .map_err(|rejection| refused(rejection.status(), rejection.body_text()))?;
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let axum::Json(value) = axum::Json::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

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
