//! What the services refuse reaches the client as the same JSON errors the
//! edge's own refusals are (those are tested without services, in
//! `router.rs`), and request ids reach the services' logs.

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
async fn the_services_refusals_reach_the_client_as_4xx_json() {
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
    let zero = json!({"restaurantId": restaurant_id, "customer": "ana", "items": [{"menuItemId": items[0]["id"], "quantity": 0}]});
    error_of(
        fleet.send_json(Method::POST, "/api/orders", zero).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "items[0].quantity must be between 1 and 99",
    )
    .await;
    for unknown in [
        "/api/restaurants/rst_00000000000000000000000000000000",
        "/api/orders/ord_00000000000000000000000000000000",
    ] {
        error_of(
            fleet.get(unknown).await,
            StatusCode::NOT_FOUND,
            "not_found",
            "not found",
        )
        .await;
    }
    error_of(
        fleet.get("/api/restaurants?limit=500").await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        "page_size",
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
