//! Every error is JSON `{"error": {"code", "message", "requestId"}}` with
//! the right status, and every response carries `x-request-id`.

use super::Fleet;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response, status: StatusCode, code: &str, fragment: &str) -> Value {
    assert_eq!(response.status(), status);
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["requestId"], request_id.as_str(), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(fragment),
        "{message:?} should mention {fragment:?}"
    );
    body
}

#[tokio::test]
async fn client_mistakes_get_4xx_json_that_says_what_is_wrong() {
    let fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    let json_post = |path: &str, body: &str| {
        fleet
            .http
            .post(fleet.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };

    for path in ["/api/orders/%FF", "/api/restaurants/%FF/menu"] {
        error_of(
            fleet.get(path).await,
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "UTF-8",
        )
        .await;
    }
    error_of(
        json_post("/api/restaurants", "{\"name\": ").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "EOF",
    )
    .await;
    error_of(
        json_post(
            "/api/restaurants",
            r#"{"name": 5, "cuisine": "x", "address": "y"}"#,
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "name",
    )
    .await;
    error_of(
        json_post("/api/restaurants", r#"{"cuisine": "x", "address": "y"}"#)
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "missing field `name`",
    )
    .await;
    error_of(
        json_post(
            "/api/restaurants",
            r#"{"name": "", "cuisine": "x", "address": "y"}"#,
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "name is required",
    )
    .await;
    let wrong_type = json!({"restaurantId": restaurant_id, "customer": "ana", "items": [{"menuItemId": items[0]["id"], "quantity": "two"}]});
    error_of(
        fleet.send_json(Method::POST, "/api/orders", wrong_type).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "items[0].quantity",
    )
    .await;
    let zero = json!({"restaurantId": restaurant_id, "customer": "ana", "items": [{"menuItemId": items[0]["id"], "quantity": 0}]});
    error_of(
        fleet.send_json(Method::POST, "/api/orders", zero).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "items[0].quantity must be between 1 and 99",
    )
    .await;

    let not_json = fleet
        .http
        .post(fleet.url("/api/restaurants"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    error_of(
        not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "application/json",
    )
    .await;
    let huge = format!(
        r#"{{"name": "{}", "cuisine": "x", "address": "y"}}"#,
        "n".repeat(70 * 1024)
    );
    error_of(
        json_post("/api/restaurants", &huge).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "64 KiB",
    )
    .await;

    error_of(
        fleet
            .get("/api/restaurants/rst_00000000000000000000000000000000")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "not found",
    )
    .await;
    error_of(
        fleet.get("/api/restaurants/nope").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "malformed",
    )
    .await;
    error_of(
        fleet
            .get("/api/orders/ord_00000000000000000000000000000000")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "not found",
    )
    .await;
    error_of(
        fleet.get("/api/restaurants?limit=500").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "page_size",
    )
    .await;
    error_of(
        fleet.get("/api/restaurants?limit=ten").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "limit",
    )
    .await;
    error_of(
        fleet.get("/api/orders?status=eaten").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "use one of placed",
    )
    .await;
    error_of(
        fleet.get("/api/notifications?since=yesterday").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "RFC 3339",
    )
    .await;
    error_of(
        fleet.get("/api/nowhere").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "no route for GET /api/nowhere",
    )
    .await;
    error_of(
        fleet
            .http
            .delete(fleet.url("/api/restaurants"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "DELETE",
    )
    .await;

    let order = json!({"restaurantId": restaurant_id, "customer": "bo", "items": [{"menuItemId": items[0]["id"], "quantity": 1}]});
    let placed: Value = fleet
        .send_json(Method::POST, "/api/orders", order.clone())
        .await
        .json()
        .await
        .unwrap();
    let id = placed["id"].as_str().unwrap();
    let skip = fleet
        .send_json(
            Method::PATCH,
            &format!("/api/orders/{id}/status"),
            json!({"status": "delivered"}),
        )
        .await;
    error_of(
        skip,
        StatusCode::CONFLICT,
        "failed_precondition",
        "cannot move from placed to delivered",
    )
    .await;
    let unknown = fleet
        .send_json(
            Method::PATCH,
            &format!("/api/orders/{id}/status"),
            json!({"status": "eaten"}),
        )
        .await;
    error_of(
        unknown,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "\"eaten\" is not an order status",
    )
    .await;

    let keyed = |body: &Value| {
        fleet
            .http
            .post(fleet.url("/api/orders"))
            .header("idempotency-key", "k-9")
            .json(body)
            .send()
    };
    assert_eq!(keyed(&order).await.unwrap().status(), 201);
    let mut different = order.clone();
    different["items"][0]["quantity"] = json!(3);
    error_of(
        keyed(&different).await.unwrap(),
        StatusCode::CONFLICT,
        "already_exists",
        "k-9",
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let fleet = Fleet::start().await;
    let given = fleet
        .http
        .get(fleet.url("/api/restaurants"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-abc-123");
    let made = fleet.get("/api/restaurants").await;
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_") && id.len() > 20, "{id}");
    let garbage = fleet
        .http
        .get(fleet.url("/health"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_ne!(
        garbage.headers()["x-request-id"].len(),
        500,
        "an unreasonable id is replaced"
    );
}

#[tokio::test]
async fn the_request_id_reaches_the_service_logs() {
    let fleet = Fleet::start().await;
    let created = fleet
        .http
        .post(fleet.url("/api/restaurants"))
        .header("x-request-id", "trace-logs-42")
        .json(&json!({"name": "Traced Tacos", "cuisine": "mexican", "address": "4 Log Lane"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let replica = super::served_by(&created);
    let process = fleet
        .restaurants
        .iter()
        .find(|r| r.addr().to_string() == replica)
        .expect("a fleet replica served it");
    let log = process.log();
    let line = log
        .lines()
        .find(|line| line.contains("restaurant created"))
        .unwrap_or_else(|| panic!("no creation logged:\n{log}"));
    assert!(line.contains("request_id=trace-logs-42"), "{line}");
}
