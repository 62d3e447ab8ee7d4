//! Pending timers: what each does, in slots, ordered by a [`Wheel`] of
//! packed keys (deadline << 64 | sequence << 24 | slot). Equal deadlines
//! fire in registration order. A timer wakes a task, runs an action, or
//! hands a world event (a token) back to whoever runs the executor.

use std::collections::VecDeque;
use std::task::Waker;

use super::wheel::Wheel;

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u128 = (1 << SLOT_BITS) - 1;
const SEQ_MASK: u64 = (1 << 40) - 1;

/// A registered timer: its slot and the sequence number that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    slot: u32,
    seq: u64,
}

/// What a due timer does.
pub(crate) enum Due {
    /// Wakes a task.
    Wake(Waker),
    /// Runs an action.
    Act(Box<dyn FnOnce()>),
    /// Hands this token to the executor's [`Hooks`](super::Hooks): a world
    /// event that needs no allocation (a datagram arriving).
    Event(u64),
}

/// A due timer's work that runs once the timers are no longer borrowed.
pub(crate) enum Fired {
    /// An action.
    Act(Box<dyn FnOnce()>),
    /// A world event.
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
        self.due_bound = self.due_bound.min(deadline_ns);
        self.wheel.push((u128::from(deadline_ns) << 64) | (u128::from(seq & SEQ_MASK) << SLOT_BITS) | u128::from(slot));
        TimerKey { slot, seq }
    }

    /// Replaces the waker of a live timer (a future re-polled by another task).
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(Some((seq, Due::Wake(w)))) = self.slots.get_mut(key.slot as usize)
            && *seq == key.seq
            && !w.will_wake(waker)
        {
            *w = waker.clone();
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
        let slot = (key & SLOT_MASK) as usize;
        let seq = ((key >> SLOT_BITS) as u64) & SEQ_MASK;
        matches!(&self.slots[slot], Some((s, _)) if *s & SEQ_MASK == seq)
    }

    /// Wakes every timer due at or before `now_ns` and moves due actions
    /// and events into `out` (to run once the timers are no longer
    /// borrowed); returns how many fired.
    #[inline]
    pub(crate) fn fire_due(&mut self, now_ns: u64, out: &mut VecDeque<Fired>) -> usize {
        if now_ns < self.due_bound {
            return 0;
        }
        self.fire_due_slow(now_ns, out)
    }

    fn fire_due_slow(&mut self, now_ns: u64, out: &mut VecDeque<Fired>) -> usize {
        let mut fired = 0;
        while let Some(key) = self.wheel.pop_due(now_ns) {
            if !self.is_live(key) {
                continue;
            }
            let slot = (key & SLOT_MASK) as u32;
            if let Some((_, due)) = self.slots[slot as usize].take() {
                self.free.push(slot);
                match due {
                    Due::Wake(w) => w.wake(),
                    Due::Act(a) => out.push_back(Fired::Act(a)),
                    Due::Event(e) => out.push_back(Fired::Event(e)),
                }
                fired += 1;
            }
        }
        self.due_bound = self.wheel.lower_bound();
        fired
    }

    /// How many timers are live.
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
            for (i, (deadline, remove)) in ops.iter().enumerate() {
                let key = timers.insert(*deadline, Due::Event(i as u64));
                if *remove {
                    timers.remove(key);
                } else {
                    expected.push((*deadline, i as u64));
                }
            }
            expected.sort();
            prop_assert_eq!(timers.live(), expected.len());
            let mut now = 0;
            let mut fired = Vec::new();
            while let Some(next) = timers.next_deadline() {
                prop_assert!(next >= now, "deadlines go backwards");
                now = next;
                let mut out = VecDeque::new();
                timers.fire_due(now, &mut out);
                fired.extend(out.into_iter().map(|f| match f {
                    Fired::Event(e) => e,
                    Fired::Act(_) => u64::MAX,
                }));
            }
            prop_assert_eq!(fired, expected.iter().map(|(_, i)| *i).collect::<Vec<_>>());
            prop_assert_eq!(timers.live(), 0);
        }
    }
}
