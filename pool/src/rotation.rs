//! The replicas in rotation, as one snapshot that calls read without a
//! lock (the pool swaps in a new one when a replica joins or leaves), and
//! the pickers that choose a replica for an attempt:
//!
//! - round-robin: each replica in turn;
//! - weighted: each as often as its weight, interleaved smoothly (nginx's
//!   smooth weighted round-robin: weights 5, 1, 1 give a a b a c a a);
//! - p2c: the less loaded of two picked at random (Mitzenmacher's power of
//!   two choices), load being calls in flight times the replica's peak-EWMA
//!   latency, as tower's and linkerd's balancers weigh it;
//! - while a replica that just joined is ramping up (slow start), a pick
//!   at random weighted by each one's share, whatever the strategy.
//!
//! A pick skips the replicas this call already tried, so a retry or a
//! hedge goes elsewhere whenever there is an elsewhere.

use crate::{replica::Replica, settings::Strategy};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// The most replicas one call tries (attempts and hedges together).
pub(crate) const MAX_ATTEMPTS: usize = 3;

/// A replica's least share of calls when it starts its ramp.
const RAMP_START_SHARE: f64 = 0.1;

/// The replicas a call has tried.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tried {
    ids: [u64; MAX_ATTEMPTS],
    len: usize,
}

impl Tried {
    pub(crate) fn add(&mut self, replica: &Replica) {
        if self.len < MAX_ATTEMPTS {
            self.ids[self.len] = replica.id();
            self.len += 1;
        }
    }

    pub(crate) fn contains(&self, replica: &Replica) -> bool {
        self.ids[..self.len].contains(&replica.id())
    }

    /// How many replicas were tried.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A replica in rotation.
#[derive(Debug, Clone)]
struct Member {
    replica: Arc<Replica>,
    /// When its slow-start ramp began, if it has one.
    ramp_from: Option<Instant>,
}

/// One snapshot of the rotation.
#[derive(Debug, Default)]
pub(crate) struct Rotation {
    /// The order of turns: each replica once (round-robin), or as many
    /// times as its weight, interleaved (weighted).
    turns: Vec<Arc<Replica>>,
    members: Vec<Member>,
    strategy: Option<Strategy>,
    /// How long a ramp takes.
    ramp: Duration,
    /// When the last ramp ends.
    ramps_until: Option<Instant>,
}

impl Rotation {
    /// The rotation of `members` (each with when its ramp began, if it
    /// ramps), picked by `strategy`, ramping over `ramp`.
    pub(crate) fn new(
        strategy: Strategy,
        members: Vec<(Arc<Replica>, Option<Instant>)>,
        ramp: Duration,
    ) -> Self {
        let members: Vec<Member> = members
            .into_iter()
            .map(|(replica, ramp_from)| Member {
                replica,
                ramp_from: ramp_from.filter(|_| !ramp.is_zero()),
            })
            .collect();
        let ramps_until = members
            .iter()
            .filter_map(|member| member.ramp_from)
            .max()
            .map(|from| from + ramp);
        let replicas = members.iter().map(|member| member.replica.clone()).collect();
        let turns = match strategy {
            Strategy::Weighted => weighted_turns(replicas),
            Strategy::RoundRobin | Strategy::P2c => replicas,
        };
        Self {
            turns,
            members,
            strategy: Some(strategy),
            ramp,
            ramps_until,
        }
    }

    /// Whether no replica is in rotation.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many replicas are in rotation.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether a replica in rotation is not among `tried`.
    pub(crate) fn has_untried(&self, tried: &Tried) -> bool {
        self.members.iter().any(|member| !tried.contains(&member.replica))
    }

