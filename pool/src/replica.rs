//! One replica of a service as the edge sees it: its address and channel,
//! its health as probes and calls have found it, and counters for `/health`.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};
use tonic::transport::{Channel, Endpoint};

/// How many consecutive probe results move a replica in or out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Successful probes in a row that bring a replica (back) into rotation.
    pub rise: u32,
    /// Failed probes in a row that take a replica out of rotation.
    pub fall: u32,
}

/// What was learnt about a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observation {
    /// A probe found it SERVING.
    Serving,
    /// A probe found it NOT_SERVING: it is draining, so it leaves at once.
    NotServing,
    /// A probe failed (unreachable, timed out, or health unknown).
    ProbeFailed(String),
    /// A call through it failed with a transport error or UNAVAILABLE: it
    /// leaves at once, and only probes bring it back.
    CallFailed(String),
}

/// A replica's health record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    /// Whether it is in rotation.
    pub in_rotation: bool,
    /// When it was last probed, and what that found.
    pub last_probe: Option<(SystemTime, String)>,
    /// Failed probes or calls since the last success.
    pub consecutive_failures: u32,
    consecutive_successes: u32,
    /// Why it last left rotation.
    pub last_error: Option<String>,
    /// Whether it was ever in rotation: a replica never seen healthy joins
    /// on its first SERVING, and `rise` guards only a return after failure.
    admitted_before: bool,
}

impl Health {
    /// Records an observation; returns the new rotation state if it changed.
    pub(crate) fn observe(&mut self, observation: &Observation, thresholds: Thresholds) -> Option<bool> {
        let before = self.in_rotation;
        match observation {
            Observation::Serving => {
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if !self.admitted_before || self.consecutive_successes >= thresholds.rise {
                    self.in_rotation = true;
                    self.admitted_before = true;
                }
            }
            Observation::NotServing => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.in_rotation = false;
                self.last_error = Some("NOT_SERVING".into());
            }
            Observation::ProbeFailed(why) => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= thresholds.fall {
                    self.in_rotation = false;
                }
                self.last_error = Some(why.clone());
            }
            Observation::CallFailed(why) => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.in_rotation = false;
                self.last_error = Some(why.clone());
            }
        }
        if matches!(
            observation,
            Observation::Serving | Observation::NotServing | Observation::ProbeFailed(_)
        ) {
            let found = match observation {
                Observation::Serving => "SERVING".to_owned(),
                Observation::NotServing => "NOT_SERVING".to_owned(),
                Observation::ProbeFailed(why) => format!("failed: {why}"),
                Observation::CallFailed(_) => unreachable!("calls are not probes"),
            };
            self.last_probe = Some((SystemTime::now(), found));
        }
        (self.in_rotation != before).then_some(self.in_rotation)
    }
}

/// One replica.
#[derive(Debug)]
pub(crate) struct Replica {
    addr: String,
    served_by: http::HeaderValue,
    weight: u32,
    channel: Channel,
    health: Mutex<Health>,
    served: AtomicU64,
}

impl Replica {
    /// A replica at `addr` (`host:port`), with a channel that connects on
    /// first use; HTTP/2 keep-alive pings every `keepalive` find a dead peer
    /// even on an idle connection.
    pub(crate) fn new(
        addr: &str,
        weight: u32,
        connect_timeout: Duration,
        keepalive: Duration,
    ) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| format!("replica address {addr:?}: {error}"))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(keepalive)
            .keep_alive_timeout(connect_timeout)
            .keep_alive_while_idle(true);
        Ok(Self {
            served_by: http::HeaderValue::from_str(addr)
                .map_err(|_| format!("replica address {addr:?} is not ASCII"))?,
            addr: addr.to_owned(),
            weight,
            channel: endpoint.connect_lazy(),
            health: Mutex::new(Health::default()),
            served: AtomicU64::new(0),
        })
    }

    /// `host:port`, as configured.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The address as an `x-served-by` header value.
    pub(crate) fn served_by(&self) -> &http::HeaderValue {
        &self.served_by
    }

    /// Its share in weighted round-robin.
    pub(crate) fn weight(&self) -> u32 {
        self.weight
    }

    /// Its channel (cheap to clone; all clones share the connection).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A copy of its health record.
    pub(crate) fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    /// Records an observation; returns the new rotation state if it changed.
    pub(crate) fn observe(&self, observation: &Observation, thresholds: Thresholds) -> Option<bool> {
        self.health
            .lock()
            .expect("health lock")
            .observe(observation, thresholds)
    }

    /// Counts a call it answered.
    pub(crate) fn count_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls it has answered.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISE_2_FALL_2: Thresholds = Thresholds { rise: 2, fall: 2 };

    #[test]
    fn rises_and_falls_on_consecutive_probes() {
        let mut health = Health::default();
        assert_eq!(
            health.observe(&Observation::Serving, RISE_2_FALL_2),
            Some(true),
            "a new replica joins at once"
        );
        assert_eq!(
            health.observe(&Observation::ProbeFailed("timeout".into()), RISE_2_FALL_2),
            None
        );
        assert_eq!(
            health.observe(&Observation::Serving, RISE_2_FALL_2),
            None,
            "one failure is forgiven"
        );
        assert_eq!(
            health.observe(&Observation::ProbeFailed("refused".into()), RISE_2_FALL_2),
            None
        );
        assert_eq!(
            health.observe(&Observation::ProbeFailed("refused".into()), RISE_2_FALL_2),
            Some(false)
        );
        assert_eq!(health.consecutive_failures, 2);
        assert_eq!(
            health.observe(&Observation::Serving, RISE_2_FALL_2),
            None,
            "coming back takes `rise` probes"
        );
        assert_eq!(health.observe(&Observation::Serving, RISE_2_FALL_2), Some(true));
    }

    #[test]
    fn draining_and_failed_calls_leave_at_once() {
        let mut health = Health::default();
        health.observe(&Observation::Serving, Thresholds { rise: 1, fall: 3 });
        assert_eq!(
            health.observe(&Observation::NotServing, Thresholds { rise: 1, fall: 3 }),
            Some(false)
        );
        health.observe(&Observation::Serving, Thresholds { rise: 1, fall: 3 });
        let failed = Observation::CallFailed("connection refused".into());
        assert_eq!(
            health.observe(&failed, Thresholds { rise: 1, fall: 3 }),
            Some(false)
        );
        assert_eq!(health.last_error.as_deref(), Some("connection refused"));
    }
}
