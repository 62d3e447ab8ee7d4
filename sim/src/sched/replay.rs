//! Replays a recorded schedule: each step runs the task the record names.
//! If a (possibly edited) record names a task that is not ready, or runs
//! out, the lowest ready id runs, so an edited record still replays to a
//! deterministic end.

use std::collections::VecDeque;

use super::Scheduler;
use crate::exec::TaskId;

/// Follows a list of recorded picks.
pub struct ReplayScheduler {
    picks: VecDeque<u64>,
    diverged_at: Option<u64>,
}

impl ReplayScheduler {
    /// Replays `picks` (task keys, see [`TaskId::key`]) in order.
    pub fn new(picks: Vec<u64>) -> Self {
        ReplayScheduler { picks: picks.into(), diverged_at: None }
    }
}

impl Scheduler for ReplayScheduler {
    fn on_spawn(&mut self, _: TaskId) {}

    fn pick(&mut self, ready: &[TaskId], step: u64) -> usize {
        if let Some(want) = self.picks.pop_front()
            && let Some(i) = ready.iter().position(|t| t.key() == want)
        {
            return i;
        }
        self.diverged_at.get_or_insert(step);
        ready.iter().enumerate().min_by_key(|(_, t)| **t).map_or(0, |(i, _)| i)
    }

    fn describe(&self) -> String {
        format!("replay of {} recorded picks", self.picks.len())
    }

    fn diverged_at(&self) -> Option<u64> {
        self.diverged_at
    }
}
