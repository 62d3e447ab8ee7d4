//! One seed, independent streams: each concern draws from its own
//! `rand_chacha` stream, so adding a draw in one (say, the network) does not
//! shift the decisions of another (the scheduler).
//!
//! Every draw can be recorded and replayed: a run is a pure function of its
//! decisions, and a record edited by a shrinker replays the edited values
//! (a stream that runs out falls back to the seeded generator).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// A concern that draws random decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    /// The task the scheduler picked (recorded as task ids).
    Schedule = 0,
    /// The virtual time each poll costs.
    PollCost = 1,
    /// Network delays, loss and reordering.
    Network = 2,
    /// Disk faults and tearing.
    Disk = 3,
    /// Which faults fire and when, buggify included.
    Faults = 4,
    /// `env.random_u64()` for programs.
    App = 5,
}

impl Stream {
    /// Every stream, in record order.
    pub const ALL: [Stream; 6] =
        [Stream::Schedule, Stream::PollCost, Stream::Network, Stream::Disk, Stream::Faults, Stream::App];

    /// The name used in record files.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Schedule => "schedule",
            Stream::PollCost => "poll-cost",
            Stream::Network => "network",
            Stream::Disk => "disk",
            Stream::Faults => "faults",
            Stream::App => "app",
        }
    }
}

/// The scheduler's private stream (priorities, change points): not
/// recorded, because the scheduler's picks are.
pub const SCHEDULER_INTERNAL: u64 = 100;
/// The stream that derives a run's swarm parameters (poll cost, ...).
pub const PARAMETERS: u64 = 101;
/// The stream that draws each host's wall-clock skew and drift.
pub const CLOCKS: u64 = 102;

/// A generator for stream `stream` of `seed`.
pub fn generator(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Decisions a record holds per stream before its first reallocation: a
/// minute of a few busy hosts (the benchmark's ~9K scheduler picks) records
/// without growing (128 KiB a stream, reused by the allocator seed to seed).
const RECORD_CAPACITY: usize = 1 << 14;

/// The per-run source of every random decision.
pub struct Decisions {
    // Arrays, not vectors: a stream indexes them without a bounds check.
    rngs: [ChaCha8Rng; Stream::ALL.len()],
    recorded: Option<[Vec<u64>; Stream::ALL.len()]>,
    replay: Option<(Vec<Vec<u64>>, Vec<usize>)>,
}

impl Decisions {
    /// Fresh streams from `seed`, recording when `record` is set.
    pub fn new(seed: u64, record: bool) -> Self {
        Decisions {
            rngs: Stream::ALL.map(|s| generator(seed, s as u64)),
            // Not `[v; n]` or `vec![v; n]`: a cloned Vec keeps none of its capacity.
            recorded: record.then(|| Stream::ALL.map(|_| Vec::with_capacity(RECORD_CAPACITY))),
            replay: None,
        }
    }

    /// Serves draws from `streams` first (one list per [`Stream`]).
    pub fn replaying(mut self, streams: Vec<Vec<u64>>) -> Self {
        self.replay = Some((streams, vec![0; Stream::ALL.len()]));
        self
    }

    /// The next value of `stream`.
    #[inline]
    pub fn draw(&mut self, stream: Stream) -> u64 {
        let i = stream as usize;
        let v = match self.replayed(stream) {
            Some(v) => v,
            None => self.rngs[i].next_u64(),
        };
        if let Some(rec) = &mut self.recorded {
            rec[i].push(v);
        }
        v
    }

    /// Records a decision taken elsewhere (the scheduler's pick).
    #[inline]
    pub fn note(&mut self, stream: Stream, value: u64) {
        if let Some(rec) = &mut self.recorded {
            rec[stream as usize].push(value);
        }
    }

    /// The next replayed value of `stream`, if a replay has one left.
    fn replayed(&mut self, stream: Stream) -> Option<u64> {
        let i = stream as usize;
        let (values, pos) = self.replay.as_mut()?;
        let v = values.get(i)?.get(pos[i]).copied()?;
        pos[i] += 1;
        Some(v)
    }

    /// The recorded decisions, one list per [`Stream`].
    pub fn take_record(&mut self) -> Option<Vec<Vec<u64>>> {
        self.recorded.take().map(Vec::from)
    }
}

/// A uniform float in `[0, 1)` from one raw draw (53 bits): fault odds.
#[inline]
pub fn unit(raw: u64) -> f64 {
    (raw >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform integer in `[0, bound)` from one raw draw (multiply-shift; the
/// bias is below 2^-32 for the small bounds the simulator uses).
#[inline]
pub fn below(raw: u64, bound: u64) -> u64 {
    ((u128::from(raw) * u128::from(bound)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_replayable() {
        let mut a = Decisions::new(7, true);
        let x: Vec<u64> = (0..4).map(|_| a.draw(Stream::App)).collect();
        let mut b = Decisions::new(7, false);
        let _ = b.draw(Stream::Network);
        let y: Vec<u64> = (0..4).map(|_| b.draw(Stream::App)).collect();
        assert_eq!(x, y, "a network draw shifted the app stream");
        let rec = a.take_record().expect("recording");
        let mut c = Decisions::new(999, false).replaying(rec);
        let z: Vec<u64> = (0..4).map(|_| c.draw(Stream::App)).collect();
        assert_eq!(x, z, "replay ignores the seed");
    }
}
