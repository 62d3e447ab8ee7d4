//! Exponential backoff with jitter that only ever shortens a delay.
//!
//! Pure: the caller supplies the random draw, so the same draws give the
//! same delays on both backends. No backoff crate (DESIGN.md rule 1: they
//! read ambient time and randomness).

use std::time::Duration;

/// How delays grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first delay.
    pub initial: Duration,
    /// Delays never exceed this.
    pub max: Duration,
    /// Growth per failure in percent (200 doubles).
    pub multiplier_percent: u32,
    /// Up to this share (per mille) of a delay is cut off at random; a
    /// delay is never lengthened.
    pub jitter_permille: u32,
}

impl BackoffConfig {
    /// Seed 002's recovery schedule: 1 s, 2 s, 4 s, ... capped at 30 s, no
    /// jitter.
    pub const RECOVER: BackoffConfig = BackoffConfig {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
        multiplier_percent: 200,
        jitter_permille: 0,
    };

    /// The runnable tree's default: 500 ms growing by half, capped at 60 s,
    /// up to half of each delay cut off at random (as Monogon's).
    pub const TREE: BackoffConfig = BackoffConfig {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(60),
        multiplier_percent: 150,
        jitter_permille: 500,
    };
}

/// The delay state of one restartable thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    config: BackoffConfig,
    /// The un-jittered delay the next failure waits.
    current: Duration,
}

impl Backoff {
    /// A fresh backoff at `config.initial`.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff { config, current: config.initial.min(config.max) }
    }

    /// The un-jittered delay the next failure would wait.
    pub fn peek(&self) -> Duration {
        self.current
    }

    /// The delay to wait now (`random` decides the jitter), and grows the
    /// next one.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let base = self.current;
        let permille = u128::from(self.config.jitter_permille.min(1000));
        let base_ns = base.as_nanos();
        // Cut off a random share in [0, jitter] of the base delay.
        let cut = base_ns * permille / 1000 * u128::from(random % 1001) / 1000;
        let delay = Duration::from_nanos(u64::try_from(base_ns - cut).unwrap_or(u64::MAX));
        let grown = base_ns * u128::from(self.config.multiplier_percent.max(100)) / 100;
        self.current = Duration::from_nanos(u64::try_from(grown).unwrap_or(u64::MAX)).min(self.config.max);
        debug_assert!(delay <= base, "jitter lengthened a delay");
        delay
    }

    /// Back to the initial delay (the node was healthy, or done).
    pub fn reset(&mut self) {
        self.current = self.config.initial.min(self.config.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recover_schedule_doubles_to_the_cap() {
        let mut b = Backoff::new(BackoffConfig::RECOVER);
        let secs: Vec<u64> = (0..8).map(|i| b.next_delay(i).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_only_shortens() {
        let mut b = Backoff::new(BackoffConfig::TREE);
        for r in [0u64, 1, 500, 999, 1000, u64::MAX] {
            let base = b.peek();
            let d = b.next_delay(r);
            assert!(d <= base && d >= base / 2, "{d:?} outside [{:?}, {base:?}]", base / 2);
        }
    }
}
