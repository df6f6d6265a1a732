//! The replicas in rotation, in picking order, and the pickers that walk it
//! without a lock: round-robin over the healthy replicas, and smooth
//! weighted round-robin (nginx's), which spreads a heavy replica's turns
//! out instead of sending them in a burst.

use super::replica::Replica;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// One snapshot of the rotation. Rebuilt (rarely) when a replica joins or
/// leaves; read (on every call) through an `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Rotation {
    /// The order of turns: each healthy replica once (round-robin), or as
    /// many times as its weight, interleaved (weighted).
    turns: Vec<Arc<Replica>>,
}

impl Rotation {
    /// Each replica in turn, once.
    pub(crate) fn round_robin(healthy: Vec<Arc<Replica>>) -> Self {
        Self { turns: healthy }
    }

    /// Each replica as many times as its weight, interleaved smoothly: for
    /// weights 5, 1, 1 the turns are a a b a c a a.
    pub(crate) fn weighted(healthy: Vec<Arc<Replica>>) -> Self {
        let total: i64 = healthy.iter().map(|replica| i64::from(replica.weight())).sum();
        let mut current = vec![0_i64; healthy.len()];
        let mut turns = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (credit, replica) in current.iter_mut().zip(&healthy) {
                *credit += i64::from(replica.weight());
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|&(index, credit)| (*credit, std::cmp::Reverse(index)))
                .expect("a rotation with weight has replicas");
            current[best] -= total;
            turns.push(healthy[best].clone());
        }
        Self { turns }
    }

    /// Whether no replica is in rotation.
    pub(crate) fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The replica whose turn `cursor` names.
    pub(crate) fn pick(&self, cursor: &AtomicUsize) -> Option<&Arc<Replica>> {
        if self.turns.is_empty() {
            return None;
        }
        let turn = cursor.fetch_add(1, Ordering::Relaxed) % self.turns.len();
        self.turns.get(turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn replica(addr: &str, weight: u32) -> Arc<Replica> {
        Arc::new(Replica::new(addr, weight, Duration::from_secs(1), Duration::from_secs(5)).unwrap())
    }

    fn picks(rotation: &Rotation, count: usize) -> Vec<String> {
        let cursor = AtomicUsize::new(0);
        (0..count)
            .map(|_| rotation.pick(&cursor).unwrap().addr().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn round_robin_alternates_exactly() {
        let rotation = Rotation::round_robin(vec![replica("a:1", 1), replica("b:1", 1)]);
        assert_eq!(picks(&rotation, 4), ["a:1", "b:1", "a:1", "b:1"]);
        assert!(Rotation::round_robin(vec![]).pick(&AtomicUsize::new(0)).is_none());
    }

    #[tokio::test]
    async fn weighted_turns_are_proportional_and_interleaved() {
        let rotation = Rotation::weighted(vec![replica("a:1", 5), replica("b:1", 1), replica("c:1", 1)]);
        assert_eq!(
            picks(&rotation, 7),
            ["a:1", "a:1", "b:1", "a:1", "c:1", "a:1", "a:1"]
        );
        let even = Rotation::weighted(vec![replica("a:1", 2), replica("b:1", 2)]);
        assert_eq!(picks(&even, 4), ["a:1", "b:1", "a:1", "b:1"]);
    }
}
