//! A typed call through the pool: the one place a call to a service is
//! made, from its message, its [`CallContext`] and the generated client
//! method. Retries happen here, where the request message is cheap to clone
//! (an `http::Request` body cannot be replayed; tonic#733): a retry is the
//! same call again on another replica, within what remains of the deadline.
//!
//! - Every attempt carries the request id and its own deadline
//!   ([`CallContext::request`]).
//! - An attempt that may be repeated ([`CallKind::Read`],
//!   [`CallKind::IdempotentWrite`]) waits for its replica only its per-try
//!   timeout ([`crate::settings::TryTimeout`]); then the replica is ejected
//!   and the call tried on another.
//! - A read not answered after the pool's recent p95 is hedged: sent to a
//!   second replica too, the first answer wins and the other attempt is
//!   dropped (cancelled on the wire).
//! - A call that never reached a replica is retried whatever it does; one
//!   that may be repeated also on UNAVAILABLE (not a dependency's),
//!   DEADLINE_EXCEEDED and lost connections; any other write that may have
//!   reached a service never is.
//! - Retries and hedges draw on a budget (a share of recent calls), so a
//!   failing fleet is not hammered.

use crate::{
    ReplicaPool,
    channel::{ReplicaChannel, Unanswered, Why},
    health::Observation,
    metrics::Counted,
    replica::Replica,
    rotation::{MAX_ATTEMPTS, Tried},
    span::AttemptSpan,
};
use dishpatch::{call::CallContext, wire::DEPENDENCY};
use futures_util::{StreamExt, stream::FuturesUnordered};
use std::{
    future::Future,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};
use tokio::time::Instant;
use tonic::{Code, Status};
use tower::retry::budget::Budget;

/// What a call does, which says whether it may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Changes nothing: retried, hedged when the pool hedges reads.
    Read,
    /// A write that is safe to repeat (it carries an idempotency key or
    /// event id): retried, never hedged.
    IdempotentWrite,
    /// A write that would happen twice: retried only when it never reached
    /// a replica.
    Write,
}

impl CallKind {
    fn may_repeat(self) -> bool {
        self != Self::Write
    }

    /// Whether it writes.
    pub fn writes(self) -> bool {
        self != Self::Read
    }
}

/// What is known of whether a failed call took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No replica received it: it did nothing.
    NotSent,
    /// A replica answered with the failure: it did what that status says
    /// (for every code but OK, nothing).
    Answered,
    /// It may have reached a replica and may have taken effect: it timed
    /// out, or the connection broke, before an answer came.
    Unknown,
}

/// A service's answer, and the replica that gave it.
#[derive(Debug)]
pub struct Answered<R> {
    /// The answer.
    pub message: R,
    /// The replica that answered, as `host:port`, ready for `x-served-by`.
    pub served_by: http::HeaderValue,
}

/// A call that failed: its status, and whether it may have taken effect.
#[derive(Debug)]
pub struct CallError {
    status: Status,
    outcome: Outcome,
    kind: CallKind,
    served_by: Option<http::HeaderValue>,
}

impl CallError {
    /// The failure as a gRPC status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Whether it may have taken effect.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// What the call was.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The replica of the last attempt, if one was made.
    pub fn served_by(&self) -> Option<&http::HeaderValue> {
        self.served_by.as_ref()
    }

    /// Whether it may have taken effect, as far as anyone can tell: its
    /// outcome is unknown, or the service answered that it could not tell
    /// (CANCELLED as its own timeout cut the write short, UNKNOWN as its
    /// commit failed).
    pub fn may_have_taken_effect(&self) -> bool {
        self.outcome == Outcome::Unknown
            || (self.outcome == Outcome::Answered
                && matches!(self.status.code(), Code::Cancelled | Code::Unknown))
    }

    /// Whether no replica was there to try.
    pub fn had_no_replica(&self) -> bool {
        self.outcome == Outcome::NotSent && self.served_by.is_none()
    }

