//! How requests spread over replicas.

use super::{A_RESTAURANT, Fleet, FleetOptions, served_by};
use dishpatch_pool::Strategy;
use std::{collections::HashMap, time::Duration};
use test_support::eventually;

async fn spread(fleet: &Fleet, requests: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..requests {
        let response = fleet.get(A_RESTAURANT).await;
        assert_eq!(response.status(), 200);
        *counts.entry(served_by(&response)).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn round_robin_splits_sequential_reads_exactly() {
    let fleet = Fleet::start_with(FleetOptions {
        hedge_reads: false,
        ..Default::default()
    })
    .await;
    let counts = spread(&fleet, 100).await;
    let replicas: Vec<String> = fleet.restaurants.iter().map(|r| r.addr().to_string()).collect();
    assert_eq!(counts.len(), 2, "{counts:?}");
    for replica in &replicas {
        assert_eq!(counts[replica], 50, "{counts:?}");
    }
}

#[tokio::test]
async fn weighted_round_robin_follows_the_weights() {
    let options = FleetOptions {
        restaurant_balance: Strategy::Weighted,
        restaurant_weights: vec![3, 1],
        hedge_reads: false,
        ..Default::default()
    };
    let fleet = Fleet::start_with(options).await;
    let counts = spread(&fleet, 40).await;
    assert_eq!(counts[&fleet.restaurants[0].addr().to_string()], 30, "{counts:?}");
    assert_eq!(counts[&fleet.restaurants[1].addr().to_string()], 10, "{counts:?}");
}

#[tokio::test]
async fn p2c_serves_from_the_pool_and_survives_a_lost_replica() {
    let options = FleetOptions {
        restaurant_balance: Strategy::P2c,
        ..Default::default()
    };
    let mut fleet = Fleet::start_with(options).await;
    let counts = spread(&fleet, 20).await;
    assert_eq!(counts.values().sum::<usize>(), 20);
    fleet.restaurants[0].kill().await;
    let survivor = fleet.restaurants[1].addr().to_string();
    let after = spread(&fleet, 20).await;
    assert_eq!(after.get(&survivor), Some(&20), "{after:?}");
}

#[tokio::test]
async fn a_draining_replica_gets_no_new_requests() {
    // Draining lasts long enough to be seen: NOT_SERVING, yet still up.
    let fleet = Fleet::start_with(FleetOptions {
        stack: test_support::StackOptions {
            drain: "5s",
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (draining, staying) = (
        fleet.restaurants[0].addr().to_string(),
        fleet.restaurants[1].addr().to_string(),
    );
    fleet.restaurants[0].terminate();
    eventually(
        "the draining replica to leave rotation",
        Duration::from_secs(2),
        || async {
            let states = fleet.restaurant_states().await;
            states
                .iter()
                .any(|(addr, state)| *addr == draining && state == "down")
                .then_some(())
        },
    )
    .await;
    let counts = spread(&fleet, 20).await;
    assert_eq!(counts.get(&staying), Some(&20), "{counts:?}");
}
