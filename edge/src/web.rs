//! The web front end, served at `/`: one HTML page, its script and its
//! style sheet (`edge/web/`), built into the binary, so the edge needs
//! nothing beside it. Each answer carries an `ETag` and `Cache-Control:
//! no-cache`: a browser asks again each time and is answered 304 until a
//! new edge serves new files. The page's own Content-Security-Policy lets
//! it load only itself and call only this edge.

use axum::{
    Router,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{
    HeaderMap, HeaderValue, StatusCode,
    header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH},
};
use std::{
    hash::{Hash, Hasher},
    sync::LazyLock,
};

/// What the page may load and call: only this edge.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A file of the front end.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        body.hash(&mut hasher);
        let etag =
            HeaderValue::try_from(format!("\"{:016x}\"", hasher.finish())).expect("hex is a valid header");
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// The file, or 304 if the browser has this version.
    fn answer(&self, request: &HeaderMap) -> Response {
        let fresh = request.get(IF_NONE_MATCH).is_some_and(|tags| {
            tags.as_bytes()
                .split(|b| *b == b',')
                .any(|tag| tag.trim_ascii() == self.etag.as_bytes())
        });
        let headers = [
            (ETAG, self.etag.clone()),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY)),
        ];
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        }
    }
}

static PAGE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../web/index.html"), "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../web/app.js"), "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../web/app.css"), "text/css; charset=utf-8"));

/// The routes of the front end: `/`, `/app.js`, `/app.css`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { PAGE.answer(&headers) }),
        )
        .route(
            "/app.js",
            get(|headers: HeaderMap| async move { SCRIPT.answer(&headers) }),
        )
        .route(
            "/app.css",
            get(|headers: HeaderMap| async move { STYLE.answer(&headers) }),
        )
}
