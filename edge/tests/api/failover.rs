//! Replicas die and come back; clients barely notice.

use super::{A_RESTAURANT, Fleet, PROBE_INTERVAL, served_by};
use reqwest::Method;
use serde_json::Value;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use test_support::eventually;

#[tokio::test]
async fn killing_a_replica_is_invisible_to_a_reading_client() {
    let mut fleet = Fleet::start().await;
    let victim = fleet.restaurants[0].addr();
    let url = fleet.url(A_RESTAURANT);
    let (http, stop, killed) = (
        fleet.http.clone(),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (failed_after_kill, served_after_kill) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reader = tokio::spawn({
        let (stop, killed, failed, served) = (
            stop.clone(),
            killed.clone(),
            failed_after_kill.clone(),
            served_after_kill.clone(),
        );
        async move {
            while !stop.load(Ordering::Relaxed) {
                // Was the kill already done when this request started?
                let after_kill = killed.load(Ordering::SeqCst);
                let ok = http.get(&url).send().await.is_ok_and(|r| r.status() == 200);
                if after_kill {
                    served.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });

    tokio::time::sleep(Duration::from_millis(200)).await;
    fleet.restaurants[0].kill().await;
    killed.store(true, Ordering::SeqCst);
    let killed_at = Instant::now();
    eventually(
        "/health to show the killed replica down",
        PROBE_INTERVAL * 5,
        || async {
            let states = fleet.restaurant_states().await;
            states
                .iter()
                .any(|(addr, state)| *addr == victim.to_string() && state == "down")
                .then_some(())
        },
    )
    .await;
    let detected_in = killed_at.elapsed();

    // Restart it on its address: it serves again within a few probe intervals.
    fleet.restart(stack::Part::RestaurantSvc, 0).await;
    let restarted_at = Instant::now();
    eventually(
        "the restarted replica to serve again",
        PROBE_INTERVAL * 10,
        || async {
            let response = fleet.get(A_RESTAURANT).await;
            (served_by(&response) == victim.to_string()).then_some(())
        },
    )
    .await;
    let back_in = restarted_at.elapsed();

    // However slow the machine, the reader has read enough to tell.
    eventually("20 reads after the kill", Duration::from_secs(10), || async {
        (served_after_kill.load(Ordering::Relaxed) > 20).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    let (failed, served) = (
        failed_after_kill.load(Ordering::Relaxed),
        served_after_kill.load(Ordering::Relaxed),
    );
    assert!(served > 20, "the client kept reading: {served}");
    assert_eq!(
        failed, 0,
        "no request started after the kill failed ({served} served); detected in {detected_in:?}, back in {back_in:?}"
    );
}

#[tokio::test]
async fn a_service_with_no_replica_answers_503_fast_and_others_carry_on() {
    let mut fleet = Fleet::start().await;
    for replica in &mut fleet.notifications {
        replica.kill().await;
    }
    let started = Instant::now();
    let response = eventually("notifications to answer 503", Duration::from_secs(5), || async {
        let response = fleet.get("/api/notifications").await;
        (response.status() == 503).then_some(response)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 well before the 3 s deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("notify-svc"),
        "{body}"
    );

    let quick = Instant::now();
    assert_eq!(fleet.get("/api/notifications").await.status(), 503);
    assert!(
        quick.elapsed() < Duration::from_millis(500),
        "no waiting once it is known: {:?}",
        quick.elapsed()
    );
    assert_eq!(
        fleet.get("/api/restaurants").await.status(),
        200,
        "restaurant-svc is unaffected"
    );
    let (restaurant_id, items) = fleet.menu().await;
    let order = serde_json::json!({"restaurantId": restaurant_id, "customer": "ana", "items": [{"menuItemId": items[0]["id"], "quantity": 1}]});
    assert_eq!(
        fleet.send_json(Method::POST, "/api/orders", order).await.status(),
        201,
        "orders go on; notifications wait in the outbox"
    );
    let health = fleet.get("/health").await;
    assert_eq!(health.status(), 503);
    assert_eq!(
        health.json::<Value>().await.unwrap()["services"]["notify-svc"]["healthy"],
        false
    );
}

#[tokio::test]
async fn the_edge_starts_before_its_replicas() {
    let fleet = Fleet::start().await;
    let store = tempfile::tempdir().unwrap();
    let url_db = format!("sqlite://{}/restaurant.db", store.path().display());
    let restaurant_svc = test_support::process::binary("restaurant-svc");
    // A second edge, whose restaurant-svc replica is not up yet, on an
    // address free when picked: should another process take it before the
    // replica starts there, both go and another address is tried.
    let mut attempts = 0;
    let (url, _late) = loop {
        attempts += 1;
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut config = fleet.edge_config();
        config.restaurant_replicas = vec![free.to_string().parse().unwrap()];
        let url = format!("{}/api/restaurants", fleet.extra_edge(config).await);
        assert_eq!(
            fleet.http.get(&url).send().await.unwrap().status(),
            503,
            "no replica yet"
        );
        let args = ["--listen", &free.to_string(), "--database-url", &url_db];
        match test_support::process::ServiceProcess::try_start(&restaurant_svc, &args).await {
            Ok(late) => break (url, late),
            Err(error) if attempts < 3 => eprintln!("trying another address: {error}"),
            Err(error) => panic!("{error}"),
        }
    };
    eventually(
        "the late replica to be picked up",
        PROBE_INTERVAL * 10,
        || async { (fleet.http.get(&url).send().await.unwrap().status() == 200).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_passed_deadline_is_504() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.deadline = Duration::from_micros(1);
    let base = fleet.extra_edge(config).await;
    eventually(
        "the short-deadline edge to see its replicas",
        Duration::from_secs(5),
        || async {
            let health = fleet.http.get(format!("{base}/health")).send().await.ok()?;
            (health.status() == 200).then_some(())
        },
    )
    .await;
    let response = fleet
        .http
        .get(format!("{base}/api/restaurants"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "deadline_exceeded", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restaurant-svc"),
        "{body}"
    );
}

#[tokio::test]
async fn orders_go_on_while_a_restaurant_replica_is_down() {
    let mut fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    // Every order-svc replica prices through its own pool of restaurant-svc
    // replicas, so losing one of them costs no order.
    fleet.restaurants[0].kill().await;
    for n in 0..10 {
        let order = serde_json::json!({
            "restaurantId": restaurant_id,
            "customer": format!("guest-{n}"),
            "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
        });
        let response = fleet.send_json(Method::POST, "/api/orders", order).await;
        assert_eq!(
            response.status(),
            201,
            "order {n}: {}",
            response.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn a_hung_lone_replica_times_out_as_504_and_stays_in_rotation() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.restaurant_replicas.truncate(1);
    // Probes far apart: only calls see the replica hang and resume.
    config.probe_interval = Duration::from_secs(30);
    config.deadline = Duration::from_millis(500);
    let url = format!("{}/api/restaurants", fleet.extra_edge(config).await);
    eventually("the edge to see its replica", Duration::from_secs(5), || async {
        (fleet.http.get(&url).send().await.ok()?.status() == 200).then_some(())
    })
    .await;

    fleet.restaurants[0].pause();
    let response = fleet.http.get(&url).send().await.unwrap();
    fleet.restaurants[0].resume();
    assert_eq!(response.status(), 504, "a call that ran out of time");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "deadline_exceeded", "{body}");
    let health: Value = fleet
        .http
        .get(url.replace("/api/restaurants", "/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replica = &health["services"]["restaurant-svc"]["replicas"][0];
    assert_eq!(
        replica["state"], "healthy",
        "slowness takes out no more than half the replicas, so never a lone one: {health}"
    );
    let after = fleet.http.get(&url).send().await.unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn order_svc_stays_in_rotation_while_restaurant_svc_is_down() {
    let mut fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    for replica in &mut fleet.restaurants {
        replica.kill().await;
    }
    // Keyed, so the edge may retry it on every order-svc replica.
    let order = serde_json::json!({
        "restaurantId": restaurant_id,
        "customer": "ana",
        "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
    });
    let response = fleet
        .http
        .post(fleet.url("/api/orders"))
        .header("idempotency-key", "k-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restaurant-svc"),
        "the cause is named: {body}"
    );

    assert_eq!(
        fleet.get("/api/orders").await.status(),
        200,
        "order-svc still answers what needs no restaurant-svc"
    );
    let health: Value = fleet.get("/health").await.json().await.unwrap();
    assert_eq!(health["services"]["order-svc"]["healthy"], true, "{health}");
}

#[tokio::test]
async fn stopping_the_edge_finishes_the_request_in_flight() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.restaurant_replicas.truncate(1);
    let edge = edge::build(config).await.expect("the edge builds");
    let url = format!("http://{}/api/restaurants", edge.local_addr());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(edge.run(stop.clone()));
    eventually("the edge to see its replica", Duration::from_secs(5), || async {
        (fleet.http.get(&url).send().await.ok()?.status() == 200).then_some(())
    })
    .await;

    // A request held up behind a hung replica while the edge is told to stop.
    fleet.restaurants[0].pause();
    let in_flight = tokio::spawn(fleet.http.get(&url).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = reqwest::Client::new().get(&url).send().await;
    assert!(refused.is_err(), "a stopping edge accepts no new connection");
    assert!(!running.is_finished(), "the edge waits for the request in flight");

    fleet.restaurants[0].resume();
    let answer = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(answer.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the edge stops once it has answered")
        .unwrap();
}
