//! Time: timestamps, stored as microseconds since the Unix epoch (an
//! integer both SQLite and PostgreSQL index well) and sent as
//! `google.protobuf.Timestamp`; and waits between attempts.

use prost_types::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_micros()).expect("microseconds fit in i64 until year 294247")
}

/// Seconds from `earlier` to `later` (both microseconds since the epoch);
/// 0 when `later` is the earlier, as hosts' clocks may have it.
pub fn seconds_between(earlier: i64, later: i64) -> f64 {
    later.saturating_sub(earlier).max(0) as f64 / 1e6
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// A protobuf timestamp as microseconds since the epoch, or why it is not one.
pub fn from_timestamp(timestamp: &Timestamp) -> Result<i64, String> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(format!(
            "timestamp nanos must be 0 to 999999999, got {}",
            timestamp.nanos
        ));
    }
    timestamp
        .seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(timestamp.nanos / 1_000)))
        .ok_or_else(|| format!("timestamp seconds {} is out of range", timestamp.seconds))
}

/// `base` stretched by a random part of up to `fraction` of it (0.0 to
/// 1.0), so that peers that failed or started together do not retry or
/// probe in lockstep.
pub fn jittered(base: std::time::Duration, fraction: f64) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per instance: a cheap random number.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let unit = (random % 10_000) as f64 / 10_000.0;
    base + base.mul_f64(fraction.clamp(0.0, 1.0) * unit)
}

/// Waits between attempts that double after each failure, from the first
/// up to the longest, and start over after a success.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    first: std::time::Duration,
    longest: std::time::Duration,
    next: std::time::Duration,
}

impl Backoff {
    /// Waits from `first`, doubling up to `longest`.
    pub fn new(first: std::time::Duration, longest: std::time::Duration) -> Self {
        Self {
            first,
            longest,
            next: first,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long.
    pub fn next_wait(&mut self) -> std::time::Duration {
        let wait = self.next;
        self.next = (wait * 2).min(self.longest);
        wait
    }

    /// Starts over from the first wait.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Whether no wait was taken since the start or the last reset.
    pub fn is_reset(&self) -> bool {
        self.next == self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_protobuf() {
        for micros in [0, 1, 1_700_000_000_123_456, -1] {
            assert_eq!(from_timestamp(&to_timestamp(micros)), Ok(micros));
        }
    }

    #[test]
    fn refuses_out_of_range_timestamps() {
        let bad_nanos = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(from_timestamp(&bad_nanos).is_err());
        let huge = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(from_timestamp(&huge).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_longest_and_starts_over() {
        let ms = std::time::Duration::from_millis;
        let mut backoff = Backoff::new(ms(50), ms(300));
        assert!(backoff.is_reset());
        let waits: Vec<_> = (0..5).map(|_| backoff.next_wait()).collect();
        assert_eq!(waits, [ms(50), ms(100), ms(200), ms(300), ms(300)]);
        assert!(!backoff.is_reset());
        backoff.reset();
        assert!(backoff.is_reset());
        assert_eq!(backoff.next_wait(), ms(50));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let base = std::time::Duration::from_millis(100);
        for _ in 0..100 {
            let jittered = jittered(base, 0.5);
            assert!(jittered >= base && jittered <= base.mul_f64(1.5), "{jittered:?}");
        }
    }
}
