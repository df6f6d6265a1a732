//! A replica's health record: what probes and calls have found, and the
//! rules that move it in and out of rotation.
//!
//! - A replica never seen healthy joins on its first SERVING probe; one that
//!   left comes back after `rise` SERVING probes in a row.
//! - `fall` failed probes in a row take it out; NOT_SERVING (draining) at
//!   once.
//! - A call that finds it unreachable, answered UNAVAILABLE by it, or timed
//!   out on it (per-try timeout or deadline) ejects it at once; so do
//!   `consecutive` server errors within a window (outlier ejection, counted
//!   apart, see [`crate::replica`]). Only probes bring an ejected replica
//!   back.

use crate::settings::ProbeSettings;
use std::time::SystemTime;
use tokio::time::Instant;

/// What was learnt about a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observation {
    /// A probe found it SERVING.
    Serving,
    /// An open Watch brought no news: still SERVING, as far as it says. It
    /// counts as a SERVING probe, but does not bring back a replica calls
    /// ejected: only an answered probe does.
    StillServing,
    /// A probe found it NOT_SERVING: it is draining.
    NotServing,
    /// A probe failed (unreachable, timed out, or health unknown).
    ProbeFailed(String),
    /// A call found it misbehaving (unreachable, UNAVAILABLE, timed out, or
    /// a run of server errors): it is ejected.
    Ejected(String),
}

/// Why a replica is out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRotation {
    /// Not probed yet.
    Unprobed,
    /// Its probes failed.
    ProbeFailed,
    /// It said NOT_SERVING: it is draining or not ready.
    NotServing,
    /// Calls through it failed; it returns when probes succeed.
    Ejected,
}

/// A replica's health record.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    /// Why it is out of rotation, or `None` while it is in.
    pub(crate) out: Option<OutOfRotation>,
    /// When it was last probed, and what that found.
    pub(crate) last_probe: Option<(SystemTime, String)>,
    /// Failed probes or calls since the last success.
    pub(crate) consecutive_failures: u32,
    consecutive_probe_failures: u32,
    consecutive_successes: u32,
    /// Why it last left rotation.
    pub(crate) last_error: Option<String>,
    /// When it last joined the rotation (for slow start).
    pub(crate) joined_at: Option<Instant>,
    /// Whether it was ever in rotation: `rise` guards only a return.
    admitted_before: bool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            out: Some(OutOfRotation::Unprobed),
            last_probe: None,
            consecutive_failures: 0,
            consecutive_probe_failures: 0,
            consecutive_successes: 0,
            last_error: None,
            joined_at: None,
            admitted_before: false,
        }
    }
}

impl Health {
    /// Whether it is in rotation.
    pub(crate) fn in_rotation(&self) -> bool {
        self.out.is_none()
    }

    /// Whether a pool with nothing in rotation may still try it (Envoy's
    /// panic routing): it is out only because calls failed on it or
    /// because it was not probed yet, not because it said or showed that
    /// it cannot serve.
    pub(crate) fn worth_a_try_in_panic(&self) -> bool {
        matches!(self.out, Some(OutOfRotation::Unprobed | OutOfRotation::Ejected))
    }

