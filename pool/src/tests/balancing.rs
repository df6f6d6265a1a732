//! Where calls go: round-robin, weighted, p2c, and the ramp of a replica
//! that rejoins.

use super::support::{Behaviour, TestNet, call, in_rotation, settings, until};
use crate::{CallKind, PoolSettings, Strategy};
use std::{collections::HashMap, time::Duration};
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(5);

async fn spread(pool: &crate::ReplicaPool, calls: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..calls {
        let replica = call(pool, CallKind::Read, DEADLINE).await.expect("answered");
        *counts.entry(replica).or_default() += 1;
    }
    counts
}

fn with_strategy(strategy: Strategy) -> PoolSettings {
    PoolSettings {
        strategy,
        ..settings()
    }
}

#[tokio::test(start_paused = true)]
async fn round_robin_alternates_exactly() {
    let net = TestNet::default();
    net.replica("a:1");
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(call(&pool, CallKind::Read, DEADLINE).await.unwrap());
    }
    assert_eq!(order, ["a:1", "b:1", "a:1", "b:1"]);
}

#[tokio::test(start_paused = true)]
async fn weighted_round_robin_follows_the_weights() {
    let net = TestNet::default();
    net.replica("a:1");
    net.replica("b:1");
    let pool = net
        .running_pool(&["a:1=3", "b:1"], with_strategy(Strategy::Weighted))
        .await;
    let counts = spread(&pool, 40).await;
    assert_eq!((counts["a:1"], counts["b:1"]), (30, 10));
}

#[tokio::test(start_paused = true)]
async fn p2c_sends_calls_to_the_faster_replica() {
    let net = TestNet::default();
    net.replica("fast:1")
        .behave(Behaviour::Slow(Duration::from_millis(1)));
    net.replica("slow:1")
        .behave(Behaviour::Slow(Duration::from_millis(50)));
    let pool = net
        .running_pool(&["fast:1", "slow:1"], with_strategy(Strategy::P2c))
        .await;
    let counts = spread(&pool, 100).await;
    assert!(counts["fast:1"] >= 95, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_rejoins_ramps_up_its_share() {
    let net = TestNet::default();
    net.replica("steady:1");
    let rejoining = net.replica("rejoining:1");
    let ramp = Duration::from_secs(20);
    let pool = net
        .running_pool(
            &["steady:1", "rejoining:1"],
            PoolSettings {
                slow_start: ramp,
                ..settings()
            },
        )
        .await;
    // Past the pool's start, whose first members do not ramp.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(spread(&pool, 100).await["rejoining:1"], 50);

    rejoining.behave(Behaviour::Fail(Code::Unavailable, false));
    spread(&pool, 2).await;
    assert!(!in_rotation(&pool, "rejoining:1"), "UNAVAILABLE ejects");
    rejoining.behave(Behaviour::Answer);
    until("probes to bring it back", || in_rotation(&pool, "rejoining:1")).await;
    fastrand::seed(11);
    let share = |counts: HashMap<String, usize>| {
        *counts.get("rejoining:1").unwrap_or(&0) as f64 / counts.values().sum::<usize>() as f64
    };
    let first = share(spread(&pool, 1000).await);
    assert!(first < 0.15, "a tenth of a full share at first: {first}");
    tokio::time::sleep(ramp / 2).await;
    let half = share(spread(&pool, 1000).await);
    assert!((0.25..0.42).contains(&half), "half way: {half}");
    tokio::time::sleep(ramp / 2).await;
    assert_eq!(share(spread(&pool, 100).await), 0.5, "ramped: round-robin again");
}
