//! The executor: one thread, tasks in a slab, a ready list, id-only
//! wakers, a pluggable [`Scheduler`], virtual time that costs a random
//! amount per poll and jumps to the next timer when nothing is ready.
//!
//! It knows nothing of the simulated world. Whoever runs it (the run's
//! `Simulation`) answers its `Hooks`:
//! the random bits of poll costs, the record of each pick, world events
//! that timers hand back as tokens, and the run's checks.

mod groups;
#[cfg(test)]
mod panics_test;
mod step;
mod task;
mod timers;
mod waker;
mod wheel;

use std::cell::{Cell, RefCell};
use std::task::Waker;

use warden::env::LocalTask;

use crate::check::FailureClass;
use crate::sched::Scheduler;
use crate::trace::{self, Kind};
use crate::watchdog::WatchSlot;

pub use groups::ProcStats;
pub use task::TaskId;
pub use timers::TimerKey;

use groups::Groups;
use task::{Task, TaskSlab};
use timers::{Due, Timers};

const _: () = assert!(usize::BITS >= 64, "wakers carry a 64-bit task id in their data pointer");

/// The most polls plus fired timers one run may take by default: a
/// scenario or a program that would run forever fails as a simulator error
/// instead.
pub const EVENT_BUDGET: u64 = 20_000_000;

/// A task re-polled this many times in a row only because it woke itself
/// (yielded) fails the run as a livelock.
pub const LIVELOCK_STREAK: u32 = 20_000;

/// Why the executor stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No task is ready and no timer is pending.
    Quiescent,
    /// Virtual time reached the limit.
    TimeLimit,
    /// A check failed; the run is over.
    Failed,
}

/// What the executor needs from whoever runs it.
pub(crate) trait Hooks {
    /// 64 random bits for poll costs (the poll-cost stream).
    fn poll_cost_bits(&self) -> u64;
    /// The scheduler picked the task with this key (for the record).
    fn picked(&self, key: u64);
    /// A timer registered with [`Executor::schedule_event`] fired.
    fn event(&self, token: u64);
    /// Whether the run has failed.
    fn failed(&self) -> bool;
    /// Fails the run.
    fn fail(&self, class: FailureClass, invariant: &str, message: String);
}

/// What the executor changes on every event, behind one borrow.
struct State {
    tasks: TaskSlab,
    ready: Vec<TaskId>,
    groups: Groups,
    timers: Timers,
    scheduler: Box<dyn Scheduler>,
}

/// The executor of one run.
pub(crate) struct Executor {
    now: Cell<u64>,
    state: RefCell<State>,
    steps: Cell<u64>,
    polls: Cell<u64>,
    timers_fired: Cell<u64>,
    poll_cost_max_ns: u64,
    event_budget: u64,
    cost_bits: Cell<(u64, u8)>,
    watch: Option<std::sync::Arc<WatchSlot>>,
    current: Cell<TaskId>,
}

impl Executor {
    /// An executor at virtual time zero for run `epoch`.
    pub(crate) fn new(
        epoch: u16,
        scheduler: Box<dyn Scheduler>,
        poll_cost_max_ns: u64,
        event_budget: u64,
        watch: Option<std::sync::Arc<WatchSlot>>,
    ) -> Self {
        waker::reset();
        Executor {
            now: Cell::new(0),
            state: RefCell::new(State {
                tasks: TaskSlab::new(epoch),
                ready: Vec::new(),
                groups: Groups::default(),
                timers: Timers::default(),
                scheduler,
            }),
            steps: Cell::new(0),
            polls: Cell::new(0),
            timers_fired: Cell::new(0),
            poll_cost_max_ns,
            event_budget,
            cost_bits: Cell::new((0, 0)),
            watch,
            current: Cell::new(TaskId::NONE),
        }
    }

