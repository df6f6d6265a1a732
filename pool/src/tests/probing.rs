//! Probes move replicas in and out: Watch where served, Check polling
//! where not, through the rise and fall thresholds; and only probes bring
//! back a replica that calls ejected.

use super::support::{Behaviour, TestNet, call, in_rotation, out_of_rotation, settings, until};
use crate::{CallKind, OutOfRotation, PoolSettings};
use std::time::Duration;
use tokio::time::Instant;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test(start_paused = true)]
async fn a_draining_replica_leaves_at_once_and_returns_after_rise_probes() {
    let net = TestNet::default();
    let draining = net.replica("a:1");
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;

    draining.set_serving(ServingStatus::NotServing);
    until("Watch to take it out", || !in_rotation(&pool, "a:1")).await;
    assert_eq!(out_of_rotation(&pool, "a:1"), Some(OutOfRotation::NotServing));
    for _ in 0..4 {
        assert_eq!(
            call(&pool, CallKind::Read, Duration::from_secs(1)).await.unwrap(),
            "b:1"
        );
    }

    draining.set_serving(ServingStatus::Serving);
    let back = Instant::now();
    until("two SERVING probes to bring it back", || {
        in_rotation(&pool, "a:1")
    })
    .await;
    assert!(back.elapsed() < Duration::from_secs(1), "{:?}", back.elapsed());
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_replica_falls_after_fall_failed_probes_and_rises_again() {
    let net = TestNet::default();
    let crashing = net.replica("a:1");
    net.replica("b:1");
    let pool = net
        .running_pool(
            &["a:1", "b:1"],
            PoolSettings {
                probe: crate::ProbeSettings {
                    fall: 3,
                    ..settings().probe
                },
                ..settings()
            },
        )
        .await;

    crashing.kill();
    until("three failed probes to take it out", || {
        !in_rotation(&pool, "a:1")
    })
    .await;
    assert_eq!(out_of_rotation(&pool, "a:1"), Some(OutOfRotation::ProbeFailed));
    let state = pool
        .replica_states()
        .into_iter()
        .find(|r| r.addr == "a:1")
        .unwrap();
    assert!(state.consecutive_failures >= 3, "{state:?}");
    assert!(state.last_probe.unwrap().1.starts_with("failed"));

    crashing.revive();
    until("probes to bring it back", || in_rotation(&pool, "a:1")).await;
}

#[tokio::test(start_paused = true)]
async fn check_is_polled_where_watch_is_unimplemented() {
    let net = TestNet::default();
    let replica = net.check_only_replica("a:1");
    let pool = net.running_pool(&["a:1"], settings()).await;
    replica.set_serving(ServingStatus::NotServing);
    until("a NOT_SERVING Check to take it out", || {
        !pool.has_healthy_replica()
    })
    .await;
    let state = &pool.replica_states()[0];
    assert_eq!(state.last_probe.as_ref().unwrap().1, "NOT_SERVING");
    replica.set_serving(ServingStatus::Serving);
    until("two SERVING Checks to bring it back", || {
        pool.has_healthy_replica()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn only_a_probe_brings_back_a_replica_calls_ejected() {
    let net = TestNet::default();
    let stuck = net.replica("a:1");
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;

    // Calls hang on it while its health, and its open Watch, say SERVING.
    stuck.behave(Behaviour::Hang);
    call(&pool, CallKind::Read, Duration::from_secs(5)).await.unwrap();
    assert_eq!(out_of_rotation(&pool, "a:1"), Some(OutOfRotation::Ejected));
    // Frozen, it answers no probe either: it stays out.
    stuck.freeze(true);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        !in_rotation(&pool, "a:1"),
        "a Watch that says nothing new is no probe"
    );

    stuck.freeze(false);
    stuck.behave(Behaviour::Answer);
    until("answered Checks to bring it back", || in_rotation(&pool, "a:1")).await;
}

/// A call that waits for the first probes finds in rotation the replica
/// whose probe settled the pool: the rotation is rebuilt before waiting
/// calls wake. On two threads, where the call may run while the prober is
/// still between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_the_first_probe_finds_the_replica_it_brought() {
    for _ in 0..300 {
        let net = TestNet::default();
        net.replica("a:1");
        let pool = net.pool(&["a:1"], settings());
        let stop = tokio_util::sync::CancellationToken::new();
        let probing = pool.spawn(stop.clone());
        let answered = call(&pool, CallKind::Read, Duration::from_secs(5)).await;
        assert_eq!(answered.unwrap(), "a:1");
        stop.cancel();
        probing.await.unwrap();
    }
}
