//! Per-try timeouts, deadlines, and hedged reads.

use super::support::{
    Behaviour, Running, TestNet, TestReplica, call, in_rotation, out_of_rotation, settings,
};
use crate::{CallKind, OutOfRotation, Outcome, PoolSettings};
use std::{
    sync::{Arc, atomic::Ordering::SeqCst},
    time::Duration,
};
use tokio::time::Instant;
use tonic::Code;

pub(super) const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn a_hung_replica_costs_a_read_one_per_try_timeout() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Hang);
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    let started = Instant::now();
    assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "b:1");
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(250)..Duration::from_millis(260)).contains(&took),
        "the least per-try timeout, then b: {took:?}"
    );
    assert_eq!(out_of_rotation(&pool, "a:1"), Some(OutOfRotation::Ejected));
    let started = Instant::now();
    assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "b:1");
    assert!(
        started.elapsed() < Duration::from_millis(5),
        "an ejected replica gets no call"
    );
}

/// Two replicas that answered 30 reads each in 100 ms; the next read goes
/// to a, which now takes `a_takes`: who answers it, when, and how often a
/// was ejected.
async fn after_reads_of_100_ms_a_takes(a_takes: Duration) -> (String, Duration, u64) {
    let net = TestNet::default();
    let (a, b) = (net.replica("a:1"), net.replica("b:1"));
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    for replica in [&a, &b] {
        replica.behave(Behaviour::Slow(Duration::from_millis(100)));
    }
    for _ in 0..60 {
        call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    }
    a.behave(Behaviour::Slow(a_takes));
    let started = Instant::now();
    let answered_by = call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    let took = started.elapsed();
    let a = pool
        .replica_states()
        .into_iter()
        .find(|replica| replica.addr == "a:1");
    (answered_by, took, a.unwrap().ejections)
}

#[tokio::test(start_paused = true)]
async fn the_per_try_timeout_follows_the_replicas_p99() {
    // p99 about 100 ms (its bucket ends at 114.7 ms): four times that, some
    // 459 ms, is a's per-try timeout.
    let (answered_by, _, ejections) = after_reads_of_100_ms_a_takes(Duration::from_millis(400)).await;
    assert_eq!(answered_by, "a:1", "400 ms is within four times its p99");
    assert_eq!(ejections, 0);

    let (answered_by, took, ejections) = after_reads_of_100_ms_a_takes(Duration::from_millis(700)).await;
    assert_eq!(answered_by, "b:1");
    assert!(
        (Duration::from_millis(550)..Duration::from_millis(600)).contains(&took),
        "a's per-try timeout (459 ms), then b's 100 ms: {took:?}"
    );
    assert_eq!(ejections, 1);
}

#[tokio::test(start_paused = true)]
async fn a_lone_replica_has_the_whole_deadline() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Slow(Duration::from_secs(2)));
    let pool = net.running_pool(&["a:1"], settings()).await;
    assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "a:1");
    assert!(in_rotation(&pool, "a:1"));
}

#[tokio::test(start_paused = true)]
async fn a_write_that_may_not_repeat_has_the_whole_deadline() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Slow(Duration::from_secs(2)));
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    assert_eq!(call(&pool, CallKind::Write, DEADLINE).await.unwrap(), "a:1");
}