    /// Virtual nanoseconds since the run began.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.now.get()
    }

    /// Scheduling steps taken so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Wakes `waker`'s task at `deadline_ns`.
    #[inline]
    pub(crate) fn add_timer(&self, deadline_ns: u64, waker: &Waker) -> TimerKey {
        self.state.borrow_mut().timers.insert(deadline_ns.max(self.now.get()), Due::waking(waker))
    }

    /// Points a live timer at another waker.
    pub(crate) fn update_timer(&self, key: TimerKey, waker: &Waker) {
        self.state.borrow_mut().timers.update(key, waker);
    }

    /// Cancels a timer.
    #[inline]
    pub(crate) fn remove_timer(&self, key: TimerKey) {
        // A timer dropped during the executor's own teardown finds it borrowed.
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.timers.remove(key);
        }
    }

    /// Runs `action` at virtual time `at_ns` (or at once if that passed).
    pub(crate) fn schedule(&self, at_ns: u64, action: Box<dyn FnOnce()>) -> TimerKey {
        self.state.borrow_mut().timers.insert(at_ns.max(self.now.get()), Due::Act(action))
    }

    /// Hands `token` to [`Hooks::event`] at `at_ns`.
    #[inline]
    pub(crate) fn schedule_event(&self, at_ns: u64, token: u64) {
        self.state.borrow_mut().timers.insert_event(at_ns.max(self.now.get()), token);
    }

    /// Whether task group (process) `group` has ended.
    #[inline]
    pub(crate) fn is_dead(&self, group: u32) -> bool {
        self.state.borrow().groups.is_dead(group)
    }

    /// Spawns `fut` as a task of group `group`.
    pub(crate) fn spawn(&self, group: u32, name: &str, fut: LocalTask) -> TaskId {
        let id = {
            let mut s = self.state.borrow_mut();
            let id = s.tasks.insert(Task {
                fut: Some(fut),
                group,
                name: name.into(),
                queued: true,
                woken_by_other: true,
                streak: 0,
            });
            s.ready.push(id);
            s.groups.stats_mut(group).live_tasks += 1;
            s.scheduler.on_spawn(id);
            id
        };
        trace::sim_event(Kind::Spawn, id.key(), u64::from(group), || format!("spawn {name:?}"));
        id
    }

    /// Ends group `group`: its tasks are discarded (the one being polled,
    /// after its poll returns) and it is dead from now on.
    pub(crate) fn end_group(&self, group: u32) {
        let futs = {
            let mut s = self.state.borrow_mut();
            let s = &mut *s;
            if !s.groups.kill(group) {
                return;
            }
            let current = self.current.get();
            let futs = s.tasks.remove_group(group, current);
            let tasks = &mut s.tasks;
            s.ready.retain(|id| tasks.contains(*id));
            let polled_here = tasks.get_mut(current).is_some_and(|t| t.group == group);
            s.groups.stats_mut(group).live_tasks = u32::from(polled_here);
            futs
        };
        // Destructors run with the group already dead: their Env calls do
        // nothing, as SIGKILL runs no destructors.
        drop(futs);
    }

    /// Pauses (`true`) or resumes group `group`'s tasks.
    pub(crate) fn set_stopped(&self, group: u32, stopped: bool) {
        let mut s = self.state.borrow_mut();
        let State { tasks, ready, groups, .. } = &mut *s;
        if stopped {
            if !groups.stop(group) {
                return;
            }
            let all = std::mem::take(ready);
            for id in all {
                if tasks.get_mut(id).is_some_and(|t| t.group == group) {
                    groups.park(id);
                } else {
                    ready.push(id);
                }
            }
        } else if let Some(parked) = groups.resume(group) {
            for id in parked {
                match tasks.get_mut(id).map(|t| t.group) {
                    Some(g) if g == group => ready.push(id),
                    Some(_) => groups.park(id),
                    None => {}
                }
            }
        }
    }

    /// Counters of group `group`.
    pub(crate) fn proc_stats(&self, group: u32) -> ProcStats {
        self.state.borrow().groups.stats(group)
    }

    /// Names of tasks still alive, for liveness reports.
    pub(crate) fn live_task_names(&self) -> Vec<String> {
        self.state.borrow().tasks.names()
    }

    /// Where a replayed schedule stopped matching its record.
    pub(crate) fn replay_diverged_at(&self) -> Option<u64> {
        self.state.borrow().scheduler.diverged_at()
    }

    /// The scheduler's self-description.
    pub(crate) fn scheduler_description(&self) -> String {
        self.state.borrow().scheduler.describe()
    }

    /// Drops every task and timer (end of run) without holding a borrow
    /// while their destructors run.
    pub(crate) fn shutdown(&self) {
        let (futs, timers) = {
            let mut s = self.state.borrow_mut();
            s.ready.clear();
            (s.tasks.remove_all(), std::mem::take(&mut s.timers))
        };
        drop(futs);
        drop(timers);
        waker::reset();
    }

    /// Runs tasks until virtual time reaches `limit_ns`, nothing is left to
    /// do, or a check fails.
    pub(crate) fn run_until<H: Hooks>(&self, limit_ns: u64, hooks: &H) -> Stop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_loop(limit_ns, hooks))) {
            Ok(stop) => stop,
            Err(payload) => self.task_panicked(payload, hooks),
        }
    }

    fn run_loop<H: Hooks>(&self, limit_ns: u64, hooks: &H) -> Stop {
        self.collect_wakes(None);
        loop {
            if hooks.failed() {
                return Stop::Failed;
            }
            if self.polls.get() + self.timers_fired.get() > self.event_budget {
                hooks.fail(
                    FailureClass::SimError,
                    "event-budget",
                    format!(
                        "the run took more than {} polls and timer events ({} s of virtual time): a program that never settles, or a scenario asking for more than a run can do",
                        self.event_budget,
                        self.now.get() / 1_000_000_000
                    ),
                );
                return Stop::Failed;
            }
            let next = {
                let mut s = self.state.borrow_mut();
                if s.ready.is_empty() { Some(s.timers.next_deadline()) } else { None }
            };
            if let Some(next) = next {
                match next {
                    // An event at the limit belongs to the next phase.
                    Some(t) if t < limit_ns => {
                        if t > self.now.get() {
                            self.now.set(t);
                        }
                        self.fire_timers(hooks);
                        continue;
                    }
                    Some(_) => {
                        self.now.set(self.now.get().max(limit_ns));
                        return Stop::TimeLimit;
                    }
                    None => return Stop::Quiescent,
                }
            }
            if self.now.get() >= limit_ns {
                return Stop::TimeLimit;
            }
            self.step(hooks);
        }
    }

    /// Moves woken tasks to the ready list. Wakes of `polled` during its own
    /// poll are yields, not progress.
    #[inline(always)]
    fn collect_wakes(&self, polled: Option<TaskId>) {
        // The check stays at the call site; the body's register saves are
        // paid only when there is something to collect.
        if waker::any_woken() {
            self.collect_woken(polled);
        }
    }

    #[inline(never)]
    fn collect_woken(&self, polled: Option<TaskId>) {
        let mut s = self.state.borrow_mut();
        let State { tasks, ready, groups, .. } = &mut *s;
        waker::drain_woken(|id| {
            let Some(t) = tasks.get_mut(id) else { return };
            if polled != Some(id) {
                t.woken_by_other = true;
            }
            if !t.queued {
                t.queued = true;
                if groups.holds(t.group) { groups.park(id) } else { ready.push(id) }
            }
        });
    }

    /// Fires due timers one at a time, in deadline order: a wake, an
    /// action or a world event each runs with nothing borrowed (it may
    /// schedule timers or wake tasks); then collects the wakes.
    #[inline(always)]
    fn fire_timers<H: Hooks>(&self, hooks: &H) {
        if self.state.borrow().timers.maybe_due(self.now.get()) {
            self.fire_due(hooks);
        }
    }

    #[inline(never)]
    fn fire_due<H: Hooks>(&self, hooks: &H) {
        let now = self.now.get();
        let mut fired = 0u64;
        loop {
            let due = self.state.borrow_mut().timers.pop_due(now);
            let Some(due) = due else { break };
            if fired == 0 {
                trace::set_context(now, 0, TaskId::NONE);
            }
            fired += 1;
            match due {
                Due::Task(id) => waker::wake_id(id),
                Due::Wake(w) => w.wake(),
                Due::Act(a) => a(),
                Due::Event(e) => hooks.event(e),
            }
        }
        self.timers_fired.set(self.timers_fired.get() + fired);
        self.collect_wakes(None);
    }
}