    /// Records an observation; returns the new rotation state if it changed.
    pub(crate) fn observe(&mut self, observation: &Observation, probe: &ProbeSettings) -> Option<bool> {
        let before = self.in_rotation();
        match observation {
            Observation::StillServing if self.out == Some(OutOfRotation::Ejected) => return None,
            Observation::Serving | Observation::StillServing => {
                self.consecutive_failures = 0;
                self.consecutive_probe_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                if self.out.is_some() && (!self.admitted_before || self.consecutive_successes >= probe.rise) {
                    self.out = None;
                    self.admitted_before = true;
                    self.joined_at = Some(Instant::now());
                }
            }
            Observation::NotServing => {
                self.failed("NOT_SERVING".into());
                self.consecutive_probe_failures = self.consecutive_probe_failures.saturating_add(1);
                self.out = Some(OutOfRotation::NotServing);
            }
            Observation::ProbeFailed(why) => {
                self.failed(why.clone());
                self.consecutive_probe_failures = self.consecutive_probe_failures.saturating_add(1);
                if self.consecutive_probe_failures >= probe.fall {
                    self.out = Some(OutOfRotation::ProbeFailed);
                }
            }
            Observation::Ejected(why) => {
                self.failed(why.clone());
                if self.out.is_none() {
                    self.out = Some(OutOfRotation::Ejected);
                }
            }
        }
        if let Some(found) = match observation {
            Observation::Serving | Observation::StillServing => Some("SERVING".to_owned()),
            Observation::NotServing => Some("NOT_SERVING".to_owned()),
            Observation::ProbeFailed(why) => Some(format!("failed: {why}")),
            Observation::Ejected(_) => None,
        } {
            self.last_probe = Some((SystemTime::now(), found));
        }
        (self.in_rotation() != before).then_some(self.in_rotation())
    }

    fn failed(&mut self, why: String) {
        self.consecutive_successes = 0;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe(rise: u32, fall: u32) -> ProbeSettings {
        ProbeSettings {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            rise,
            fall,
        }
    }

    fn failed(why: &str) -> Observation {
        Observation::ProbeFailed(why.into())
    }

    #[test]
    fn rises_and_falls_on_consecutive_probes() {
        let settings = probe(2, 2);
        let mut health = Health::default();
        assert_eq!(health.out, Some(OutOfRotation::Unprobed));
        assert_eq!(
            health.observe(&Observation::Serving, &settings),
            Some(true),
            "a new replica joins at once"
        );
        assert_eq!(health.observe(&failed("timeout"), &settings), None);
        assert_eq!(
            health.observe(&Observation::Serving, &settings),
            None,
            "one failure is forgiven"
        );
        assert_eq!(health.observe(&failed("refused"), &settings), None);
        assert_eq!(health.observe(&failed("refused"), &settings), Some(false));
        assert_eq!(health.out, Some(OutOfRotation::ProbeFailed));
        assert_eq!(health.consecutive_failures, 2);
        assert_eq!(
            health.observe(&Observation::Serving, &settings),
            None,
            "coming back takes `rise` probes"
        );
        assert_eq!(health.observe(&Observation::Serving, &settings), Some(true));
    }

    #[test]
    fn draining_and_ejections_leave_at_once() {
        let settings = probe(1, 3);
        let mut health = Health::default();
        health.observe(&Observation::Serving, &settings);
        assert_eq!(health.observe(&Observation::NotServing, &settings), Some(false));
        assert!(!health.worth_a_try_in_panic(), "a draining replica is not tried");
        health.observe(&Observation::Serving, &settings);
        let ejected = Observation::Ejected("connection refused".into());
        assert_eq!(health.observe(&ejected, &settings), Some(false));
        assert_eq!(health.out, Some(OutOfRotation::Ejected));
        assert_eq!(health.last_error.as_deref(), Some("connection refused"));
        assert!(health.worth_a_try_in_panic());
        assert_eq!(
            health.observe(&ejected, &settings),
            None,
            "an ejected replica is ejected once"
        );
    }

    #[test]
    fn an_ejected_replica_returns_after_rise_probes_and_fails_like_any_other() {
        let settings = probe(2, 2);
        let mut health = Health::default();
        health.observe(&Observation::Serving, &settings);
        health.observe(&Observation::Ejected("timed out".into()), &settings);
        assert_eq!(health.observe(&failed("timeout"), &settings), None);
        assert!(
            health.worth_a_try_in_panic(),
            "one failed probe is not yet a verdict"
        );
        assert_eq!(health.observe(&failed("timeout"), &settings), None);
        assert_eq!(health.out, Some(OutOfRotation::ProbeFailed));
        assert!(!health.worth_a_try_in_panic());
        assert_eq!(health.observe(&Observation::Serving, &settings), None);
        assert_eq!(health.observe(&Observation::Serving, &settings), Some(true));
    }
}
