//! Pending timers: what each does, in slots, ordered by a [`Wheel`] of
//! packed keys (deadline << 64 | sequence << 25 | event flag << 24 | slot
//! or token). Equal deadlines fire in registration order. A timer wakes a
//! task, runs an action, or hands a world event (a token) back to whoever
//! runs the executor; an event cannot be cancelled, so its key carries the
//! token itself and it takes no slot.

use std::task::Waker;

use super::TaskId;
use super::waker;
use super::wheel::Wheel;

impl Due {
    /// What waking `w` at the deadline takes.
    #[inline]
    pub(crate) fn waking(w: &Waker) -> Due {
        match waker::task_of(w) {
            Some(id) => Due::Task(id),
            None => Due::Wake(w.clone()),
        }
    }
}

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u128 = (1 << SLOT_BITS) - 1;
/// Set in a key whose low bits are an event's token, not a slot.
const EVENT_FLAG: u128 = 1 << SLOT_BITS;
const SEQ_SHIFT: u32 = SLOT_BITS + 1;
const SEQ_MASK: u64 = (1 << 39) - 1;

/// The most an event's token may be (it shares the key with the sequence).
pub(crate) const MAX_EVENT_TOKEN: u64 = SLOT_MASK as u64;

/// A registered timer: its slot and the sequence number that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    slot: u32,
    seq: u64,
}

/// What a due timer does.
pub(crate) enum Due {
    /// Wakes a task of this executor (no waker kept: the id is enough).
    Task(TaskId),
    /// Wakes whatever this waker wakes (a combinator's own waker).
    Wake(Waker),
    /// Runs an action.
    Act(Box<dyn FnOnce()>),
    /// Hands this token to the executor's [`Hooks`](super::Hooks): a world
    /// event that needs no allocation (a datagram arriving).
    Event(u64),
}

/// Pending timers of one run.
pub(crate) struct Timers {
    wheel: Wheel,
    slots: Vec<Option<(u64, Due)>>,
    free: Vec<u32>,
    next_seq: u64,
    /// No live timer is due before this: most calls after a poll find
    /// nothing due with one comparison.
    due_bound: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { wheel: Wheel::default(), slots: Vec::new(), free: Vec::new(), next_seq: 0, due_bound: u64::MAX }
    }
}

impl Timers {
    /// Registers `due` at `deadline_ns`.
    pub(crate) fn insert(&mut self, deadline_ns: u64, due: Due) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some((seq, due));
                s
            }
            None => {
                self.slots.push(Some((seq, due)));
                u32::try_from(self.slots.len() - 1).expect("too many timers")
            }
        };
        assert!(u128::from(slot) <= SLOT_MASK, "more than 2^24 live timers");
        self.push_key(deadline_ns, seq, u128::from(slot));
        TimerKey { slot, seq }
    }

    /// Registers world event `token` at `deadline_ns`: no slot, the key
    /// carries the token.
    #[inline]
    pub(crate) fn insert_event(&mut self, deadline_ns: u64, token: u64) {
        assert!(token <= MAX_EVENT_TOKEN, "event token {token} does not fit a timer key");
        let seq = self.next_seq;
        self.next_seq += 1;
        self.push_key(deadline_ns, seq, EVENT_FLAG | u128::from(token));
    }

    #[inline]
    fn push_key(&mut self, deadline_ns: u64, seq: u64, low: u128) {
        self.due_bound = self.due_bound.min(deadline_ns);
        self.wheel.push((u128::from(deadline_ns) << 64) | (u128::from(seq & SEQ_MASK) << SEQ_SHIFT) | low);
    }

    /// Replaces the waker of a live timer (a future re-polled by another task).
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) {
        let Some(Some((seq, due))) = self.slots.get_mut(key.slot as usize) else { return };
        if *seq != key.seq {
            return;
        }
        let same = match (&*due, waker::task_of(waker)) {
            (Due::Task(a), Some(b)) => a == &b,
            (Due::Wake(w), _) => w.will_wake(waker),
            _ => false,
        };
        if !same {
            *due = Due::waking(waker);
        }
    }

    /// Cancels a timer; a no-op if it already fired.
    pub(crate) fn remove(&mut self, key: TimerKey) {
        if let Some(entry) = self.slots.get_mut(key.slot as usize)
            && matches!(entry, Some((seq, _)) if *seq == key.seq)
        {
            *entry = None;
            self.free.push(key.slot);
        }
    }

    /// The earliest deadline of a live timer.
    #[inline]
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        while let Some(key) = self.wheel.peek() {
            if self.is_live(key) {
                let d = (key >> 64) as u64;
                self.due_bound = d;
                return Some(d);
            }
            self.wheel.pop();
        }
        self.due_bound = u64::MAX;
        None
    }

    #[inline]
    fn is_live(&self, key: u128) -> bool {
        if key & EVENT_FLAG != 0 {
            return true;
        }
        let slot = (key & SLOT_MASK) as usize;
        let seq = ((key >> SEQ_SHIFT) as u64) & SEQ_MASK;
        matches!(&self.slots[slot], Some((s, _)) if *s & SEQ_MASK == seq)
    }

    /// Whether a timer may be due at `now_ns` (one comparison with a
    /// bound on the next deadline).
    #[inline]
    pub(crate) fn maybe_due(&self, now_ns: u64) -> bool {
        now_ns >= self.due_bound
    }

    /// Removes the next timer due at or before `now_ns` and returns what it
    /// does; `None` when none is due.
    pub(crate) fn pop_due(&mut self, now_ns: u64) -> Option<Due> {
        while let Some(key) = self.wheel.pop_due(now_ns) {
            if key & EVENT_FLAG != 0 {
                return Some(Due::Event((key & SLOT_MASK) as u64));
            }
            if !self.is_live(key) {
                continue;
            }
            let slot = (key & SLOT_MASK) as u32;
            if let Some((_, due)) = self.slots[slot as usize].take() {
                self.free.push(slot);
                return Some(due);
            }
        }
        self.due_bound = self.wheel.lower_bound();
        None
    }

    /// How many timers other than events are live.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Timers fire in (deadline, registration) order, exactly once,
        /// and never when removed first.
        #[test]
        fn fire_in_order_once_and_not_after_removal(
            ops in proptest::collection::vec((0u64..1_000_000_000, any::<bool>()), 1..60),
        ) {
            let mut timers = Timers::default();
            let mut expected = Vec::new();
            let mut in_slots = 0;
            for (i, (deadline, remove)) in ops.iter().enumerate() {
                if i % 3 == 0 {
                    // An event: no slot, cannot be removed.
                    timers.insert_event(*deadline, i as u64);
                    expected.push((*deadline, i as u64));
                    continue;
                }
                let key = timers.insert(*deadline, Due::Event(i as u64));
                if *remove {
                    timers.remove(key);
                } else {
                    expected.push((*deadline, i as u64));
                    in_slots += 1;
                }
            }
            expected.sort();
            prop_assert_eq!(timers.live(), in_slots, "events take no slot");
            let mut now = 0;
            let mut fired = Vec::new();
            while let Some(next) = timers.next_deadline() {
                prop_assert!(next >= now, "deadlines go backwards");
                now = next;
                while let Some(due) = timers.pop_due(now) {
                    fired.push(match due {
                        Due::Event(e) => e,
                        _ => u64::MAX,
                    });
                }
            }
            prop_assert_eq!(fired, expected.iter().map(|(_, i)| *i).collect::<Vec<_>>());
            prop_assert_eq!(timers.live(), 0);
        }
    }
}
