//! What the edge itself refuses, through the real router with
//! `tower::ServiceExt::oneshot` (axum's examples/testing): no service is
//! called, so none runs. Every error is JSON `{"error": {"code", "message",
//! "requestId"}}` with the right status, and every response carries
//! `x-request-id`.

use axum::body::Body;
use dishpatch_pool::{PoolSettings, ReplicaPool, ReplicaSpec};
use edge::auth::{KeySource, Principal, Role, Verifier, VerifierSettings, dev};
use http::{Request, StatusCode};
use serde_json::Value;
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};
use tower::ServiceExt;

/// A key made for these tests, the verifier that trusts it, and an admin's
/// token signed with it: the router's requests are an admin's, unless a
/// test sends its own `Authorization`.
struct Keys {
    verifier: Arc<Verifier>,
    signing: dev::DevKey,
    _dir: tempfile::TempDir,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let signing = dev::DevKey::load_or_create(dir.path()).unwrap();
        let verifier = Verifier::new(VerifierSettings {
            sources: vec![KeySource::Jwks(dir.path().join(dev::JWKS_FILE))],
            issuer: dev::ISSUER.to_owned(),
            audience: dev::AUDIENCE.to_owned(),
            leeway: Duration::from_secs(30),
        })
        .unwrap();
        Keys {
            verifier: Arc::new(verifier),
            signing,
            _dir: dir,
        }
    })
}

/// A token for `role` named `sub`, signed with the test key.
pub(super) fn token(sub: &str, role: Role, restaurants: &[&str]) -> String {
    let restaurants = restaurants.iter().map(|id| (*id).to_owned()).collect();
    let principal = Principal::new(sub.to_owned(), role, restaurants).unwrap();
    keys()
        .signing
        .sign(&principal, dev::ISSUER, dev::AUDIENCE, Duration::from_secs(600))
}

/// The edge's router over pools whose replicas are never probed.
pub(super) fn router() -> axum::Router {
    router_with(vec![])
}

/// [`router`], letting pages of `cors_origins` call it.
fn router_with(cors_origins: Vec<http::HeaderValue>) -> axum::Router {
    let pool = |service| {
        let nowhere = [ReplicaSpec::addr("127.0.0.1:1")];
        ReplicaPool::new(
            service,
            "unused.v1.Service",
            &nowhere,
            PoolSettings::default(),
            None,
        )
        .unwrap()
    };
    let pools = edge::api::Pools {
        restaurants: pool("restaurant-svc"),
        orders: pool("order-svc"),
        notifications: pool("notify-svc"),
    };
    let settings = edge::api::ApiSettings {
        deadline: Duration::from_secs(1),
        show_replicas: true,
        max_in_flight: 64,
        body_read_timeout: Duration::from_secs(1),
        rate_limits: edge::api::RateLimitSettings {
            reads: 0,
            writes: 0,
            sign_ins: 0,
        },
        cors_origins,
        streams: edge::api::StreamSettings {
            keep_alive: Duration::from_secs(15),
            stall_limit: Duration::from_secs(10),
            reconnect: Duration::from_secs(1),
            closing: Default::default(),
            limits: Arc::new(edge::api::StreamLimits::new(16, 4)),
        },
    };
    let identity = edge::api::Identity {
        verifier: keys().verifier.clone(),
        sign_in: None,
    };
    edge::api::router(pools, settings, identity, Arc::default())
}

/// Sends `request` through a fresh router (as an admin, unless it says
/// who it is from): its status, request id and body.
async fn send(mut request: Request<Body>) -> (StatusCode, String, Value) {
    if !request.headers().contains_key(http::header::AUTHORIZATION) {
        let admin = format!("Bearer {}", token("root", Role::Admin, &[]));
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, admin.parse().unwrap());
    }
    let response = router().oneshot(request).await.unwrap();
    let status = response.status();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, request_id, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn json(method: &str, uri: &str, body: impl Into<String>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.into()))
        .unwrap()
}

