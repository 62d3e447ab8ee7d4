//! Uniformly random scheduling: finds races that need one or two
//! preemptions quickly, and deep ones rarely (see PCT).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::Scheduler;
use crate::exec::TaskId;
use crate::rng::below;

/// Picks a ready task uniformly at random.
pub struct RandomScheduler {
    rng: ChaCha8Rng,
}

impl RandomScheduler {
    /// A scheduler drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        RandomScheduler { rng }
    }
}

impl Scheduler for RandomScheduler {
    fn on_spawn(&mut self, _: TaskId) {}

    fn pick(&mut self, ready: &[TaskId], _step: u64) -> usize {
        if ready.len() == 1 {
            return 0;
        }
        below(self.rng.next_u64(), ready.len() as u64) as usize
    }

    fn describe(&self) -> String {
        "random".to_owned()
    }
}
