//! Envoy's panic threshold: said when few replicas are healthy; when none
//! is, replicas that only calls took out are tried rather than none.

use super::support::{Behaviour, TestNet, call, in_rotation, settings, until};
use crate::{CallKind, Panic, PoolSettings};
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn the_pool_says_when_fewer_than_the_threshold_are_healthy() {
    let net = TestNet::default();
    let replicas = [net.replica("a:1"), net.replica("b:1"), net.replica("c:1")];
    let pool = net.running_pool(&["a:1", "b:1", "c:1"], settings()).await;
    assert!(!pool.state().panicking);
    replicas[0].set_serving(ServingStatus::NotServing);
    until("one out", || pool.state().in_rotation == 2).await;
    assert!(!pool.state().panicking, "two of three is above half");
    replicas[1].set_serving(ServingStatus::NotServing);
    until("two out", || pool.state().in_rotation == 1).await;
    assert!(pool.state().panicking, "one of three is below half");
    replicas[1].set_serving(ServingStatus::Serving);
    until("back to two", || pool.state().in_rotation == 2).await;
    assert!(!pool.state().panicking);
}

/// Two replicas whose calls failed UNAVAILABLE until both were ejected,
/// and that answer again, before any probe has looked.
async fn both_ejected(settings: PoolSettings) -> (TestNet, super::support::Running) {
    let net = TestNet::default();
    let replicas = [net.replica("a:1"), net.replica("b:1")];
    let pool = net.running_pool(&["a:1", "b:1"], settings).await;
    for replica in &replicas {
        replica.behave(Behaviour::Fail(Code::Unavailable, false));
    }
    let _ = call(&pool, CallKind::Read, DEADLINE).await;
    assert!(!pool.has_healthy_replica());
    for replica in &replicas {
        replica.behave(Behaviour::Answer);
    }
    (net, pool)
}

#[tokio::test(start_paused = true)]
async fn with_none_healthy_ejected_replicas_are_tried() {
    let (_net, pool) = both_ejected(settings()).await;
    call(&pool, CallKind::Read, DEADLINE)
        .await
        .expect("an ejected replica answers");
    assert!(!in_rotation(&pool, "a:1"), "answering a call is no probe");
}

#[tokio::test(start_paused = true)]
async fn panic_routing_can_be_turned_off() {
    let settings = PoolSettings {
        panic: Panic {
            route_when_none_healthy: false,
            ..settings().panic
        },
        ..settings()
    };
    let (_net, pool) = both_ejected(settings).await;
    let failed = call(&pool, CallKind::Read, DEADLINE).await.unwrap_err();
    assert!(failed.had_no_replica(), "{failed:?}");
}

#[tokio::test(start_paused = true)]
async fn draining_replicas_are_never_tried() {
    let net = TestNet::default();
    let replicas = [net.replica("a:1"), net.replica("b:1")];
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    for replica in &replicas {
        replica.set_serving(ServingStatus::NotServing);
    }
    until("both out", || !pool.has_healthy_replica()).await;
    let failed = call(&pool, CallKind::Read, DEADLINE).await.unwrap_err();
    assert!(failed.had_no_replica());
    assert_eq!(failed.status().code(), Code::Unavailable);
    assert!(
        failed
            .status()
            .message()
            .contains("no healthy replica of test-svc")
    );
}
