//! One scheduling step: pick a ready task, poll it, charge its poll's
//! virtual cost, fire what fell due; and a task's end.

use std::any::Any;
use std::task::{Context, Poll};

use warden::env::LocalTask;

use super::{Executor, Hooks, LIVELOCK_STREAK, State, Stop, TaskId, waker};
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

    /// One scheduling step: picks a ready task, polls it, charges the
    /// poll's cost, fires what fell due meanwhile.
    pub(super) fn step<H: Hooks>(&self, hooks: &H) {
        let now = self.now.get();
        let step = self.steps.get();
        self.steps.set(step + 1);
        let (id, mut fut, group, name) = {
            let mut s = self.state.borrow_mut();
            let State { tasks, ready, groups, scheduler, .. } = &mut *s;
            let i = if ready.len() == 1 { 0 } else { scheduler.pick(ready, step) };
            let id = ready.swap_remove(i);
            hooks.picked(id.key());
            let Some(t) = tasks.get_mut(id) else { return };
            t.queued = false;
            t.streak = if t.woken_by_other { 0 } else { t.streak + 1 };
            t.woken_by_other = false;
            if t.streak > LIVELOCK_STREAK {
                let msg = format!(
                    "task {:?} (proc {}) was polled {} times in a row with no timer, message or I/O completing in between",
                    t.name, t.group, t.streak
                );
                drop(s);
                hooks.fail(FailureClass::Livelock, "no-busy-loop", msg);
                return;
            }
            let Some(fut) = t.fut.take() else { return };
            let group = t.group;
            let name = trace::exporting().then(|| t.name.to_string());
            groups.count_poll(group, (now / 1_000_000_000) as usize);
            (id, fut, group, name)
        };
        let polls = self.polls.get() + 1;
        self.polls.set(polls);
        trace::set_context(now, group, id);
        trace::sim_event(Kind::Poll, id.key(), 0, || "poll".to_owned());
        self.current.set(id);
        let waker = waker::waker(id);
        let mut cx = Context::from_waker(&waker);
        if let Some(w) = &self.watch {
            w.enter_poll(polls);
        }
        // No catch here: tasks spawned by `Env::spawn` and process mains
        // catch their own panics; one escaping a task spawned raw unwinds
        // to `run_until`, which ends the task and fails the run (a catch per
        // poll measured 2 % of the benchmark).
        crate::panic_hook::set_in_task(true);
        let result = fut.as_mut().poll(&mut cx);
        crate::panic_hook::set_in_task(false);
        if let Some(w) = &self.watch {
            w.exit_poll();
            if polls.is_multiple_of(1024) {
                // The watchdog's report names the hash as of a recent poll.
                w.set_hash(trace::current_hash());
            }
        }
        self.current.set(TaskId::NONE);
        trace::set_context(self.now.get(), 0, TaskId::NONE);
        let cost = self.poll_cost(hooks);
        if let Some(name) = name {
            trace::with_export(|t, _, _| t.poll(group, &name, now, cost));
        }
        {
            let mut s = self.state.borrow_mut();
            if s.groups.is_dead(group) {
                // Its process ended during this poll (SIGKILL, crash point).
                drop(s);
                self.finish(id, group, fut);
            } else {
                match result {
                    Poll::Pending => {
                        // The slot is empty (taken above): no old future to drop.
                        if let Some(t) = s.tasks.get_mut(id)
                            && t.fut.is_none()
                        {
                            t.fut = Some(fut);
                        }
                    }
                    Poll::Ready(()) => {
                        drop(s);
                        self.finish(id, group, fut);
                    }
                }
            }
        }
        self.collect_wakes(Some(id));
        self.now.set(self.now.get() + cost);
        self.fire_timers(hooks);
    }

    fn finish(&self, id: TaskId, group: u32, fut: LocalTask) {
        self.forget(id, group);
        // Destructors may spawn, wake or trace: no borrow is held here.
        drop(fut);
    }

    fn forget(&self, id: TaskId, group: u32) {
        let mut s = self.state.borrow_mut();
        s.tasks.remove(id);
        let stats = s.groups.stats_mut(group);
        stats.live_tasks = stats.live_tasks.saturating_sub(1);
    }

    /// A panic reached the run loop. Raised by a task's poll (its future
    /// was dropped as it unwound): the task ends and the run fails as
    /// `no-panic`. Raised by the simulator itself: it goes on unwinding.
    #[cold]
    pub(super) fn task_panicked<H: Hooks>(&self, payload: Box<dyn Any + Send>, hooks: &H) -> Stop {
        if !crate::panic_hook::in_task() {
            std::panic::resume_unwind(payload);
        }
        crate::panic_hook::set_in_task(false);
        if let Some(w) = &self.watch {
            w.exit_poll();
        }
        let id = self.current.replace(TaskId::NONE);
        trace::set_context(self.now.get(), 0, TaskId::NONE);
        let group = self.state.borrow_mut().tasks.get_mut(id).map(|t| t.group);
        if let Some(group) = group {
            self.forget(id, group);
        }
        let msg = warden::env::panic_message(&*payload);
        hooks.fail(FailureClass::Crash, "no-panic", format!("task panicked: {msg}"));
        Stop::Failed
    }
}