/// Asserts an error answer: `status`, `code`, a message naming `fragment`,
/// and the response's request id in the body.
async fn refused(request: Request<Body>, status: StatusCode, code: &str, fragment: &str) {
    let what = format!("{} {}", request.method(), request.uri());
    let (got, request_id, body) = send(request).await;
    assert_eq!(got, status, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert_eq!(body["error"]["requestId"], request_id.as_str(), "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(fragment),
        "{what}: {message:?} should mention {fragment:?}"
    );
}

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;

#[tokio::test]
async fn malformed_bodies_are_400_naming_what_is_wrong() {
    refused(
        json("POST", "/api/restaurants", "{\"name\": "),
        BAD_REQUEST,
        "invalid_argument",
        "EOF",
    )
    .await;
    let wrong_type = r#"{"name": 5, "cuisine": "x", "address": "y"}"#;
    refused(
        json("POST", "/api/restaurants", wrong_type),
        BAD_REQUEST,
        "invalid_argument",
        "name",
    )
    .await;
    let missing = r#"{"cuisine": "x", "address": "y"}"#;
    refused(
        json("POST", "/api/restaurants", missing),
        BAD_REQUEST,
        "invalid_argument",
        "missing field `name`",
    )
    .await;
    let as_array = r#"["rst_000000000000700080005eed00010000", "ana", [["itm_000000000000700080005eed00010002", 1]], null, null]"#;
    refused(
        json("POST", "/api/orders", as_array),
        BAD_REQUEST,
        "invalid_argument",
        "must be a JSON object",
    )
    .await;
    let unknown_field = r#"{"name": "a", "cuisine": "x", "address": "y", "owner": "me"}"#;
    refused(
        json("POST", "/api/restaurants", unknown_field),
        BAD_REQUEST,
        "invalid_argument",
        "owner",
    )
    .await;
    let quantity = r#"{"restaurantId": "rst_000000000000700080005eed00010000", "customer": "ana",
                      "items": [{"menuItemId": "itm_000000000000700080005eed00010002", "quantity": "two"}]}"#;
    refused(
        json("POST", "/api/orders", quantity),
        BAD_REQUEST,
        "invalid_argument",
        "items[0].quantity",
    )
    .await;
    let status = r#"{"status": "eaten"}"#;
    refused(
        json(
            "PATCH",
            "/api/orders/ord_00000000000000000000000000000000/status",
            status,
        ),
        BAD_REQUEST,
        "invalid_argument",
        "\"eaten\" is not an order status: use one of placed",
    )
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_large_are_415_and_413() {
    let text = Request::post("/api/restaurants")
        .header("content-type", "text/plain")
        .body(Body::from("hi"))
        .unwrap();
    refused(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "application/json",
    )
    .await;
    let huge = format!(
        r#"{{"name": "{}", "cuisine": "x", "address": "y"}}"#,
        "n".repeat(70 * 1024)
    );
    refused(
        json("POST", "/api/restaurants", huge),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "64 KiB",
    )
    .await;
}

#[tokio::test]
async fn malformed_ids_in_paths_name_no_resource_404() {
    for (request, what) in [
        (get("/api/restaurants/not-an-id"), "restaurant"),
        (
            get("/api/restaurants/ord_00000000000000000000000000000000/menu"),
            "restaurant",
        ),
        (
            json(
                "POST",
                "/api/restaurants/nope/menu/items",
                r#"{"name": "x", "priceCents": 1}"#,
            ),
            "restaurant",
        ),
        (get("/api/orders/rst_000000000000700080005eed00010000"), "order"),
        (
            json("PATCH", "/api/orders/42/status", r#"{"status": "accepted"}"#),
            "order",
        ),
    ] {
        refused(
            request,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{what} not found"),
        )
        .await;
    }
    for path in ["/api/orders/%FF", "/api/restaurants/%FF/menu"] {
        refused(get(path), BAD_REQUEST, "invalid_argument", "UTF-8").await;
    }
}

#[tokio::test]
async fn malformed_queries_are_400() {
    refused(
        get("/api/restaurants?limit=ten"),
        BAD_REQUEST,
        "invalid_argument",
        "limit",
    )
    .await;
    for status in ["eaten", ""] {
        refused(
            get(&format!("/api/orders?status={status}")),
            BAD_REQUEST,
            "invalid_argument",
            "use one of placed",
        )
        .await;
    }
    refused(
        get("/api/notifications?since=yesterday"),
        BAD_REQUEST,
        "invalid_argument",
        "RFC 3339",
    )
    .await;
    refused(
        get("/api/restaurants?sort=name"),
        BAD_REQUEST,
        "invalid_argument",
        "sort",
    )
    .await;
    let not_ascii = Request::post("/api/orders")
        .header("content-type", "application/json")
        .header(
            "idempotency-key",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .body(Body::from(
            r#"{"restaurantId": "rst_000000000000700080005eed00010000", "customer": "ana", "items": []}"#,
        ))
        .unwrap();
    refused(not_ascii, BAD_REQUEST, "invalid_argument", "Idempotency-Key").await;
    let blank = Request::post("/api/orders")
        .header("content-type", "application/json")
        .header("idempotency-key", " ")
        .body(Body::from(
            r#"{"restaurantId": "rst_000000000000700080005eed00010000", "customer": "ana", "items": []}"#,
        ))
        .unwrap();
    refused(blank, BAD_REQUEST, "invalid_argument", "must not be blank").await;
}

#[tokio::test]
async fn whole_numbers_may_be_written_as_decimals_as_json_schema_allows() {
    let item = |price: &str| {
        let body = format!(r#"{{"name": "Paella", "priceCents": {price}}}"#);
        json(
            "POST",
            "/api/restaurants/rst_000000000000700080005eed00010000/menu/items",
            body,
        )
    };
    refused(
        item("12.5"),
        BAD_REQUEST,
        "invalid_argument",
        "priceCents: expected a whole number",
    )
    .await;
    // 1200.0 is read as 1200: the request goes on to restaurant-svc, which
    // this router never finds (503, or 504 once its deadline passes).
    let (status, _, body) = send(item("1200.0")).await;
    assert!(
        matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        ),
        "{status}: {body}"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_unknown_methods_405() {
    refused(
        get("/api/nowhere"),
        StatusCode::NOT_FOUND,
        "not_found",
        "no route for GET /api/nowhere",
    )
    .await;
    let delete = Request::delete("/api/restaurants").body(Body::empty()).unwrap();
    refused(
        delete,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "DELETE",
    )
    .await;
}

#[tokio::test]
async fn development_sign_in_is_no_route_unless_configured() {
    refused(
        json("POST", "/api/dev/sign-in", r#"{"sub": "root", "role": "admin"}"#),
        StatusCode::NOT_FOUND,
        "not_found",
        "no route for POST /api/dev/sign-in",
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let given = Request::get("/api/nowhere")
        .header("x-request-id", "trace-abc-123")
        .body(Body::empty())
        .unwrap();
    let (_, id, body) = send(given).await;
    assert_eq!(id, "trace-abc-123");
    assert_eq!(body["error"]["requestId"], "trace-abc-123");

    let (_, made, _) = send(get("/api/nowhere")).await;
    assert!(made.starts_with("req_") && made.len() > 20, "{made}");

    let garbage = Request::get("/api/nowhere")
        .header("x-request-id", "x".repeat(500))
        .body(Body::empty())
        .unwrap();
    let (_, replaced, _) = send(garbage).await;
    assert!(
        replaced.starts_with("req_"),
        "an unreasonable id is replaced: {replaced}"
    );
}

#[tokio::test]
async fn answers_forbid_browsers_to_sniff_frame_or_refer() {
    for request in [get("/api/nowhere"), get("/openapi.json")] {
        let response = router().oneshot(request).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(!headers.contains_key("access-control-allow-origin"));
    }
}

#[tokio::test]
async fn pages_of_the_configured_origins_alone_may_call_the_api() {
    let shop = http::HeaderValue::from_static("https://shop.example.com");
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/orders")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = router_with(vec![shop.clone()])
        .oneshot(preflight("https://shop.example.com"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], shop);
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST") && methods.contains("PATCH"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("idempotency-key"));

    let stranger = router_with(vec![shop.clone()])
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(!stranger.headers().contains_key("access-control-allow-origin"));

    let mut read = get("/api/nowhere");
    read.headers_mut().insert("origin", shop.clone());
    let answered = router_with(vec![shop.clone()]).oneshot(read).await.unwrap();
    assert_eq!(answered.headers()["access-control-allow-origin"], shop);
    let exposed = answered.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
}

#[tokio::test]
async fn the_front_end_is_served_with_its_types_policy_and_validators() {
    for (path, content_type, holds) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<script type=\"module\" src=\"/app.js\">",
        ),
        ("/app.js", "text/javascript; charset=utf-8", "function follow("),
        ("/app.css", "text/css; charset=utf-8", ":root"),
    ] {
        let response = router().oneshot(get(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"),
            "the page may run its own script and call its own edge: {policy}"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains(holds), "{path}");

        // Asked again with its ETag: not modified, no body.
        let again = Request::get(path)
            .header("if-none-match", headers["etag"].clone())
            .body(Body::empty())
            .unwrap();
        let again = router().oneshot(again).await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        let body = axum::body::to_bytes(again.into_body(), usize::MAX).await.unwrap();
        assert!(body.is_empty());
    }
}
