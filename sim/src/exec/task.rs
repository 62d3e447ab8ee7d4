//! Tasks: the id that names one and the slab that holds them.

use warden::env::LocalTask;

/// Names a task of one run: epoch (16 bits) | generation (16) | slab index
/// (32), packed into one word so that a waker carries it in its data
/// pointer. The epoch counts runs in this OS process, so a waker that
/// outlived its run wakes nothing in the next one; records and traces
/// store [`TaskId::key`], which leaves the epoch out, so they replay in any
/// process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    /// No task (nothing is being polled).
    pub const NONE: TaskId = TaskId(u64::MAX);

    fn new(epoch: u16, generation: u16, index: u32) -> TaskId {
        TaskId((u64::from(epoch) << 48) | (u64::from(generation) << 32) | u64::from(index))
    }

    /// The run this id belongs to.
    #[inline]
    pub fn epoch(self) -> u16 {
        (self.0 >> 48) as u16
    }

    #[inline]
    fn generation(self) -> u16 {
        (self.0 >> 32) as u16
    }

    /// The slab index: small, dense, what traces print.
    #[inline]
    pub fn index(self) -> u32 {
        self.0 as u32
    }

    /// The id without its epoch: what records and the trace hash store.
    #[inline]
    pub fn key(self) -> u64 {
        self.0 & 0xffff_ffff_ffff
    }

    /// The id as one word (a waker's data).
    #[inline]
    pub(crate) fn word(self) -> u64 {
        self.0
    }

    /// The id a waker carried.
    #[inline]
    pub(crate) fn from_word(w: u64) -> TaskId {
        TaskId(w)
    }

    /// A task id from its parts, for schedulers' tests.
    #[cfg(test)]
    pub(crate) fn for_test(index: u32) -> TaskId {
        TaskId::new(1, 1, index)
    }
}

/// A live task.
pub(crate) struct Task {
    /// The future; `None` while it is being polled.
    pub(crate) fut: Option<LocalTask>,
    /// The process (task group) that owns it.
    pub(crate) group: u32,
    /// Its name, for reports.
    pub(crate) name: Box<str>,
    /// In the ready list (or parked) already.
    pub(crate) queued: bool,
    /// Woken by something other than its own poll since it last ran.
    pub(crate) woken_by_other: bool,
    /// Polls in a row caused only by its own wakes (yields).
    pub(crate) streak: u32,
}

struct Slot {
    generation: u16,
    task: Option<Task>,
}

/// The tasks of one run.
pub(crate) struct TaskSlab {
    epoch: u16,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl TaskSlab {
    /// An empty slab for run `epoch`.
    pub(crate) fn new(epoch: u16) -> TaskSlab {
        TaskSlab { epoch, slots: Vec::new(), free: Vec::new() }
    }

    /// Stores `task`; returns its id.
    pub(crate) fn insert(&mut self, task: Task) -> TaskId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, task: None });
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 tasks")
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.task = Some(task);
        TaskId::new(self.epoch, slot.generation, index)
    }

    /// The live task `id`, if it is one of this run.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        if id.epoch() != self.epoch {
            return None;
        }
        let slot = self.slots.get_mut(id.index() as usize)?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.task.as_mut()
    }

    /// Whether `id` is a live task.
    pub(crate) fn contains(&mut self, id: TaskId) -> bool {
        self.get_mut(id).is_some()
    }

    /// Removes task `id` (finished or discarded).
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Task> {
        self.get_mut(id)?;
        let task = self.slots[id.index() as usize].task.take();
        self.free.push(id.index());
        task
    }

    /// Removes every task of `group` but `keep` (the one being polled);
    /// returns their futures, to drop once no borrow is held.
    pub(crate) fn remove_group(&mut self, group: u32, keep: TaskId) -> Vec<LocalTask> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.task.as_ref().is_none_or(|t| t.group != group) {
                continue;
            }
            if TaskId::new(self.epoch, slot.generation, i as u32) == keep {
                continue;
            }
            if let Some(t) = slot.task.take() {
                out.extend(t.fut);
                self.free.push(i as u32);
            }
        }
        out
    }

    /// Removes every task; returns their futures.
    pub(crate) fn remove_all(&mut self) -> Vec<LocalTask> {
        let out = self.slots.iter_mut().filter_map(|s| s.task.take().and_then(|t| t.fut)).collect();
        self.slots.clear();
        self.free.clear();
        out
    }

    /// "name (pid N)" of every live task, for liveness reports.
    pub(crate) fn names(&self) -> Vec<String> {
        self.slots.iter().filter_map(|s| s.task.as_ref().map(|t| format!("{} (proc {})", t.name, t.group))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(group: u32) -> Task {
        Task { fut: Some(Box::pin(async {})), group, name: "t".into(), queued: false, woken_by_other: false, streak: 0 }
    }

    #[test]
    fn ids_pack_and_stale_ids_find_nothing() {
        let mut slab = TaskSlab::new(7);
        let a = slab.insert(task(1));
        assert_eq!((a.epoch(), a.index()), (7, 0));
        assert_eq!(a.key() >> 32, 1, "generation without epoch");
        assert!(slab.remove(a).is_some());
        let b = slab.insert(task(1));
        assert_eq!(b.index(), a.index(), "slot reused");
        assert!(slab.get_mut(a).is_none(), "an id of the slot's earlier task is stale");
        assert!(TaskSlab::new(8).get_mut(b).is_none(), "an id of another run is stale");
        assert_eq!(TaskId::from_word(b.word()), b);
    }

    #[test]
    fn removing_a_group_keeps_the_polled_task_and_others() {
        let mut slab = TaskSlab::new(1);
        let a = slab.insert(task(1));
        let b = slab.insert(task(1));
        let c = slab.insert(task(2));
        assert_eq!(slab.remove_group(1, b).len(), 1);
        assert!(!slab.contains(a) && slab.contains(b) && slab.contains(c));
    }
}