    /// Whether trying again on another replica could help and is safe.
    fn worth_retrying(&self) -> bool {
        match self.outcome {
            Outcome::NotSent => !self.had_no_replica(),
            Outcome::Unknown => self.kind.may_repeat(),
            Outcome::Answered => {
                self.kind.may_repeat()
                    && match self.status.code() {
                        Code::Unavailable => self.status.metadata().get(DEPENDENCY).is_none(),
                        Code::DeadlineExceeded => true,
                        _ => false,
                    }
            }
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.status.message())
    }
}

impl std::error::Error for CallError {}

impl From<CallError> for Status {
    fn from(error: CallError) -> Self {
        error.status
    }
}

impl ReplicaPool {
    /// Makes a call through the pool: `send` sends `message` once, over the
    /// channel of the replica picked for that attempt, as a request built
    /// from `context`; the pool retries and hedges it as `kind` allows,
    /// until `context`'s deadline (or the pool's default deadline).
    ///
    /// ```ignore
    /// pool.call(&context, CallKind::Read, request, |channel, request| async move {
    ///     RestaurantServiceClient::new(channel).get_restaurant(request).await
    /// })
    /// ```
    pub async fn call<M, R, F, Fut>(
        &self,
        context: &CallContext,
        kind: CallKind,
        message: M,
        send: F,
    ) -> Result<Answered<R>, CallError>
    where
        M: Clone,
        F: Fn(ReplicaChannel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let counted = Counted::call(&self.shared.counts);
        let called = async {
            let shared = &self.shared;
            let deadline = context
                .deadline()
                .unwrap_or_else(|| Instant::now() + shared.settings.default_deadline);
            if deadline <= Instant::now() {
                return Err(shared.deadline_passed_unsent(kind));
            }
            shared.wait_until_settled(deadline).await;
            if deadline <= Instant::now() {
                // Waiting for the first probes took all the time: nothing was
                // sent, and an attempt with no time left would say otherwise.
                return Err(shared.deadline_passed_unsent(kind));
            }
            let budget = &shared.retry_budget;
            budget.deposit();

            let mut tried = Tried::default();
            let mut in_flight = FuturesUnordered::new();
            let mut last_failure: Option<CallError> = None;
            // Whether an attempt may have taken effect: what the call as a
            // whole reports, whatever its last attempt found.
            let mut maybe_took_effect = false;
            let mut hedge_at = None;
            // The replicas of the attempts in flight: the last one sent, and
            // its hedge.
            let (mut primary, mut hedge): (Option<Arc<Replica>>, Option<Arc<Replica>>) = (None, None);
            loop {
                if in_flight.is_empty() {
                    let previous = last_failure.take().map(|mut failure| {
                        if maybe_took_effect {
                            failure.outcome = Outcome::Unknown;
                        }
                        failure
                    });
                    let replica = match &previous {
                        None => shared.pick(&tried, true),
                        Some(failure) => {
                            let retry = failure.worth_retrying()
                                && tried.len() < MAX_ATTEMPTS
                                && Instant::now() < deadline;
                            let replica = retry.then(|| shared.pick(&tried, true)).flatten();
                            replica.filter(|_| shared.withdraw_from_budget())
                        }
                    };
                    let Some(replica) = replica else {
                        return Err(previous.unwrap_or_else(|| shared.no_replica(kind)));
                    };
                    if let Some(failure) = &previous {
                        tracing::debug!(service = shared.service, tried = tried.len(), code = ?failure.status.code(), "retrying on another replica");
                        shared.counts.retries.fetch_add(1, Relaxed);
                    }
                    tried.add(&replica);
                    let elsewhere = shared.has_untried(&tried);
                    // Only a first attempt is hedged.
                    hedge_at =
                        (kind == CallKind::Read && shared.settings.hedge_reads && elsewhere && tried.len() == 1)
                            .then(|| shared.latency.quantile(0.95))
                            .flatten()
                            .map(|p95| Instant::now() + p95)
                            .filter(|at| *at < deadline);
                    (primary, hedge) = (Some(replica.clone()), None);
                    let attempt = self.attempt(
                        replica.clone(),
                        elsewhere,
                        context,
                        kind,
                        message.clone(),
                        &send,
                        deadline,
                    );
                    in_flight.push(tagged(replica.id(), attempt));
                }
                let hedge_due = async {
                    match hedge_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    Some((replica_id, result)) = in_flight.next() => match result {
                        Ok(answered) => {
                            // Dropping the other attempt, if any, cancels it.
                            // When the hedge won, the replica it was sent to
                            // relieve lost the race: a miss. (A hedge that lost
                            // merely started late.)
                            let hedge_won = hedge.as_ref().is_some_and(|hedge| hedge.id() == replica_id);
                            if let Some(slow) = primary.filter(|_| hedge_won && !in_flight.is_empty()) {
                                shared.missed(&slow);
                            }
                            return Ok(answered);
                        }
                        Err(failure) => {
                            maybe_took_effect |= failure.outcome == Outcome::Unknown;
                            if primary.as_ref().is_some_and(|primary| primary.id() == replica_id) {
                                primary = None;
                            } else if hedge.as_ref().is_some_and(|hedge| hedge.id() == replica_id) {
                                hedge = None;
                            }
                            last_failure = Some(failure);
                        }
                    },
                    () = hedge_due => {
                        hedge_at = None;
                        if tried.len() < MAX_ATTEMPTS
                            && let Some(replica) = shared.pick(&tried, false)
                            && shared.withdraw_from_budget()
                        {
                            tracing::debug!(service = shared.service, replica = replica.addr(), "hedging");
                            shared.counts.hedges.fetch_add(1, Relaxed);
                            tried.add(&replica);
                            hedge = Some(replica.clone());
                            // Both attempts wait their per-try timeouts: had the
                            // first failed, the call would have gone here.
                            let attempt = self.attempt(replica.clone(), true, context, kind, message.clone(), &send, deadline);
                            in_flight.push(tagged(replica.id(), attempt));
                        }
                    }
                }
            }
        }
        .await;
        counted.ended(code_of(&called));
        called
    }

