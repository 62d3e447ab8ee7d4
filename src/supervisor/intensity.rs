//! Restart intensity as in OTP: at most `max_restarts` restarts within any
//! `period`; one more and whoever supervises them gives up (the parent
//! fails; at the root the supervisor exits non-zero).

use std::collections::VecDeque;
use std::time::Duration;

use crate::env::Instant;

/// The limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within `period`.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Intensity {
    /// OTP's default: 1 restart in 5 s is too strict for services that
    /// back off; warden allows 10 in 60 s.
    pub const DEFAULT: Intensity = Intensity { max_restarts: 10, period: Duration::from_secs(60) };
}

/// Restart intensity went over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {max_restarts} restarts within {period:?}")]
pub struct IntensityExceeded {
    /// The limit's count.
    pub max_restarts: u32,
    /// The limit's window.
    pub period: Duration,
}

/// The restarts within the window, oldest first.
#[derive(Debug, Clone)]
pub struct IntensityWindow {
    limit: Intensity,
    restarts: VecDeque<Instant>,
}

impl IntensityWindow {
    /// An empty window.
    pub fn new(limit: Intensity) -> Self {
        IntensityWindow { limit, restarts: VecDeque::new() }
    }

    /// Counts a restart at `now`; an error when it is one too many.
    pub fn record(&mut self, now: Instant) -> Result<(), IntensityExceeded> {
        while self.restarts.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.limit.period) {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        if self.restarts.len() > self.limit.max_restarts as usize {
            return Err(IntensityExceeded { max_restarts: self.limit.max_restarts, period: self.limit.period });
        }
        Ok(())
    }

    /// Restarts counted in the window (as of the last `record`).
    pub fn len(&self) -> usize {
        self.restarts.len()
    }

    /// Whether no restart is counted.
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Forgets every restart (the thing was healthy long enough).
    pub fn clear(&mut self) {
        self.restarts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_nanos(s * 1_000_000_000)
    }

    #[test]
    fn n_in_t_then_exceeded_and_window_slides() {
        let mut w = IntensityWindow::new(Intensity { max_restarts: 3, period: Duration::from_secs(10) });
        for s in [0, 1, 2] {
            assert!(w.record(at(s)).is_ok());
        }
        assert!(w.record(at(3)).is_err(), "a fourth restart within 10 s exceeds 3");
        let mut w = IntensityWindow::new(Intensity { max_restarts: 3, period: Duration::from_secs(10) });
        for s in [0, 4, 8, 12, 16, 20] {
            assert!(w.record(at(s)).is_ok(), "restarts 4 s apart never exceed 3 in 10 s (at {s})");
        }
    }
}
