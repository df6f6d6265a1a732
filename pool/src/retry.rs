//! Retries at the level of typed calls, where the request message is cheap
//! to clone (an `http::Request` body cannot be replayed; tonic#733): a
//! retry is the same call again through the pool, which picks the next
//! replica, within what remains of the deadline.
//!
//! A call that never reached a replica is retried whatever it does; an
//! idempotent one (a read, or a write made safe to repeat by an idempotency
//! key or event id) also on UNAVAILABLE and DEADLINE_EXCEEDED; any other
//! write that may have reached a service never is. Retries draw on a budget
//! (a share of recent calls), so a failing fleet is not hammered.

use super::{
    ReplicaPool,
    endpoint::{had_no_replica, never_reached},
};
use std::{future::Future, time::Duration};
use tokio::time::Instant;
use tonic::{Code, Status};
use tower::retry::budget::Budget;

/// The most attempts one call makes.
const MAX_ATTEMPTS: usize = 3;

/// Whether a call may safely be made twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A read, or a write that is safe to repeat (it carries an idempotency
    /// key or event id): retried on UNAVAILABLE and DEADLINE_EXCEEDED too.
    Idempotent,
    /// A write that would happen twice: retried only when it never reached
    /// a replica.
    NotIdempotent,
}

impl ReplicaPool {
    /// Makes a call through this pool: `attempt` sends it once, given the
    /// time that remains (to send as the call's timeout), and is run again
    /// while the failure is worth retrying, the budget allows, attempts
    /// remain and `deadline` has not passed.
    pub async fn call<T, F, Fut>(
        &self,
        kind: CallKind,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        if !*self.shared.settled.borrow() {
            // Just started: wait (within the deadline) for the first probes
            // rather than answer "no healthy replica" before looking.
            let mut settled = self.shared.settled.subscribe();
            let _ = tokio::time::timeout_at(deadline, settled.wait_for(|settled| *settled)).await;
        }
        let budget = &self.shared.retry_budget;
        budget.deposit();
        for attempts in 1.. {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.deadline_passed());
            }
            let status = match tokio::time::timeout(remaining, attempt(remaining)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) => status,
                Err(_) => self.deadline_passed(),
            };
            let worth_retrying = !had_no_replica(&status)
                && (never_reached(&status)
                    || (kind == CallKind::Idempotent
                        && matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)));
            if !worth_retrying || attempts >= MAX_ATTEMPTS || Instant::now() >= deadline || !budget.withdraw()
            {
                return Err(status);
            }
            tracing::debug!(service = self.shared.service, attempts, code = ?status.code(), "retrying on another replica");
        }
        unreachable!("the loop returns")
    }

    fn deadline_passed(&self) -> Status {
        Status::deadline_exceeded(format!(
            "{} did not answer before the deadline",
            self.shared.service
        ))
    }
}
