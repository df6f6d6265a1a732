//! Recent latency, cheap to record on every call and to read on every
//! call: a histogram of logarithmic buckets (four to a doubling, so a
//! quantile is known to within 19%) of atomic counters, in two generations
//! that take turns, so what it tells is the last one to two windows.
//!
//! Per replica it gives the p99 behind that replica's per-try timeout and
//! a smoothed latency for p2c's load; per pool, the p95 behind hedging.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    time::Duration,
};
use tokio::time::Instant;

/// Buckets a doubling: each bucket's upper bound is 5/4, 6/5, 7/6 or 8/7 of
/// its lower.
const SUB_BUCKETS: u32 = 4;
/// Doublings of a microsecond covered: up to 2^27 µs (134 s).
const DOUBLINGS: u32 = 27;
const BUCKETS: usize = (DOUBLINGS * SUB_BUCKETS) as usize;

/// Fewer answers than this in the window say nothing about a quantile.
pub(crate) const MIN_SAMPLES: u64 = 20;

/// How long one generation counts before the older one is cleared.
const WINDOW: Duration = Duration::from_secs(10);

/// How fast the smoothed latency forgets: it falls to 1/e of itself in
/// this long without answers, so a replica that answered slowly once and
/// then got no calls (p2c avoided it) is tried again.
const DECAY: Duration = Duration::from_secs(5);

/// Latencies of recent answers.
#[derive(Debug)]
pub(crate) struct RecentLatency {
    generations: [Generation; 2],
    /// Index of the generation being counted.
    current: AtomicUsize,
    /// When the current generation started, in ms since `epoch`.
    current_since_ms: AtomicU64,
    epoch: Instant,
    /// A smoothed latency in µs that jumps up at once to a slower answer
    /// and decays towards faster ones, and with time (peak EWMA, as
    /// tower's and linkerd's balancers keep it), for p2c's load; and when
    /// it was last set, in ms since `epoch`.
    peak_ewma_us: AtomicU64,
    peak_ewma_at_ms: AtomicU64,
}

#[derive(Debug)]
struct Generation([AtomicU32; BUCKETS]);

impl Default for Generation {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU32::new(0)))
    }
}

impl Generation {
    fn clear(&self) {
        for bucket in &self.0 {
            bucket.store(0, Relaxed);
        }
    }
}

impl RecentLatency {
    pub(crate) fn new() -> Self {
        Self {
            generations: Default::default(),
            current: AtomicUsize::new(0),
            current_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            peak_ewma_us: AtomicU64::new(0),
            peak_ewma_at_ms: AtomicU64::new(0),
        }
    }

    /// Counts an answer that took `latency`.
    pub(crate) fn record(&self, latency: Duration) {
        self.turn_generation_if_due();
        let current = self.current.load(Relaxed);
        self.generations[current].0[bucket_of(latency)].fetch_add(1, Relaxed);

        // Races between two recorders lose one of their updates: the
        // estimate stays an estimate.
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let now_ms = self.now_ms();
        let ewma = self.peak_ewma_at(now_ms);
        let next = if micros >= ewma {
            micros
        } else {
            ewma - (ewma - micros) / 8
        };
        self.peak_ewma_us.store(next, Relaxed);
        self.peak_ewma_at_ms.store(now_ms, Relaxed);
    }

    /// The latency below which `quantile` (0.0 to 1.0) of recent answers
    /// came (rounded up to its bucket's bound), if there were enough.
    pub(crate) fn quantile(&self, quantile: f64) -> Option<Duration> {
        let mut counts = [0_u64; BUCKETS];
        for generation in &self.generations {
            for (count, bucket) in counts.iter_mut().zip(&generation.0) {
                *count += u64::from(bucket.load(Relaxed));
            }
        }
        let total: u64 = counts.iter().sum();
        if total < MIN_SAMPLES {
            return None;
        }
        let rank = ((total as f64) * quantile.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(upper_bound(index));
            }
        }
        Some(upper_bound(BUCKETS - 1))
    }

    /// The smoothed latency for load estimates (zero before any answer).
    pub(crate) fn peak_ewma(&self) -> Duration {
        Duration::from_micros(self.peak_ewma_at(self.now_ms()))
    }

    /// The smoothed latency in µs, decayed to `now_ms`.
    fn peak_ewma_at(&self, now_ms: u64) -> u64 {
        let ewma = self.peak_ewma_us.load(Relaxed);
        let idle_ms = now_ms.saturating_sub(self.peak_ewma_at_ms.load(Relaxed));
        if idle_ms == 0 {
            return ewma;
        }
        (ewma as f64 * (-(idle_ms as f64) / DECAY.as_millis() as f64).exp()) as u64
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Starts counting in the other generation, cleared, once the current
    /// one has counted for a window.
    fn turn_generation_if_due(&self) {
        let now_ms = self.now_ms();
        let since = self.current_since_ms.load(Relaxed);
        let window_ms = WINDOW.as_millis() as u64;
        if now_ms.saturating_sub(since) < window_ms {
            return;
        }
        // One recorder wins the turn; the others count on.
        if self
            .current_since_ms
            .compare_exchange(since, now_ms, Relaxed, Relaxed)
            .is_ok()
        {
            let next = 1 - self.current.load(Relaxed);
            // A generation two windows old or more says nothing recent.
            if now_ms.saturating_sub(since) >= 2 * window_ms {
                self.generations[1 - next].clear();
            }
            self.generations[next].clear();
            self.current.store(next, Relaxed);
        }
    }
}

