//! What ejects a replica that calls find misbehaving, and what does not.

use super::support::{Behaviour, TestNet, call, in_rotation, settings};
use crate::{CallKind, Ejection, PoolSettings};
use std::time::Duration;
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn an_unavailable_replica_is_ejected_at_once_but_not_for_its_dependency() {
    let net = TestNet::default();
    let a = net.replica("a:1");
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;

    a.behave(Behaviour::Fail(Code::Unavailable, true));
    let failed = call(&pool, CallKind::Read, DEADLINE).await.unwrap_err();
    assert_eq!(failed.status().code(), Code::Unavailable);
    assert!(in_rotation(&pool, "a:1"), "its dependency is down, not it");

    a.behave(Behaviour::Fail(Code::Unavailable, false));
    call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    assert!(!in_rotation(&pool, "a:1"));
}

#[tokio::test(start_paused = true)]
async fn a_run_of_server_errors_ejects() {
    let net = TestNet::default();
    let a = net.replica("a:1");
    net.replica("b:1");
    let settings = PoolSettings {
        ejection: Ejection {
            consecutive: 3,
            ..settings().ejection
        },
        ..settings()
    };
    let pool = net.running_pool(&["a:1", "b:1"], settings).await;
    a.behave(Behaviour::Fail(Code::Internal, false));
    // Calls alternate: a's answers are errors, b's good ones are b's.
    let mut errors = 0;
    for _ in 0..4 {
        if call(&pool, CallKind::Read, DEADLINE).await.is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 2);
    assert!(in_rotation(&pool, "a:1"), "two in a row");
    a.behave(Behaviour::Answer);
    call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    a.behave(Behaviour::Fail(Code::Internal, false));
    for _ in 0..6 {
        let _ = call(&pool, CallKind::Read, DEADLINE).await;
    }
    assert!(!in_rotation(&pool, "a:1"), "three in a row after a good answer");
}
