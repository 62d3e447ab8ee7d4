//! PCT (Burckhardt et al., ASPLOS 2010): random distinct priorities, always
//! run the highest-priority ready task, and at d - 1 random steps lower the
//! priority of the task that just ran below every initial priority. A bug
//! of depth d is found with probability at least 1 / (n · k^(d-1)) for n
//! tasks and k steps.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::Scheduler;
use crate::exec::TaskId;
use crate::rng::below;

/// The PCT scheduler.
pub struct Pct {
    rng: ChaCha8Rng,
    depth: u32,
    steps: u64,
    /// Initial priorities are at least `depth`; change point i sets i.
    priority: BTreeMap<TaskId, u64>,
    /// step -> priority given at that step (1..depth-1).
    change_points: BTreeMap<u64, u64>,
    last: Option<TaskId>,
}

impl Pct {
    /// PCT of depth `depth` over an estimated `steps` scheduling steps.
    pub fn new(mut rng: ChaCha8Rng, depth: u32, steps: u64) -> Self {
        let steps = steps.max(1);
        let mut change_points = BTreeMap::new();
        for i in 1..u64::from(depth.max(1)) {
            // Distinct steps: redraw on collision (d is small).
            loop {
                let s = below(rng.next_u64(), steps);
                if let std::collections::btree_map::Entry::Vacant(e) = change_points.entry(s) {
                    e.insert(i);
                    break;
                }
                if change_points.len() as u64 >= steps {
                    break;
                }
            }
        }
        Pct { rng, depth, steps, priority: BTreeMap::new(), change_points, last: None }
    }
}

impl Scheduler for Pct {
    fn on_spawn(&mut self, task: TaskId) {
        // Random 63-bit priorities offset past the change-point range:
        // distinct with overwhelming probability, ties broken by id.
        let p = (self.rng.next_u64() >> 1) + u64::from(self.depth);
        self.priority.insert(task, p);
    }

    fn pick(&mut self, ready: &[TaskId], step: u64) -> usize {
        if let (Some(&low), Some(last)) = (self.change_points.get(&step), self.last) {
            self.priority.insert(last, low);
        }
        let mut best = 0;
        let mut best_p = 0;
        for (i, t) in ready.iter().enumerate() {
            let p = self.priority.get(t).copied().unwrap_or(0);
            if i == 0 || p > best_p {
                best = i;
                best_p = p;
            }
        }
        self.last = Some(ready[best]);
        best
    }

    fn describe(&self) -> String {
        let cps: Vec<String> = self.change_points.keys().map(u64::to_string).collect();
        format!("pct depth={} steps={} change_points=[{}]", self.depth, self.steps, cps.join(","))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rng::generator;

    proptest! {
        /// PCT always picks a ready task, and the highest-priority one.
        #[test]
        fn picks_the_highest_priority_ready_task(seed in any::<u64>(), depth in 1u32..5, n in 1usize..8, steps in 1u64..64) {
            let mut pct = Pct::new(generator(seed, 1), depth, steps);
            let tasks: Vec<TaskId> = (0..n as u32).map(TaskId::for_test).collect();
            for t in &tasks {
                pct.on_spawn(*t);
            }
            prop_assert_eq!(pct.change_points.len() as u64, u64::from(depth - 1).min(steps));
            for step in 0..steps {
                let ready: Vec<TaskId> = tasks.iter().copied().filter(|t| (u64::from(t.index()) + step) % 3 != 0 || t.index() == 0).collect();
                let i = pct.pick(&ready, step);
                prop_assert!(i < ready.len());
                let chosen = pct.priority[&ready[i]];
                prop_assert!(ready.iter().all(|t| pct.priority[t] <= chosen));
            }
        }
    }
}