    /// One attempt on `replica`, reporting what it found to the replica's
    /// health, and counted. It waits its per-try timeout if the call may be
    /// repeated and a replica it did not try is there to repeat it on
    /// (`elsewhere`), else until the deadline.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<M, R, F, Fut>(
        &self,
        replica: Arc<Replica>,
        elsewhere: bool,
        context: &CallContext,
        kind: CallKind,
        message: M,
        send: &F,
        deadline: Instant,
    ) -> Result<Answered<R>, CallError>
    where
        F: Fn(ReplicaChannel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let counted = Counted::attempt(&replica, &self.shared.counts);
        let replica = &replica;
        let span = AttemptSpan::start(context, self.shared.service, replica);
        let context = span.context(context);
        let attempted = async {
            let shared = &self.shared;
            let started = Instant::now();
            let remaining = deadline.saturating_duration_since(started);
            // Cutting an attempt short helps only where a retry can go elsewhere.
            let try_timeout = if kind.may_repeat() && elsewhere {
                shared.try_timeout(replica).min(remaining)
            } else {
                remaining
            };
            let _in_flight = replica.start_call();
            let request = context.request(message, try_timeout);
            let sent = tokio::time::timeout(try_timeout, send(span.channel(replica), request)).await;
            let failed = |status: Status, outcome| CallError {
                status,
                outcome,
                kind,
                served_by: Some(replica.served_by().clone()),
            };
            let timed_out = || {
                let why = if try_timeout < remaining {
                    format!("no answer within the per-try timeout ({try_timeout:?})")
                } else {
                    "no answer before the deadline".to_owned()
                };
                // A replica given less than the least per-try timeout was given
                // too little to judge it by.
                if try_timeout >= shared.settings.try_timeout.min {
                    shared.eject_outlier(replica, why.clone());
                }
                tracing::debug!(
                    service = shared.service,
                    replica = replica.addr(),
                    why,
                    "attempt timed out"
                );
                // The replica is named in logs and `served_by`, not in the
                // message, which callers may show to strangers.
                let status = Status::deadline_exceeded(format!("{}: {why}", shared.service));
                Err(failed(status, Outcome::Unknown))
            };
            let status = match sent {
                Ok(Ok(response)) => {
                    replica.answered(started.elapsed(), false);
                    shared.latency.record(started.elapsed());
                    return Ok(Answered {
                        message: response.into_inner(),
                        served_by: replica.served_by().clone(),
                    });
                }
                Ok(Err(status)) => status,
                Err(_) => return timed_out(),
            };
            if let Some(source) = std::error::Error::source(&status) {
                // No answer: the connection failed or broke, or the channel's
                // own timer (the request's grpc-timeout) ran out first.
                let (why, message) = match source.downcast_ref::<Unanswered>() {
                    Some(unanswered) => (unanswered.why, unanswered.message.clone()),
                    None => (Why::Broken, status.message().to_owned()),
                };
                if why == Why::TimedOut {
                    return timed_out();
                }
                tracing::warn!(
                    service = shared.service,
                    replica = replica.addr(),
                    error = message,
                    "call failed on its connection"
                );
                shared.observe(replica, Observation::Ejected(message));
                // What went wrong in detail is logged; the caller is told what
                // it means.
                let (outcome, what) = match why {
                    Why::NotConnected => (Outcome::NotSent, "could not be reached"),
                    Why::TimedOut | Why::Broken => (Outcome::Unknown, "lost the connection before answering"),
                };
                let status = Status::unavailable(format!("{} {what}", shared.service));
                return Err(failed(status, outcome));
            }
            let server_error = matches!(status.code(), Code::Internal | Code::Unknown | Code::DataLoss);
            replica.answered(started.elapsed(), server_error);
            shared.latency.record(started.elapsed());
            if status.code() == Code::Unavailable && status.metadata().get(DEPENDENCY).is_none() {
                shared.observe(replica, Observation::Ejected("answered UNAVAILABLE".into()));
            } else if server_error {
                shared.missed(replica);
            }
            Err(failed(status, Outcome::Answered))
        }
        .await;
        let code = code_of(&attempted);
        counted.ended(code);
        span.ended(code);
        attempted
    }
}

