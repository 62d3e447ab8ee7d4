//! Each host's wall clock: virtual time plus the host's own skew and drift
//! (drawn from the seed when the scenario asks for them) and the steps a
//! clock fault made. The monotonic clock (`Env::now`) is never skewed.

use std::time::{Duration, SystemTime};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use crate::rng::below;

/// Wall time of virtual time zero: 2026-01-01T00:00:00Z.
const WALL_AT_ZERO_SECS: u64 = 1_767_225_600;

/// One host's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WallClock {
    /// Offset from true time, in nanoseconds.
    pub skew_ns: i64,
    /// Rate error in parts per million (positive: runs fast).
    pub drift_ppm: i32,
    /// The sum of the steps clock faults made.
    pub stepped_ns: i64,
}

impl WallClock {
    /// The wall time this clock shows at virtual time `now_ns`.
    pub fn read(&self, now_ns: u64) -> SystemTime {
        let drift = i128::from(now_ns) * i128::from(self.drift_ppm) / 1_000_000;
        let ns = i128::from(WALL_AT_ZERO_SECS) * 1_000_000_000
            + i128::from(now_ns)
            + drift
            + i128::from(self.skew_ns)
            + i128::from(self.stepped_ns);
        let ns = u64::try_from(ns.max(0)).unwrap_or(u64::MAX);
        SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
    }
}

/// How new hosts' clocks are drawn: the largest skew and drift, and a
/// stream of the seed of their own (so drawing them moves no other
/// decision).
#[derive(Default)]
pub(crate) struct ClockDraw {
    pub(crate) skew_max_ns: u64,
    pub(crate) drift_max_ppm: u64,
    pub(crate) rng: Option<ChaCha8Rng>,
}

impl ClockDraw {
    /// The clock of a new host: skew and drift uniform within the bounds.
    pub(crate) fn next(&mut self) -> WallClock {
        let Some(rng) = self.rng.as_mut() else { return WallClock::default() };
        let signed = |rng: &mut ChaCha8Rng, max: u64| -> i64 {
            if max == 0 {
                return 0;
            }
            let v = below(rng.next_u64(), 2 * max + 1);
            i64::try_from(v).unwrap_or(i64::MAX) - i64::try_from(max).unwrap_or(i64::MAX)
        };
        let skew_ns = signed(rng, self.skew_max_ns);
        let drift_ppm = i32::try_from(signed(rng, self.drift_max_ppm)).unwrap_or(0);
        WallClock { skew_ns, drift_ppm, stepped_ns: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_drift_and_steps_add_up() {
        let c = WallClock { skew_ns: -1_000_000_000, drift_ppm: 100, stepped_ns: 5_000_000_000 };
        let zero = WallClock::default().read(0);
        let at = |s: u64| c.read(s * 1_000_000_000).duration_since(zero).unwrap().as_nanos();
        // 10 s in: +10 s, +1 ms drift, -1 s skew, +5 s of steps.
        assert_eq!(at(10), 14_001_000_000);
        assert_eq!(WallClock::default().read(1_000).duration_since(zero).unwrap().as_nanos(), 1_000);
    }
}