/// The bucket of a latency: four a doubling of microseconds.
fn bucket_of(latency: Duration) -> usize {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
    let doubling = 63 - micros.leading_zeros();
    let index = if doubling < 2 {
        // 1, 2 and 3 µs: a bucket each.
        micros as u32 - 1
    } else {
        // The two bits after the leading one pick the quarter.
        let quarter = ((micros >> (doubling - 2)) & 0b11) as u32;
        doubling * SUB_BUCKETS + quarter - (2 * SUB_BUCKETS - 3)
    };
    (index as usize).min(BUCKETS - 1)
}

/// The latency just above every latency in bucket `index`.
fn upper_bound(index: usize) -> Duration {
    let index = index as u32;
    if index < 3 {
        return Duration::from_micros(u64::from(index) + 2);
    }
    let shifted = index + (2 * SUB_BUCKETS - 3);
    let (doubling, quarter) = (shifted / SUB_BUCKETS, shifted % SUB_BUCKETS);
    Duration::from_micros(u64::from(SUB_BUCKETS + quarter + 1) << (doubling - 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_latencies_and_grow_by_at_most_a_quarter() {
        let mut last = 0;
        for micros in 1..200_000_u64 {
            let index = bucket_of(Duration::from_micros(micros));
            assert!(index >= last, "buckets are in order at {micros} µs");
            last = index;
            let bound = upper_bound(index).as_micros() as u64;
            assert!(bound > micros, "{micros} µs is below its bucket's bound {bound}");
            if index > 0 {
                let below = upper_bound(index - 1).as_micros() as u64;
                assert!(below <= micros, "{micros} µs is above the bound below {below}");
                assert!(bound * 4 <= below * 5 + 4, "bucket {index}: {below}..{bound}");
            }
        }
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
    }

    #[test]
    fn quantiles_need_enough_answers() {
        let recent = RecentLatency::new();
        for _ in 0..MIN_SAMPLES - 1 {
            recent.record(Duration::from_millis(1));
        }
        assert_eq!(recent.quantile(0.5), None);
        recent.record(Duration::from_millis(1));
        let median = recent.quantile(0.5).unwrap();
        assert!(median > Duration::from_millis(1) && median <= Duration::from_micros(1250));
    }

    #[test]
    fn quantiles_split_a_mix() {
        let recent = RecentLatency::new();
        for _ in 0..95 {
            recent.record(Duration::from_millis(2));
        }
        for _ in 0..5 {
            recent.record(Duration::from_millis(100));
        }
        let p95 = recent.quantile(0.95).unwrap();
        assert!(p95 <= Duration::from_micros(2500), "{p95:?}");
        let p99 = recent.quantile(0.99).unwrap();
        assert!(
            p99 > Duration::from_millis(100) && p99 <= Duration::from_millis(125),
            "{p99:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_jumps_up_and_decays() {
        let recent = RecentLatency::new();
        recent.record(Duration::from_millis(8));
        assert_eq!(recent.peak_ewma(), Duration::from_millis(8));
        recent.record(Duration::from_millis(0));
        assert_eq!(recent.peak_ewma(), Duration::from_millis(7));
        recent.record(Duration::from_millis(20));
        assert_eq!(recent.peak_ewma(), Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_fades_without_answers() {
        let recent = RecentLatency::new();
        recent.record(Duration::from_secs(2));
        tokio::time::advance(DECAY).await;
        let faded = recent.peak_ewma().as_secs_f64();
        assert!((faded - 2.0 / std::f64::consts::E).abs() < 0.01, "{faded}");
        tokio::time::advance(DECAY * 5).await;
        assert!(recent.peak_ewma() < Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn old_answers_are_forgotten() {
        let recent = RecentLatency::new();
        for _ in 0..100 {
            recent.record(Duration::from_millis(50));
        }
        tokio::time::advance(WINDOW).await;
        for _ in 0..100 {
            recent.record(Duration::from_millis(1));
        }
        let p99 = recent.quantile(0.99).unwrap();
        assert!(
            p99 > Duration::from_millis(50),
            "the last window still counts: {p99:?}"
        );
        tokio::time::advance(WINDOW).await;
        for _ in 0..100 {
            recent.record(Duration::from_millis(1));
        }
        let p99 = recent.quantile(0.99).unwrap();
        assert!(
            p99 <= Duration::from_micros(1250),
            "two windows ago is forgotten: {p99:?}"
        );
    }
}
