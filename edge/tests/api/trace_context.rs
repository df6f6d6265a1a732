//! W3C trace context through the edge: a caller's `traceparent` is
//! continued (its trace id in the answer's `traceparent`, in error bodies,
//! on the log lines of the services the request reached, and in the
//! notifications it caused, through the outbox and the relay), a missing or
//! broken one starts a new trace.

use super::Fleet;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::eventually;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The trace id and span id of a response's `traceparent`.
fn traceparent_of(response: &reqwest::Response) -> (String, String) {
    let header = response.headers()["traceparent"].to_str().unwrap().to_owned();
    let fields: Vec<&str> = header.split('-').collect();
    assert_eq!(fields.len(), 4, "{header}");
    assert_eq!((fields[0], fields[3]), ("00", "01"), "{header}");
    (fields[1].to_owned(), fields[2].to_owned())
}

#[tokio::test]
async fn a_caller_s_trace_is_continued_through_the_services_and_named_in_errors() {
    let fleet = Fleet::start().await;
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let (restaurant_id, items) = fleet.menu().await;
    let order = json!({
        "restaurantId": restaurant_id,
        "customer": "ana",
        "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
        "deliveryAddress": "5 Hungry Lane",
    });
    let placed = fleet
        .http
        .post(fleet.url("/api/orders"))
        .header("traceparent", &traceparent)
        .header("tracestate", "congo=t61rcWkgMzE")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let (trace_id, edge_span) = traceparent_of(&placed);
    assert_eq!(trace_id, TRACE_ID, "the caller's trace");
    assert_ne!(edge_span, CALLER_SPAN, "the edge's own span");
    let order_id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logged = fleet
        .orders
        .iter()
        .map(|replica| replica.log())
        .find(|log| log.contains(&order_id))
        .expect("a replica logged the order");
    let placed_line = logged.lines().find(|line| line.contains(&order_id)).unwrap();
    assert!(
        placed_line.contains(&format!("trace_id={TRACE_ID}")),
        "order-svc's line names the trace: {placed_line}"
    );

    // Its notifications went through the outbox and the relay to
    // notify-svc, and name the trace too.
    let notifications = eventually("the order's notifications", Duration::from_secs(10), || async {
        let listed = fleet
            .get_json(&format!("/api/notifications?orderId={order_id}"))
            .await;
        let notifications = listed["notifications"].as_array()?.clone();
        (notifications.len() == 2).then_some(notifications)
    })
    .await;
    for notification in &notifications {
        assert_eq!(notification["traceId"], TRACE_ID, "{notification}");
    }

    let missing = fleet
        .http
        .get(fleet.url("/api/orders/ord_00000000000000000000000000000000"))
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(traceparent_of(&missing).0, TRACE_ID);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["traceId"], TRACE_ID, "{body}");
}

#[tokio::test]
async fn a_missing_or_broken_traceparent_starts_a_trace() {
    let fleet = Fleet::start().await;
    let broken = format!("00-{}-{CALLER_SPAN}-01", TRACE_ID.to_uppercase());
    let mut seen = Vec::new();
    for traceparent in [None, Some(broken.as_str())] {
        let mut request = fleet
            .http
            .get(fleet.url("/api/orders/ord_00000000000000000000000000000000"));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        let (trace_id, _) = traceparent_of(&response);
        assert!(
            trace_id.len() == 32 && trace_id != TRACE_ID && trace_id != "0".repeat(32),
            "{trace_id}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["traceId"], trace_id.as_str(), "{body}");
        seen.push(trace_id);
    }
    assert_ne!(seen[0], seen[1], "a new trace each time");
}
