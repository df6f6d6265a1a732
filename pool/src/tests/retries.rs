//! Which failures are retried on another replica, for every kind of call,
//! and the budget that bounds retries.

use super::support::{Behaviour, Running, TestNet, TestReplica, call, settings};
use crate::{CallKind, Outcome, PoolSettings, ProbeSettings};
use std::{
    sync::{Arc, atomic::Ordering::SeqCst},
    time::Duration,
};
use tonic::Code;

/// How replica `a:1`, picked first, fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Refuses connections (it crashed): nothing was sent.
    Unreachable,
    /// Answers with this code, marked as its dependency's or not.
    Answers(Code, bool),
    /// Never answers.
    Hangs,
}

/// What became of the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Result {
    /// Retried, and answered by `b:1`.
    Retried,
    /// Failed with this code and outcome.
    Failed(Code, Outcome),
}

async fn first_replica_fails(failure: Failure, kind: CallKind) -> Result {
    let net = TestNet::default();
    let first = net.replica("a:1");
    net.replica("b:1");
    // Probes far apart: only the call itself finds the failure.
    let settings = PoolSettings {
        probe: ProbeSettings {
            interval: Duration::from_secs(600),
            fall: 100,
            ..settings().probe
        },
        ..settings()
    };
    let pool = net.running_pool(&["a:1", "b:1"], settings).await;
    match failure {
        Failure::Unreachable => {
            first.kill();
            // Until the channel notices, a call may still go out on the
            // closed connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Failure::Answers(code, dependency) => first.behave(Behaviour::Fail(code, dependency)),
        Failure::Hangs => first.behave(Behaviour::Hang),
    }
    match call(&pool, kind, Duration::from_secs(2)).await {
        Ok(replica) => {
            assert_eq!(replica, "b:1");
            Result::Retried
        }
        Err(error) => Result::Failed(error.status().code(), error.outcome()),
    }
}

#[tokio::test(start_paused = true)]
async fn every_kind_of_call_is_retried_as_its_failure_allows() {
    use CallKind::{IdempotentWrite, Read, Write};
    use Failure::{Answers, Hangs, Unreachable};
    use Outcome::{Answered, Unknown};
    let cases = [
        // Nothing was sent: any call may go elsewhere.
        (Unreachable, &[Read, IdempotentWrite, Write][..], Result::Retried),
        // The replica itself is unavailable: safe to repeat, repeated.
        (
            Answers(Code::Unavailable, false),
            &[Read, IdempotentWrite][..],
            Result::Retried,
        ),
        // Its dependency is: another replica shares it, so no retry.
        (
            Answers(Code::Unavailable, true),
            &[Read, IdempotentWrite, Write][..],
            Result::Failed(Code::Unavailable, Answered),
        ),
        (
            Answers(Code::DeadlineExceeded, false),
            &[Read, IdempotentWrite][..],
            Result::Retried,
        ),
        // Answers about the request itself are the same everywhere.
        (
            Answers(Code::NotFound, false),
            &[Read, IdempotentWrite, Write][..],
            Result::Failed(Code::NotFound, Answered),
        ),
        (
            Answers(Code::InvalidArgument, false),
            &[Read, IdempotentWrite, Write][..],
            Result::Failed(Code::InvalidArgument, Answered),
        ),
        (
            Answers(Code::FailedPrecondition, false),
            &[Read, IdempotentWrite, Write][..],
            Result::Failed(Code::FailedPrecondition, Answered),
        ),
        (
            Answers(Code::Internal, false),
            &[Read, IdempotentWrite, Write][..],
            Result::Failed(Code::Internal, Answered),
        ),
        // The per-try timeout moves a repeatable call on.
        (Hangs, &[Read, IdempotentWrite][..], Result::Retried),
    ];
    for (failure, kinds, expected) in cases {
        for &kind in kinds {
            assert_eq!(
                first_replica_fails(failure, kind).await,
                expected,
                "{failure:?} {kind:?}"
            );
        }
    }
    // A write that may have reached its replica is never sent twice.
    for (failure, code) in [
        (Answers(Code::Unavailable, false), Code::Unavailable),
        (Answers(Code::DeadlineExceeded, false), Code::DeadlineExceeded),
    ] {
        assert_eq!(
            first_replica_fails(failure, Write).await,
            Result::Failed(code, Answered),
            "{failure:?}"
        );
    }
    assert_eq!(
        first_replica_fails(Hangs, Write).await,
        Result::Failed(Code::DeadlineExceeded, Unknown),
        "a hung write takes the whole deadline and its outcome is unknown"
    );
}

/// `calls` reads through a pool over replicas a and b, which both answer
/// a retryable failure that keeps them in rotation (DEADLINE_EXCEEDED):
/// they want more retries than the budget allows.
pub(super) async fn reads_failing_everywhere(
    calls: usize,
) -> (TestNet, Running, Arc<TestReplica>, Arc<TestReplica>) {
    let net = TestNet::default();
    let (a, b) = (net.replica("a:1"), net.replica("b:1"));
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    for replica in [&a, &b] {
        replica.behave(Behaviour::Fail(Code::DeadlineExceeded, false));
    }
    for _ in 0..calls {
        let failed = call(&pool, CallKind::Read, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(failed.status().code(), Code::DeadlineExceeded);
    }
    (net, pool, a, b)
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_budget_runs_dry() {
    let calls = 300;
    let (_net, _pool, a, b) = reads_failing_everywhere(calls).await;
    let attempts = a.calls.load(SeqCst) + b.calls.load(SeqCst);
    // Unbounded, each call would make three attempts (900). The budget
    // allows a reserve of 100 retries plus a fifth of the calls.
    assert!(
        (calls + 100..calls + 200).contains(&attempts),
        "{attempts} attempts for {calls} calls"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_may_have_taken_effect_says_so_whatever_its_last_attempt_found() {
    let net = TestNet::default();
    net.replica("a:1").behave(Behaviour::Hang);
    net.replica("b:1")
        .behave(Behaviour::Fail(Code::Unavailable, true));
    let pool = net.running_pool(&["a:1", "b:1"], settings()).await;
    // a times out (it may have stored the write), then b refuses for its
    // dependency (it did nothing).
    let failed = call(&pool, CallKind::IdempotentWrite, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(failed.status().code(), Code::Unavailable, "the last answer");
    assert_eq!(
        failed.outcome(),
        Outcome::Unknown,
        "the first attempt may have taken effect"
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_its_service_could_not_finish_may_have_taken_effect() {
    // CANCELLED (its own timeout cut the write short) and UNKNOWN (its
    // commit failed) leave the write's fate open; other answers say it was
    // not made.
    for (code, maybe) in [
        (Code::Cancelled, true),
        (Code::Unknown, true),
        (Code::Internal, false),
        (Code::NotFound, false),
        (Code::FailedPrecondition, false),
    ] {
        let net = TestNet::default();
        net.replica("a:1").behave(Behaviour::Fail(code, false));
        let pool = net.running_pool(&["a:1"], settings()).await;
        let failed = call(&pool, CallKind::Write, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(failed.status().code(), code);
        assert_eq!(failed.may_have_taken_effect(), maybe, "{code:?}");
    }
}