    /// The replica for the next attempt of a call that tried `tried`: one
    /// it has not tried, or if it tried them all and `again` allows, any.
    /// `cursor` is the pool's turn counter.
    pub(crate) fn pick(
        &self,
        cursor: &AtomicUsize,
        tried: &Tried,
        again: bool,
        now: Instant,
    ) -> Option<&Arc<Replica>> {
        let untried = |replica: &Replica| !tried.contains(replica);
        let any_untried = self.has_untried(tried);
        if !any_untried && !again {
            return None;
        }
        let fresh = |replica: &Replica| !any_untried || untried(replica);
        if self.ramps_until.is_some_and(|until| now < until) {
            return self.pick_by_share(now, fresh);
        }
        match self.strategy? {
            Strategy::RoundRobin | Strategy::Weighted => {
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                (0..self.turns.len())
                    .map(|offset| &self.turns[(start + offset) % self.turns.len()])
                    .find(|replica| fresh(replica))
            }
            Strategy::P2c => {
                let candidates: Vec<&Arc<Replica>> = self
                    .members
                    .iter()
                    .map(|member| &member.replica)
                    .filter(|replica| fresh(replica))
                    .collect();
                match candidates.len() {
                    0 => None,
                    1 => Some(candidates[0]),
                    n => {
                        let first = fastrand::usize(..n);
                        let second = (first + 1 + fastrand::usize(..n - 1)) % n;
                        let (a, b) = (candidates[first], candidates[second]);
                        Some(if load(a) <= load(b) { a } else { b })
                    }
                }
            }
        }
    }

    /// A pick at random, each replica as likely as its share: its weight
    /// (under weighted balancing), times how far along its ramp it is.
    fn pick_by_share(&self, now: Instant, fresh: impl Fn(&Replica) -> bool) -> Option<&Arc<Replica>> {
        let share = |member: &Member| {
            let weight = match self.strategy {
                Some(Strategy::Weighted) => f64::from(member.replica.weight()),
                _ => 1.0,
            };
            let ramped = member.ramp_from.map_or(1.0, |from| {
                (now.saturating_duration_since(from).as_secs_f64() / self.ramp.as_secs_f64())
                    .clamp(RAMP_START_SHARE, 1.0)
            });
            weight * ramped
        };
        let candidates = || self.members.iter().filter(|member| fresh(&member.replica));
        let total: f64 = candidates().map(share).sum();
        let mut point = fastrand::f64() * total;
        let mut last = None;
        for member in candidates() {
            point -= share(member);
            last = Some(&member.replica);
            if point < 0.0 {
                break;
            }
        }
        last
    }
}

/// p2c's load of a replica: calls in flight (counting this one) times its
/// recent latency.
fn load(replica: &Replica) -> f64 {
    let latency = replica.latency.peak_ewma().as_secs_f64().max(1e-6);
    f64::from(replica.in_flight() + 1) * latency
}

/// Each replica as many times as its weight, interleaved smoothly.
fn weighted_turns(replicas: Vec<Arc<Replica>>) -> Vec<Arc<Replica>> {
    let total: i64 = replicas.iter().map(|replica| i64::from(replica.weight())).sum();
    let mut credit = vec![0_i64; replicas.len()];
    let mut turns = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (credit, replica) in credit.iter_mut().zip(&replicas) {
            *credit += i64::from(replica.weight());
        }
        let (best, _) = credit
            .iter()
            .enumerate()
            .max_by_key(|&(index, credit)| (*credit, std::cmp::Reverse(index)))
            .expect("a rotation with weight has replicas");
        credit[best] -= total;
        turns.push(replicas[best].clone());
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{replica::tcp, settings::PoolSettings};
    use std::collections::HashMap;

    fn replica(addr: &str, weight: u32) -> Arc<Replica> {
        let probe = PoolSettings::default().probe;
        Arc::new(Replica::new(addr, weight, 0, &tcp(None), &probe).unwrap())
    }

    fn rotation(strategy: Strategy, replicas: &[&Arc<Replica>]) -> Rotation {
        let members = replicas
            .iter()
            .map(|replica| ((*replica).clone(), None))
            .collect();
        Rotation::new(strategy, members, Duration::ZERO)
    }

    fn picks(rotation: &Rotation, count: usize) -> Vec<String> {
        let cursor = AtomicUsize::new(0);
        let now = Instant::now();
        (0..count)
            .map(|_| {
                rotation
                    .pick(&cursor, &Tried::default(), true, now)
                    .unwrap()
                    .addr()
                    .to_owned()
            })
            .collect()
    }

    fn counts(picked: &[String]) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for addr in picked {
            *counts.entry(addr.as_str()).or_default() += 1;
        }
        counts
    }

