//! Every failure the REST API answers with, and the one mapping from gRPC
//! status codes to HTTP. The JSON body (`{"error": {"code", "message",
//! "requestId"}}`) is written by the request-id middleware, which knows
//! the request id: see [`super::request_id`].

use axum::response::{IntoResponse, Response};
use dishpatch_pool::CallError;
use http::{
    HeaderValue, StatusCode,
    header::{RETRY_AFTER, WWW_AUTHENTICATE},
};
use tonic::Code;

/// A failed request: an HTTP status, a stable machine-readable code, and a
/// message a person can act on.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code such as `not_found`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The replica that answered, when one did.
    pub served_by: Option<HeaderValue>,
}

impl ApiError {
    /// An error with no replica involved.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            served_by: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    /// 401: the route needs a caller and the request named none.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: this needs a bearer token (Authorization: Bearer <token>)",
        )
    }

    /// 401: the request's token is malformed, expired or not to be trusted.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
    }

    /// 403: the caller is known, and may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", message)
    }

    /// 404: no such route.
    pub fn no_route(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        )
    }

    /// The same error, its message followed by `more`.
    pub fn and(mut self, more: impl AsRef<str>) -> Self {
        self.message.push_str(more.as_ref());
        self
    }

    /// A service's answer, by its gRPC code.
    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid_argument"),
            Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
            Code::Aborted => (StatusCode::CONFLICT, "aborted"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
            Code::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
            Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "unimplemented"),
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => {
                (StatusCode::BAD_GATEWAY, "upstream_error")
            }
        };
        Self::new(http, code, status.message())
    }
}

/// The parts of an error the middleware turns into its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct ErrorDetails {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// Every error's JSON body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

impl ErrorBody {
    /// The body of the error `code` (`message`) of the request `request_id`
    /// in the trace `trace_id`.
    pub(crate) fn new(code: &'static str, message: String, request_id: String, trace_id: String) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message,
                request_id,
                trace_id,
            },
        }
    }
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetail {
    /// A stable, machine-readable code, such as `not_found`,
    /// `invalid_argument` or `outcome_unknown`.
    pub(crate) code: &'static str,
    /// What is wrong, for a person.
    pub(crate) message: String,
    /// The request's id (also its `x-request-id`).
    pub(crate) request_id: String,
    /// The id of the request's trace (also in its `traceparent`): 32 hex
    /// digits.
    pub(crate) trace_id: String,
}

impl From<CallError> for ApiError {
    /// A failed call. A write whose outcome is unknown (it timed out, or
    /// the connection broke, after it may have reached its service; or the
    /// service itself could not tell: CANCELLED as its own timeout cut the
    /// write short, UNKNOWN as its commit failed) says so: 504 or 502 with
    /// `outcome_unknown`, never 503 with `Retry-After`, which would invite
    /// the client to make it twice.
    fn from(failed: CallError) -> Self {
        let served_by = failed.served_by().cloned();
        let status = failed.status();
        let mut error = if failed.may_have_taken_effect() && failed.kind().writes() {
            let http = match status.code() {
                Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            Self::new(
                http,
                "outcome_unknown",
                format!("{}; the change may or may not have been made", status.message()),
            )
        } else {
            Self::from_status(status)
        };
        error.served_by = served_by;
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: how to authenticate, and whether the token sent
            // was the trouble.
            let challenge = if self.code == "invalid_token" {
                r#"Bearer realm="dishpatch", error="invalid_token""#
            } else {
                r#"Bearer realm="dishpatch""#
            };
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(served_by) = self.served_by {
            response
                .headers_mut()
                .insert(dishpatch::wire::header::SERVED_BY, served_by);
        }
        response.extensions_mut().insert(ErrorDetails {
            code: self.code,
            message: self.message,
        });
        response
    }
}