/// The code a call or attempt ended with.
fn code_of<R>(result: &Result<R, CallError>) -> Code {
    result
        .as_ref()
        .map_or_else(|failure| failure.status.code(), |_| Code::Ok)
}

/// `attempt`'s outcome, with the id of the replica it went to.
async fn tagged<T>(replica_id: u64, attempt: impl Future<Output = T>) -> (u64, T) {
    (replica_id, attempt.await)
}

impl crate::Shared {
    /// Takes a retry or hedge from the retry budget, counting a refusal.
    fn withdraw_from_budget(&self) -> bool {
        let withdrawn = self.retry_budget.withdraw();
        if !withdrawn {
            self.counts.budget_refusals.fetch_add(1, Relaxed);
        }
        withdrawn
    }

    /// Counts a miss of `replica`, ejecting it at the end of a run.
    fn missed(&self, replica: &Arc<Replica>) {
        if replica.missed(&self.settings.ejection) {
            let why = format!(
                "{} calls in a row missed (server errors, or hedges answered first)",
                self.settings.ejection.consecutive
            );
            self.eject_outlier(replica, why);
        }
    }

    /// How long an attempt on `replica` that may be retried waits.
    fn try_timeout(&self, replica: &Replica) -> Duration {
        let settings = &self.settings.try_timeout;
        replica.latency.quantile(0.99).map_or(settings.min, |p99| {
            (p99 * settings.p99_multiple).max(settings.min)
        })
    }

    /// The failure of a call whose deadline passed before it was sent.
    fn deadline_passed_unsent(&self, kind: CallKind) -> CallError {
        CallError {
            status: Status::deadline_exceeded(format!(
                "the deadline passed before {} was called",
                self.service
            )),
            outcome: Outcome::NotSent,
            kind,
            served_by: None,
        }
    }

    /// The failure of a call that found no replica to try.
    fn no_replica(&self, kind: CallKind) -> CallError {
        CallError {
            status: Status::unavailable(format!("no healthy replica of {}", self.service)),
            outcome: Outcome::NotSent,
            kind,
            served_by: None,
        }
    }
}
