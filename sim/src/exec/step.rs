//! One scheduling step: pick a ready task, poll it, charge its poll's
//! virtual cost; and a task's end.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use warden::env::LocalTask;

use super::{Executor, Hooks, LIVELOCK_STREAK, TaskId, waker};
use crate::check::FailureClass;
use crate::trace::{self, Kind};

impl Executor {
    /// The virtual time a poll costs: 16 random bits per poll, four polls
    /// per draw of the poll-cost stream.
    #[inline]
    pub(super) fn poll_cost<H: Hooks>(&self, hooks: &H) -> u64 {
        let (mut bits, mut left) = self.cost_bits.get();
        if left == 0 {
            bits = hooks.poll_cost_bits();
            left = 4;
        }
        self.cost_bits.set((bits >> 16, left - 1));
        ((bits & 0xffff) * (self.poll_cost_max_ns + 1)) >> 16
    }

    #[inline]
    pub(super) fn pick<H: Hooks>(&self, hooks: &H) -> TaskId {
        let step = self.steps.get();
        self.steps.set(step + 1);
        let mut ready = self.ready.borrow_mut();
        let i = if ready.len() == 1 { 0 } else { self.scheduler.borrow_mut().pick(&ready, step) };
        let id = ready.swap_remove(i);
        drop(ready);
        hooks.picked(id.key());
        id
    }

    pub(super) fn poll<H: Hooks>(&self, id: TaskId, hooks: &H) {
        let now = self.now.get();
        let (mut fut, group) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(t) = tasks.get_mut(id) else { return };
            t.queued = false;
            t.streak = if t.woken_by_other { 0 } else { t.streak + 1 };
            t.woken_by_other = false;
            if t.streak > LIVELOCK_STREAK {
                let msg = format!(
                    "task {:?} (proc {}) was polled {} times in a row with no timer, message or I/O completing in between",
                    t.name, t.group, t.streak
                );
                drop(tasks);
                hooks.fail(FailureClass::Livelock, "no-busy-loop", msg);
                return;
            }
            let Some(fut) = t.fut.take() else { return };
            (fut, t.group)
        };
        self.groups.borrow_mut().count_poll(group, (now / 1_000_000_000) as usize);
        self.polls.set(self.polls.get() + 1);
        trace::set_context(now, group, id);
        trace::sim_event(Kind::Poll, id.key(), 0, || "poll".to_owned());
        self.current.set(id);
        let waker = waker::waker(id);
        let mut cx = Context::from_waker(&waker);
        if let Some(w) = &self.watch {
            w.enter_poll();
        }
        let result =
            crate::panic_hook::in_task(|| std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))));
        if let Some(w) = &self.watch {
            w.exit_poll();
            if self.polls.get().is_multiple_of(1024) {
                // The watchdog's report names the hash as of a recent poll.
                w.set_hash(trace::current_hash());
            }
        }
        self.current.set(TaskId::NONE);
        trace::set_context(self.now.get(), 0, TaskId::NONE);
        if self.is_dead(group) {
            // Its process ended during this poll (SIGKILL, crash point).
            return self.finish(id, group, fut);
        }
        match result {
            Ok(Poll::Pending) => {
                if let Some(t) = self.tasks.borrow_mut().get_mut(id) {
                    t.fut = Some(fut);
                }
            }
            Ok(Poll::Ready(())) => self.finish(id, group, fut),
            Err(payload) => {
                let msg = warden::env::panic_message(&*payload);
                self.finish(id, group, fut);
                hooks.fail(FailureClass::Crash, "no-panic", format!("task panicked: {msg}"));
            }
        }
    }

    fn finish(&self, id: TaskId, group: u32, fut: LocalTask) {
        self.tasks.borrow_mut().remove(id);
        let mut groups = self.groups.borrow_mut();
        let stats = groups.stats_mut(group);
        stats.live_tasks = stats.live_tasks.saturating_sub(1);
        drop(groups);
        // Destructors may spawn, wake or trace: no borrow is held here.
        drop(fut);
    }
}
