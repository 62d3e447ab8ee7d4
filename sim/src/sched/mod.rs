//! Schedulers: which ready task runs next.
//!
//! A small trait, as in shuttle: the executor tells a scheduler about new
//! tasks and asks it to pick among the ready ones. Each policy is one file.

mod pct;
mod random;
mod replay;

pub use pct::Pct;
pub use random::RandomScheduler;
pub use replay::ReplayScheduler;

use crate::exec::TaskId;

/// Picks the next task to poll.
pub trait Scheduler {
    /// A task was spawned.
    fn on_spawn(&mut self, task: TaskId);
    /// Picks an index into `ready` (never empty); `step` counts picks.
    fn pick(&mut self, ready: &[TaskId], step: u64) -> usize;
    /// The parameters it drew, for the run's header.
    fn describe(&self) -> String;
    /// The first step at which a replayed record did not match the ready
    /// tasks (only a replay can diverge).
    fn diverged_at(&self) -> Option<u64> {
        None
    }
}

/// Which policy a scenario or the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Uniformly random among ready tasks.
    Random,
    /// Probabilistic concurrency testing with `depth` (d) and the run's
    /// length in scheduling steps (k).
    Pct {
        /// The bug depth d: d - 1 priority change points.
        depth: u32,
        /// The number of steps change points are drawn from; `None`: the
        /// length of this seed's run, measured by running it once with no
        /// change point (as the PCT paper estimates k).
        steps: Option<u64>,
    },
}

/// The deepest PCT a scenario may ask for: d - 1 change points are drawn
/// distinct, and a bug deeper than this is beyond what PCT finds anyway.
pub const PCT_MAX_DEPTH: u32 = 64;

/// The depth `--sched pct` uses when the scenario's scheduler is random.
pub const PCT_DEFAULT_DEPTH: u32 = 3;