    #[tokio::test]
    async fn round_robin_alternates_exactly() {
        let (a, b) = (replica("a:1", 1), replica("b:1", 1));
        assert_eq!(
            picks(&rotation(Strategy::RoundRobin, &[&a, &b]), 4),
            ["a:1", "b:1", "a:1", "b:1"]
        );
        let empty = rotation(Strategy::RoundRobin, &[]);
        assert!(
            empty
                .pick(&AtomicUsize::new(0), &Tried::default(), true, Instant::now())
                .is_none()
        );
    }

    #[tokio::test]
    async fn weighted_turns_are_proportional_and_interleaved() {
        let (a, b, c) = (replica("a:1", 5), replica("b:1", 1), replica("c:1", 1));
        assert_eq!(
            picks(&rotation(Strategy::Weighted, &[&a, &b, &c]), 7),
            ["a:1", "a:1", "b:1", "a:1", "c:1", "a:1", "a:1"]
        );
        let (d, e) = (replica("d:1", 2), replica("e:1", 2));
        assert_eq!(
            picks(&rotation(Strategy::Weighted, &[&d, &e]), 4),
            ["d:1", "e:1", "d:1", "e:1"]
        );
    }

    #[tokio::test]
    async fn a_pick_skips_what_the_call_tried_until_everything_was() {
        let (a, b, c) = (replica("a:1", 1), replica("b:1", 1), replica("c:1", 1));
        for strategy in [Strategy::RoundRobin, Strategy::Weighted, Strategy::P2c] {
            let rotation = rotation(strategy, &[&a, &b, &c]);
            let cursor = AtomicUsize::new(0);
            let mut tried = Tried::default();
            for _ in 0..3 {
                let picked = rotation.pick(&cursor, &tried, false, Instant::now()).unwrap();
                assert!(!tried.contains(picked), "{strategy:?} picked a tried replica");
                tried.add(picked);
            }
            assert!(
                rotation.pick(&cursor, &tried, false, Instant::now()).is_none(),
                "{strategy:?}: all were tried"
            );
            assert!(
                rotation.pick(&cursor, &tried, true, Instant::now()).is_some(),
                "{strategy:?}: with all tried, one may be tried again"
            );
        }
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded() {
        let (idle, busy) = (replica("idle:1", 1), replica("busy:1", 1));
        for replica in [&idle, &busy] {
            replica.latency.record(Duration::from_millis(2));
        }
        let _calls: Vec<_> = (0..5).map(|_| busy.start_call()).collect();
        let picked = picks(&rotation(Strategy::P2c, &[&idle, &busy]), 50);
        assert_eq!(
            counts(&picked).get("idle:1"),
            Some(&50),
            "two candidates: the idle one wins"
        );

        let slow = replica("slow:1", 1);
        slow.latency.record(Duration::from_millis(200));
        let picked = picks(&rotation(Strategy::P2c, &[&idle, &slow]), 50);
        assert_eq!(counts(&picked).get("idle:1"), Some(&50), "and the fast one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_joining_replica_ramps_from_a_tenth_to_its_full_share() {
        fastrand::seed(7);
        let (old, new) = (replica("old:1", 1), replica("new:1", 1));
        let ramp = Duration::from_secs(10);
        let joined = Instant::now();
        let rotation = Rotation::new(
            Strategy::RoundRobin,
            vec![(old.clone(), None), (new.clone(), Some(joined))],
            ramp,
        );
        let share_of_new = |at: Instant| {
            let cursor = AtomicUsize::new(0);
            let picks = 10_000;
            let new_picks = (0..picks)
                .filter(|_| {
                    rotation
                        .pick(&cursor, &Tried::default(), true, at)
                        .unwrap()
                        .addr()
                        == "new:1"
                })
                .count();
            new_picks as f64 / picks as f64
        };
        // Shares 0.1 : 1, then 0.5 : 1, then equal and back to exact turns.
        let start = share_of_new(joined);
        assert!((start - 0.1 / 1.1).abs() < 0.02, "at the start {start}");
        let half = share_of_new(joined + ramp / 2);
        assert!((half - 0.5 / 1.5).abs() < 0.02, "half way {half}");
        let done = share_of_new(joined + ramp);
        assert_eq!(done, 0.5, "after the ramp, round-robin again");
    }
}
