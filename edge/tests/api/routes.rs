//! Every route, through the edge, with the JSON shapes clients rely on.

use super::Fleet;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::eventually;

#[tokio::test]
async fn restaurants_and_menus() {
    let fleet = Fleet::start().await;

    let listed = fleet.get_json("/api/restaurants?limit=2").await;
    assert_eq!(listed["restaurants"].as_array().unwrap().len(), 2);
    let next = listed["nextCursor"].as_str().expect("more pages follow");
    let rest = fleet
        .get_json(&format!("/api/restaurants?limit=100&cursor={next}"))
        .await;
    assert_eq!(
        rest["restaurants"].as_array().unwrap().len(),
        4,
        "six seeded restaurants in all"
    );
    assert_eq!(rest["nextCursor"], Value::Null);
    let search = fleet.get_json("/api/restaurants?q=PHO").await;
    assert_eq!(search["restaurants"][0]["name"], "Pho Saigon");

    let response = fleet
        .send_json(
            Method::POST,
            "/api/restaurants",
            json!({"name": "Casa Pepe", "cuisine": "spanish", "address": "3 Plaza Mayor", "rating": 4.3}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["address", "createdAt", "cuisine", "id", "name", "rating"]);
    let id = created["id"].as_str().unwrap();
    assert_eq!(fleet.get_json(&format!("/api/restaurants/{id}")).await, created);

    let response = fleet
        .send_json(
            Method::POST,
            &format!("/api/restaurants/{id}/menu/items"),
            json!({"name": "Paella", "priceCents": 1850}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let item: Value = response.json().await.unwrap();
    assert_eq!(
        item,
        json!({"id": item["id"], "restaurantId": id, "name": "Paella", "description": "", "priceCents": 1850, "available": true})
    );
    let menu = fleet.get_json(&format!("/api/restaurants/{id}/menu")).await;
    assert_eq!(menu, json!({"items": [item]}));
}

#[tokio::test]
async fn an_order_through_its_life_with_notifications() {
    let fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    let order = json!({
        "restaurantId": restaurant_id,
        "customer": "ana",
        "items": [{"menuItemId": items[0]["id"], "quantity": 2}, {"menuItemId": items[1]["id"], "quantity": 1}],
        "deliveryAddress": "5 Hungry Lane",
        "note": "ring twice",
    });
    let response = fleet
        .http
        .post(fleet.url("/api/orders"))
        .header("idempotency-key", "checkout-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let placed: Value = response.json().await.unwrap();
    let expected_total =
        items[0]["priceCents"].as_i64().unwrap() * 2 + items[1]["priceCents"].as_i64().unwrap();
    assert_eq!(placed["totalCents"], expected_total);
    assert_eq!(placed["status"], "placed");
    assert_eq!(placed["items"][0]["unitPriceCents"], items[0]["priceCents"]);
    assert_eq!(
        placed["items"][0]["lineTotalCents"],
        items[0]["priceCents"].as_i64().unwrap() * 2
    );
    assert_eq!(placed["deliveryAddress"], "5 Hungry Lane");
    let id = placed["id"].as_str().unwrap();

    let again = fleet
        .http
        .post(fleet.url("/api/orders"))
        .header("idempotency-key", "checkout-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(
        again.json::<Value>().await.unwrap()["id"],
        id,
        "the same key places the order once"
    );

    for status in ["accepted", "preparing", "ready", "out_for_delivery", "delivered"] {
        let response = fleet
            .send_json(
                Method::PATCH,
                &format!("/api/orders/{id}/status"),
                json!({"status": status}),
            )
            .await;
        assert_eq!(response.status(), 200, "to {status}");
        assert_eq!(response.json::<Value>().await.unwrap()["status"], status);
    }
    let fetched = fleet.get_json(&format!("/api/orders/{id}")).await;
    let history: Vec<&str> = fetched["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "placed",
            "accepted",
            "preparing",
            "ready",
            "out_for_delivery",
            "delivered"
        ]
    );
    assert!(
        fetched["statusHistory"][0]["at"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 times"
    );

    let listed = fleet
        .get_json(&format!(
            "/api/orders?customer=ana&status=delivered&restaurantId={restaurant_id}"
        ))
        .await;
    assert_eq!(listed["orders"].as_array().unwrap().len(), 1);
    assert_eq!(listed["nextCursor"], Value::Null);

    let notifications = eventually("the order's notifications", Duration::from_secs(10), || async {
        let listed = fleet.get_json(&format!("/api/notifications?orderId={id}")).await;
        let all = listed["notifications"].as_array().unwrap().clone();
        (all.len() >= 7).then_some(all)
    })
    .await;
    assert_eq!(notifications[0]["kind"], "order.placed");
    assert_eq!(notifications[0]["orderId"], id);
    let for_ana = fleet.get_json("/api/notifications?recipient=ana&limit=3").await;
    assert_eq!(for_ana["notifications"].as_array().unwrap().len(), 3);
    assert!(for_ana["nextCursor"].is_string());
    let since_future = fleet
        .get_json("/api/notifications?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(since_future["notifications"], json!([]));
}

#[tokio::test]
async fn health_reports_every_replica() {
    let fleet = Fleet::start().await;
    fleet.get("/api/restaurants").await;
    let response = fleet.get("/health").await;
    assert_eq!(response.status(), 200);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    for service in ["restaurant-svc", "order-svc", "notify-svc"] {
        let replicas = health["services"][service]["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 2, "{service}");
        for replica in replicas {
            assert_eq!(replica["state"], "healthy");
            assert_eq!(replica["lastProbe"], "SERVING");
            assert!(replica["lastProbeAt"].is_string());
            assert_eq!(replica["consecutiveFailures"], 0);
        }
    }
    let served: u64 = health["services"]["restaurant-svc"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requestsServed"].as_u64().unwrap())
        .sum();
    assert!(served >= 1);
}
