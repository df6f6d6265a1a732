//! What pools count, as a Prometheus scrape reads it.

use super::{
    retries::reads_failing_everywhere,
    support::{Behaviour, TestNet, call, settings},
    timeouts::{DEADLINE, hedging_after_40_reads_of_10_ms},
};
use crate::{CallKind, PoolMetrics, ReplicaPool};
use std::{sync::atomic::Ordering::SeqCst, time::Duration};

/// The pool's metrics as Prometheus would scrape them.
fn scrape(pool: &ReplicaPool, name_replicas: bool) -> String {
    let mut registry = dishpatch::metrics::registry();
    registry.register_collector(Box::new(PoolMetrics::new(vec![pool.clone()], name_replicas)));
    dishpatch::metrics::render(&registry)
}

/// The value of `series` (its name and labels, as exposed) in `text`.
fn value(text: &str, series: &str) -> usize {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} in\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn calls_attempts_retries_and_the_budget_s_refusals_are_counted() {
    let calls = 300;
    let (_net, pool, a, b) = reads_failing_everywhere(calls).await;
    let (to_a, to_b) = (a.calls.load(SeqCst), b.calls.load(SeqCst));

    let text = scrape(&pool, true);
    let service = r#"service="test-svc""#;
    let failed = format!(r#"dishpatch_pool_calls_total{{{service},code="DEADLINE_EXCEEDED"}}"#);
    assert_eq!(value(&text, &failed), calls);
    let attempts_on = |replica: &str| {
        let series = format!(
            r#"dishpatch_pool_attempts_total{{{service},replica="{replica}",code="DEADLINE_EXCEEDED"}}"#
        );
        value(&text, &series)
    };
    assert_eq!((attempts_on("a:1"), attempts_on("b:1")), (to_a, to_b));
    let retries = value(&text, &format!("dishpatch_pool_retries_total{{{service}}}"));
    assert_eq!(retries, to_a + to_b - calls, "every attempt after a call's first");
    let refused = value(
        &text,
        &format!("dishpatch_pool_retry_budget_refusals_total{{{service}}}"),
    );
    // Each call wanted two retries, and ended at its first refusal: one
    // refused made at most one retry, one not refused made both.
    assert!(refused > 0, "the budget ran dry");
    let full = 2 * (calls - refused);
    assert!(
        (full..=full + refused).contains(&retries),
        "{retries} retries, {refused} refused"
    );
    assert_eq!(
        value(
            &text,
            &format!("dishpatch_pool_replicas_in_rotation{{{service}}}")
        ),
        2
    );

    // Unnamed, the replicas' counts add up per service.
    let text = scrape(&pool, false);
    assert!(!text.contains("a:1"), "{text}");
    let attempts = format!(r#"dishpatch_pool_attempts_total{{{service},code="DEADLINE_EXCEEDED"}}"#);
    assert_eq!(value(&text, &attempts), to_a + to_b);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_and_the_attempt_it_cancelled_are_counted() {
    let (_net, pool, a, _b) = hedging_after_40_reads_of_10_ms().await;
    a.behave(Behaviour::Slow(Duration::from_secs(1)));
    call(&pool, CallKind::Read, DEADLINE).await.unwrap();

    let text = scrape(&pool, true);
    assert_eq!(
        value(&text, r#"dishpatch_pool_hedges_total{service="test-svc"}"#),
        1
    );
    let cancelled = r#"dishpatch_pool_attempts_total{service="test-svc",replica="a:1",code="CANCELLED"}"#;
    assert_eq!(value(&text, cancelled), 1, "the slow attempt, dropped");
    assert_eq!(
        value(
            &text,
            r#"dishpatch_pool_calls_total{service="test-svc",code="OK"}"#
        ),
        41
    );
}

#[tokio::test(start_paused = true)]
async fn an_ejection_and_probes_are_counted() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Hang);
    net.replica("b:1");
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    call(&pool, CallKind::Read, DEADLINE).await.unwrap();

    let text = scrape(&pool, true);
    let a = r#"service="test-svc",replica="a:1""#;
    assert_eq!(value(&text, &format!("dishpatch_pool_ejections_total{{{a}}}")), 1);
    let timed_out = format!(r#"dishpatch_pool_attempts_total{{{a},code="DEADLINE_EXCEEDED"}}"#);
    assert_eq!(value(&text, &timed_out), 1);
    assert_eq!(
        value(&text, &format!("dishpatch_pool_replica_in_rotation{{{a}}}")),
        0
    );
    let probes = format!(r#"dishpatch_pool_probes_total{{{a},result="serving"}}"#);
    assert!(value(&text, &probes) >= 1, "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_call_its_caller_dropped_is_counted_as_cancelled() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Hang);
    let pool = net.running_pool(&["a:1"], settings()).await;
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), call(&pool, CallKind::Read, DEADLINE)).await;
    assert!(gave_up.is_err(), "the replica hangs");

    let text = scrape(&pool, true);
    let cancelled = r#"dishpatch_pool_calls_total{service="test-svc",code="CANCELLED"}"#;
    assert_eq!(value(&text, cancelled), 1);
    let attempt = r#"dishpatch_pool_attempts_total{service="test-svc",replica="a:1",code="CANCELLED"}"#;
    assert_eq!(value(&text, attempt), 1);
}
