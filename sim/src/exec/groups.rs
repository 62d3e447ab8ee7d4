//! Task groups: the executor's view of a process. A group is dead once its
//! process ended (its tasks are discarded, its wakes ignored) and stopped
//! while SIGSTOP holds it (its woken tasks wait, parked, until SIGCONT).
//! It also keeps the counters tests read: live tasks and polls per second.

use super::TaskId;

/// Per-process counters the tests read: live tasks and polls per virtual
/// second.
#[derive(Debug, Default, Clone)]
pub struct ProcStats {
    /// Tasks spawned and not yet finished.
    pub live_tasks: u32,
    /// Polls in each virtual second since boot, indexed by the second.
    pub polls_by_second: Vec<u32>,
}

/// A set of small, dense ids as a bit per id: the executor asks on every
/// wake.
#[derive(Debug, Default)]
pub(crate) struct IdSet(Vec<u64>);

impl IdSet {
    /// Whether `id` is in the set.
    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.0.get((id / 64) as usize).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Adds `id`; whether it was new.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let i = (id / 64) as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        let was = self.0[i] & (1 << (id % 64)) != 0;
        self.0[i] |= 1 << (id % 64);
        !was
    }

    /// Removes `id`; whether it was there.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        let was = self.contains(id);
        if was {
            self.0[(id / 64) as usize] &= !(1 << (id % 64));
        }
        was
    }
}

/// Dead and stopped groups, parked tasks and counters.
#[derive(Default)]
pub(crate) struct Groups {
    dead: IdSet,
    stopped: IdSet,
    /// How many groups are stopped (the wake path skips the check at 0).
    stopped_count: u32,
    /// Woken tasks of stopped groups.
    parked: Vec<TaskId>,
    stats: Vec<ProcStats>,
}

impl Groups {
    /// Whether `group`'s process ended.
    #[inline]
    pub(crate) fn is_dead(&self, group: u32) -> bool {
        self.dead.contains(group)
    }

    /// Marks `group` dead (and no longer stopped); whether it was alive.
    pub(crate) fn kill(&mut self, group: u32) -> bool {
        if !self.dead.insert(group) {
            return false;
        }
        if self.stopped.remove(group) {
            self.stopped_count -= 1;
        }
        true
    }

    /// Whether a woken task of `group` must wait (its process is stopped).
    #[inline]
    pub(crate) fn holds(&self, group: u32) -> bool {
        self.stopped_count > 0 && self.stopped.contains(group)
    }

    /// Parks a woken task of a stopped group.
    pub(crate) fn park(&mut self, id: TaskId) {
        self.parked.push(id);
    }

    /// Marks `group` stopped; whether it was running.
    pub(crate) fn stop(&mut self, group: u32) -> bool {
        let new = self.stopped.insert(group);
        self.stopped_count += u32::from(new);
        new
    }

    /// Marks `group` running again; returns the parked tasks to sort (all
    /// of them: the caller keeps those of other groups parked).
    pub(crate) fn resume(&mut self, group: u32) -> Option<Vec<TaskId>> {
        if !self.stopped.remove(group) {
            return None;
        }
        self.stopped_count -= 1;
        Some(std::mem::take(&mut self.parked))
    }

    /// The counters of `group`, created on first use.
    #[inline]
    pub(crate) fn stats_mut(&mut self, group: u32) -> &mut ProcStats {
        let i = group as usize;
        if self.stats.len() <= i {
            self.stats.resize_with(i + 1, ProcStats::default);
        }
        &mut self.stats[i]
    }

    /// A copy of the counters of `group`.
    pub(crate) fn stats(&self, group: u32) -> ProcStats {
        self.stats.get(group as usize).cloned().unwrap_or_default()
    }

    /// Counts a poll of `group` in virtual second `sec`.
    #[inline]
    pub(crate) fn count_poll(&mut self, group: u32, sec: usize) {
        let s = self.stats_mut(group);
        if s.polls_by_second.len() <= sec {
            s.polls_by_second.resize(sec + 1, 0);
        }
        s.polls_by_second[sec] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_resume_and_kill() {
        let mut g = Groups::default();
        assert!(!g.holds(3));
        assert!(g.stop(3) && !g.stop(3));
        assert!(g.holds(3) && !g.holds(4));
        g.park(TaskId::NONE);
        assert_eq!(g.resume(3).map(|p| p.len()), Some(1));
        assert!(g.resume(3).is_none(), "resuming a running group does nothing");
        g.stop(5);
        assert!(g.kill(5) && !g.kill(5));
        assert!(g.is_dead(5) && !g.holds(5), "a dead group is not stopped");
    }
}