#[tokio::test(start_paused = true)]
async fn a_missed_deadline_counts_against_the_replica() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Hang);
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    let failed = call(&pool, CallKind::Write, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(failed.status().code(), Code::DeadlineExceeded);
    assert_eq!(failed.outcome(), Outcome::Unknown);
    assert_eq!(failed.served_by().unwrap(), "a:1");
    assert!(
        !failed.status().message().contains("a:1"),
        "the message names no replica: {:?}",
        failed.status()
    );
    assert_eq!(out_of_rotation(&pool, "a:1"), Some(OutOfRotation::Ejected));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_too_short_to_judge_by_ejects_nobody() {
    let net = TestNet::default();
    net.replica("a:1")
        .behave(Behaviour::Slow(Duration::from_millis(20)));
    let pool = net.running_pool(&["a:1"], settings()).await;
    let failed = call(&pool, CallKind::Read, Duration::from_millis(5))
        .await
        .unwrap_err();
    assert_eq!(failed.status().code(), Code::DeadlineExceeded, "{failed:?}");
    assert!(in_rotation(&pool, "a:1"));
    let expired = call(&pool, CallKind::Read, Duration::ZERO).await.unwrap_err();
    assert_eq!(
        expired.outcome(),
        Outcome::NotSent,
        "a passed deadline sends nothing"
    );
}

/// A pool that hedges reads over replicas a and b, which answered 40 reads
/// in 10 ms each: the pool's p95 is about 10 ms.
pub(super) async fn hedging_after_40_reads_of_10_ms() -> (TestNet, Running, Arc<TestReplica>, Arc<TestReplica>)
{
    let net = TestNet::default();
    let (a, b) = (net.replica("a:1"), net.replica("b:1"));
    let hedging = PoolSettings {
        hedge_reads: true,
        ..settings()
    };
    let pool = net.running_pool(&["a:1", "b:1"], hedging).await;
    for replica in [&a, &b] {
        replica.behave(Behaviour::Slow(Duration::from_millis(10)));
    }
    for _ in 0..40 {
        call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    }
    (net, pool, a, b)
}

#[tokio::test(start_paused = true)]
async fn a_slow_read_is_hedged_and_the_loser_cancelled() {
    let (_net, pool, a, b) = hedging_after_40_reads_of_10_ms().await;
    assert_eq!(
        a.calls.load(SeqCst) + b.calls.load(SeqCst),
        40,
        "at p95 or faster, no hedge"
    );

    // The next call goes to a, now slow: after the pool's p95 (about 10 ms)
    // it goes to b too, which answers first.
    a.behave(Behaviour::Slow(Duration::from_secs(1)));
    let completed_before = a.completed.load(SeqCst);
    let started = Instant::now();
    assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "b:1");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(25), "p95 and b's 10 ms: {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        a.completed.load(SeqCst),
        completed_before,
        "the slow attempt was cancelled, not finished"
    );
    assert!(in_rotation(&pool, "a:1"), "losing a race is no failure");

    // Writes are never hedged: one that goes to a waits out a's per-try
    // timeout (the least, 250 ms) before b answers it.
    let started = Instant::now();
    assert_eq!(
        call(&pool, CallKind::IdempotentWrite, DEADLINE).await.unwrap(),
        "b:1"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_loses_every_hedge_race_is_ejected() {
    let (_net, pool, a, _) = hedging_after_40_reads_of_10_ms().await;
    // Frozen for calls: every read sent to it is answered by a hedge.
    a.behave(Behaviour::Hang);
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "b:1");
        assert!(
            started.elapsed() < Duration::from_millis(25),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        out_of_rotation(&pool, "a:1"),
        Some(OutOfRotation::Ejected),
        "five races lost in a row"
    );
}

#[tokio::test(start_paused = true)]
async fn slowness_takes_out_no_more_than_half_the_replicas() {
    let net = TestNet::default();
    let (a, b) = (net.replica("a:1"), net.replica("b:1"));
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    a.freeze(true);
    b.behave(Behaviour::Hang);
    let failed = call(&pool, CallKind::Read, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(failed.status().code(), Code::DeadlineExceeded);
    // a timed out first and left; b, the last one in, missed the deadline
    // and stayed: when every replica is slow, ejecting them only piles the
    // load onto fewer.
    let ejections: Vec<u64> = pool
        .replica_states()
        .iter()
        .map(|replica| replica.ejections)
        .collect();
    assert_eq!(ejections, [1, 0]);
}

#[tokio::test(start_paused = true)]
async fn only_a_first_attempt_is_hedged() {
    let net = TestNet::default();
    let replicas = [net.replica("a:1"), net.replica("b:1"), net.replica("c:1")];
    let hedging = PoolSettings {
        hedge_reads: true,
        ..settings()
    };
    let pool = net.running_pool(&["a:1", "b:1", "c:1"], hedging).await;
    for replica in &replicas {
        replica.behave(Behaviour::Slow(Duration::from_millis(10)));
    }
    // 39 reads: the next one starts on a.
    for _ in 0..39 {
        call(&pool, CallKind::Read, DEADLINE).await.unwrap();
    }
    let [a, b, c] = &replicas;
    a.behave(Behaviour::Fail(Code::DeadlineExceeded, false));
    b.behave(Behaviour::Slow(Duration::from_millis(50)));
    let calls_of_c = c.calls.load(SeqCst);
    // a fails at once; the retry on b takes longer than the p95, and is not
    // hedged: the first attempt's hedge timer went with it.
    assert_eq!(call(&pool, CallKind::Read, DEADLINE).await.unwrap(), "b:1");
    assert_eq!(c.calls.load(SeqCst), calls_of_c, "no hedge to c");
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_deadline_passes_before_the_first_probes_sends_nothing() {
    let net = TestNet::default();
    net.replica("a:1");
    // Never started: no probe ever answers.
    let pool = net.pool(&["a:1"], settings());
    let failed = call(&pool, CallKind::Write, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(failed.status().code(), Code::DeadlineExceeded);
    assert_eq!(
        failed.outcome(),
        Outcome::NotSent,
        "nothing was sent: a write may be made again"
    );
}
