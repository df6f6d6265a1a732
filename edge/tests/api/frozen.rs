//! A replica frozen with SIGSTOP (stays connected, answers nothing, then
//! resumes with whatever it had queued) under load through the edge: reads
//! go on within the per-try timeout, and every order's outcome is what its
//! client was told.

use super::{A_RESTAURANT, Fleet};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// The edge's least per-try timeout (its default).
const TRY_TIMEOUT: Duration = Duration::from_millis(250);
/// How long the replica stays frozen.
const FROZEN_FOR: Duration = Duration::from_secs(2);

/// Runs `work` in `workers` loops until `stop`; returns what they did.
fn spawn_loops<T, F, Fut>(
    workers: usize,
    stop: &Arc<AtomicBool>,
    work: F,
) -> Vec<tokio::task::JoinHandle<Vec<T>>>
where
    T: Send + 'static,
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    (0..workers)
        .map(|worker| {
            let (stop, work) = (stop.clone(), work.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    done.push(work(worker, n).await);
                }
                done
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_restaurant_replica_costs_no_read() {
    let fleet = Fleet::start().await;
    let frozen = fleet.restaurants[0].addr().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let freeze_started: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (http, url) = (fleet.http.clone(), fleet.url(A_RESTAURANT));
    let readers = spawn_loops(4, &stop, {
        let freeze_started = freeze_started.clone();
        move |_, _| {
            let (http, url, freeze_started) = (http.clone(), url.clone(), freeze_started.clone());
            async move {
                let started = Instant::now();
                let status = http.get(&url).send().await.map(|response| response.status());
                let during_freeze = freeze_started.lock().unwrap().is_some_and(|at| started >= at);
                (status.ok(), started.elapsed(), during_freeze)
            }
        }
    });

    // Reads teach the edge the replicas' latencies, then one freezes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.restaurants[0].pause();
    *freeze_started.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(FROZEN_FOR / 2).await;
    let states = fleet.restaurant_states().await;
    assert!(
        states
            .iter()
            .any(|(addr, state)| *addr == frozen && state == "down"),
        "the edge took the frozen replica out: {states:?}"
    );
    tokio::time::sleep(FROZEN_FOR / 2).await;
    fleet.restaurants[0].resume();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut reads = Vec::new();
    for reader in readers {
        reads.extend(reader.await.unwrap());
    }
    let failed: Vec<_> = reads
        .iter()
        .filter(|(status, ..)| *status != Some(StatusCode::OK))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} reads failed: {failed:?}",
        failed.len(),
        reads.len()
    );
    let during: Vec<Duration> = reads
        .iter()
        .filter(|(_, _, during)| *during)
        .map(|(_, took, _)| *took)
        .collect();
    assert!(
        during.len() > 20,
        "the readers read on during the freeze: {}",
        during.len()
    );
    let slowest = during.iter().max().unwrap();
    assert!(
        *slowest < TRY_TIMEOUT + Duration::from_millis(250),
        "no read waited much beyond one per-try timeout: {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_order_replica_stores_no_order_its_client_was_told_failed() {
    let fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    let stop = Arc::new(AtomicBool::new(false));
    let (http, url) = (fleet.http.clone(), fleet.url("/api/orders"));
    // Orders without an Idempotency-Key, each for a customer of its own.
    let placers = spawn_loops(4, &stop, move |worker, n| {
        let (http, url) = (http.clone(), url.clone());
        let customer = format!("frozen-{worker}-{n}");
        let order = json!({
            "restaurantId": restaurant_id,
            "customer": customer,
            "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
        });
        async move {
            let answer = http.post(&url).json(&order).send().await.unwrap();
            let status = answer.status();
            let body: Value = answer.json().await.unwrap();
            (customer, status, body)
        }
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    fleet.orders[0].pause();
    tokio::time::sleep(FROZEN_FOR).await;
    fleet.orders[0].resume();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut placed = Vec::new();
    for placer in placers {
        placed.extend(placer.await.unwrap());
    }
    // The resumed replica runs what it had queued before it looks again.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (mut acknowledged, mut failed) = (0, 0);
    for (customer, status, body) in &placed {
        let stored = fleet.get_json(&format!("/api/orders?customer={customer}")).await["orders"]
            .as_array()
            .unwrap()
            .len();
        if *status == StatusCode::CREATED {
            acknowledged += 1;
            assert_eq!(stored, 1, "{customer}'s acknowledged order is stored once");
        } else {
            failed += 1;
            let code = &body["error"]["code"];
            assert_ne!(*status, StatusCode::SERVICE_UNAVAILABLE, "{customer}: {body}");
            if code == "outcome_unknown" {
                assert!(stored <= 1, "{customer}: {body}");
            } else {
                assert_eq!(
                    stored, 0,
                    "{customer} was told it failed ({body}), yet it is stored"
                );
            }
        }
    }
    assert!(
        acknowledged > 10,
        "orders went on: {acknowledged} placed, {failed} failed"
    );
    eprintln!("{acknowledged} orders placed, {failed} failed");
}
