//! The executor: one thread, tasks in a slab, a ready list, id-only wakers,
//! a pluggable [`Scheduler`], virtual time that costs a random amount per
//! poll and jumps to the next timer when nothing is ready.
//!
//! The [`Kernel`] is the state of one simulated run that every `SimEnv`
//! handle of that run shares.

mod timers;
mod waker;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use warden::env::LocalTask;
use warden::env::mutants;

use crate::check::{Checks, FailureClass};
use crate::rng::{Decisions, Stream, below};
use crate::sched::Scheduler;
use crate::trace;
use crate::watchdog::WatchSlot;

pub use timers::{Due, Fired, TimerKey, Timers};
pub use waker::TaskId;

/// A task re-polled this many times in a row only because it woke itself
/// (yielded) fails the run as a livelock.
pub const LIVELOCK_STREAK: u32 = 20_000;

/// Per-process counters the tests read: live tasks and polls per virtual
/// second.
#[derive(Debug, Default, Clone)]
pub struct ProcStats {
    /// Tasks spawned and not yet finished.
    pub live_tasks: u32,
    /// Polls in each virtual second since boot, indexed by the second.
    pub polls_by_second: Vec<u32>,
}

struct TaskEntry {
    fut: Option<LocalTask>,
    pid: u32,
    name: Box<str>,
    queued: bool,
    woken_by_other: bool,
    streak: u32,
}

struct Slot {
    generation: u16,
    entry: Option<TaskEntry>,
}

#[derive(Default)]
struct Tasks {
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: Vec<TaskId>,
}

/// A task id without its run epoch: what records store, so that a record
/// replays in any process (epochs count runs per process).
#[inline]
pub fn task_key(id: TaskId) -> u64 {
    id & 0xffff_ffff_ffff
}

/// A set of process ids as a bit per id: ids are small and dense, and the
/// executor asks on every poll.
#[derive(Debug, Default)]
pub struct ProcFlags(Vec<u64>);

impl ProcFlags {
    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        self.0.get((id / 64) as usize).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Adds `id`; whether it was new.
    pub fn insert(&mut self, id: u32) -> bool {
        let i = (id / 64) as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        let was = self.0[i] & (1 << (id % 64)) != 0;
        self.0[i] |= 1 << (id % 64);
        !was
    }

    /// Removes `id`; whether it was there.
    pub fn remove(&mut self, id: u32) -> bool {
        let was = self.contains(id);
        if was {
            self.0[(id / 64) as usize] &= !(1 << (id % 64));
        }
        was
    }
}

/// Why [`Kernel::run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No task is ready and no timer is pending.
    Quiescent,
    /// Virtual time reached the limit.
    TimeLimit,
    /// A check failed; the run is over.
    Failed,
}

/// Fault switches of one run.
#[derive(Debug, Default)]
pub struct Buggify {
    /// Whether the scenario lets buggify sites fire.
    pub allowed: bool,
    /// Whether the run is in its fault phase (not the fault-free end).
    pub fault_phase: bool,
    /// Sites decided so far: enabled or not for this run.
    pub sites: BTreeMap<&'static str, bool>,
    /// Decisions forced by a fault plan.
    pub forced: BTreeMap<String, bool>,
}

/// The shared state of one simulated run.
pub struct Kernel {
    now: Cell<u64>,
    timers: RefCell<Timers>,
    tasks: RefCell<Tasks>,
    scheduler: RefCell<Box<dyn Scheduler>>,
    pub(crate) decisions: RefCell<Decisions>,
    /// Counters by process id (ids are small and dense).
    procs: RefCell<Vec<ProcStats>>,
    pub(crate) buggify: RefCell<Buggify>,
    pub(crate) mutant: Option<&'static str>,
    pub(crate) checks: Checks,
    epoch: u16,
    steps: Cell<u64>,
    polls: Cell<u64>,
    poll_cost_max_ns: u64,
    watch: Option<std::sync::Arc<WatchSlot>>,
    woken: RefCell<Vec<TaskId>>,
    /// Processes that ended: their tasks are discarded, their Env calls do
    /// nothing.
    dead: RefCell<ProcFlags>,
    /// Processes paused by SIGSTOP: their woken tasks wait in `parked`.
    stopped: RefCell<ProcFlags>,
    parked: RefCell<Vec<TaskId>>,
    current: Cell<TaskId>,
    cost_bits: Cell<(u64, u8)>,
    /// How many processes are stopped (the wake path skips the check at 0).
    stopped_count: Cell<u32>,
    actions: RefCell<std::collections::VecDeque<Fired>>,
    /// The simulated world: hosts, processes, sockets, disks.
    pub(crate) world: RefCell<crate::world::WorldState>,
}

impl Kernel {
    /// A kernel at virtual time zero.
    pub fn new(
        epoch: u16,
        scheduler: Box<dyn Scheduler>,
        decisions: Decisions,
        poll_cost_max_ns: u64,
        mutant: Option<&'static str>,
        checks: Checks,
        watch: Option<std::sync::Arc<WatchSlot>>,
    ) -> Self {
        waker::reset();
        Kernel {
            now: Cell::new(0),
            timers: RefCell::default(),
            tasks: RefCell::default(),
            scheduler: RefCell::new(scheduler),
            decisions: RefCell::new(decisions),
            procs: RefCell::default(),
            buggify: RefCell::default(),
            mutant,
            checks,
            epoch,
            steps: Cell::new(0),
            polls: Cell::new(0),
            poll_cost_max_ns,
            watch,
            woken: RefCell::default(),
            dead: RefCell::default(),
            stopped: RefCell::default(),
            parked: RefCell::default(),
            current: Cell::new(waker::NO_TASK),
            cost_bits: Cell::new((0, 0)),
            stopped_count: Cell::new(0),
            actions: RefCell::default(),
            world: RefCell::default(),
        }
    }

    /// Virtual nanoseconds since boot.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now.get()
    }

    /// Scheduling steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Registers a timer.
    pub fn add_timer(&self, deadline_ns: u64, waker: std::task::Waker) -> TimerKey {
        self.timers.borrow_mut().insert(deadline_ns, waker)
    }

    /// Points a live timer at another waker.
    pub fn update_timer(&self, key: TimerKey, waker: &std::task::Waker) {
        self.timers.borrow_mut().update(key, waker);
    }

    /// Runs `action` at virtual time `at_ns` (or at once if that passed).
    pub fn schedule(&self, at_ns: u64, action: Box<dyn FnOnce()>) -> TimerKey {
        self.timers.borrow_mut().insert_due(at_ns.max(self.now.get()), Due::Act(action))
    }

    /// Delivers datagram `slot` at `at_ns`.
    pub fn schedule_datagram(&self, at_ns: u64, slot: u32) {
        self.timers.borrow_mut().insert_due(at_ns.max(self.now.get()), Due::Datagram(slot));
    }

    /// Whether process `proc` has ended.
    #[inline]
    pub fn is_dead(&self, proc: u32) -> bool {
        self.dead.borrow().contains(proc)
    }

    /// Ends process `proc`'s tasks: each is discarded (the one being
    /// polled, after its poll returns) and every later Env call from the
    /// process does nothing.
    pub fn end_process_tasks(&self, proc: u32) {
        if !self.dead.borrow_mut().insert(proc) {
            return;
        }
        if self.stopped.borrow_mut().remove(proc) {
            self.stopped_count.set(self.stopped_count.get() - 1);
        }
        let current = self.current.get();
        let futs: Vec<LocalTask> = {
            let mut tasks = self.tasks.borrow_mut();
            let mut out = Vec::new();
            let mut freed = Vec::new();
            for (i, slot) in tasks.slots.iter_mut().enumerate() {
                let owned = slot.entry.as_ref().is_some_and(|e| e.pid == proc);
                if !owned {
                    continue;
                }
                let id = (u64::from(self.epoch) << 48) | (u64::from(slot.generation) << 32) | i as u64;
                if id == current {
                    continue; // discarded after its poll
                }
                if let Some(e) = slot.entry.take() {
                    out.extend(e.fut);
                    freed.push(i as u32);
                }
            }
            tasks.free.extend(freed);
            let slots = &tasks.slots;
            let keep: Vec<TaskId> = tasks
                .ready
                .iter()
                .copied()
                .filter(|id| slots.get((id & 0xffff_ffff) as usize).is_some_and(|s| s.entry.is_some()))
                .collect();
            tasks.ready = keep;
            out
        };
        if let Some(stats) = self.procs.borrow_mut().get_mut(proc as usize) {
            stats.live_tasks = u32::from(current != waker::NO_TASK && self.task_proc(current) == Some(proc));
        }
        // Destructors run with the process already dead: their Env calls
        // do nothing, as SIGKILL runs no destructors.
        drop(futs);
    }

    fn task_proc(&self, id: TaskId) -> Option<u32> {
        let mut tasks = self.tasks.borrow_mut();
        self.entry(&mut tasks, id).map(|e| e.pid)
    }

    /// Pauses (`true`) or resumes process `proc`'s tasks.
    pub fn set_stopped(&self, proc: u32, stopped: bool) {
        if stopped {
            if self.stopped.borrow_mut().insert(proc) {
                self.stopped_count.set(self.stopped_count.get() + 1);
            }
            let mut tasks = self.tasks.borrow_mut();
            let ready = std::mem::take(&mut tasks.ready);
            let mut parked = self.parked.borrow_mut();
            for id in ready {
                if self.entry(&mut tasks, id).is_some_and(|e| e.pid == proc) {
                    parked.push(id);
                } else {
                    tasks.ready.push(id);
                }
            }
        } else if self.stopped.borrow_mut().remove(proc) {
            self.stopped_count.set(self.stopped_count.get() - 1);
            let mut tasks = self.tasks.borrow_mut();
            let parked = std::mem::take(&mut *self.parked.borrow_mut());
            let mut still = Vec::new();
            for id in parked {
                match self.entry(&mut tasks, id).map(|e| e.pid) {
                    Some(p) if p == proc => tasks.ready.push(id),
                    Some(_) => still.push(id),
                    None => {}
                }
            }
            *self.parked.borrow_mut() = still;
        }
    }

    /// Cancels a timer.
    pub fn remove_timer(&self, key: TimerKey) {
        // A timer dropped during the kernel's own teardown finds it borrowed.
        if let Ok(mut t) = self.timers.try_borrow_mut() {
            t.remove(key);
        }
    }

    /// Counters of process `pid`.
    pub fn proc_stats(&self, pid: u32) -> ProcStats {
        self.procs.borrow().get(pid as usize).cloned().unwrap_or_default()
    }

    fn stats_mut(&self, pid: u32, f: impl FnOnce(&mut ProcStats)) {
        let mut procs = self.procs.borrow_mut();
        if procs.len() <= pid as usize {
            procs.resize_with(pid as usize + 1, ProcStats::default);
        }
        f(&mut procs[pid as usize]);
    }

    /// Spawns `fut` as a task of process `pid`.
    pub fn spawn(&self, pid: u32, name: &str, fut: LocalTask) -> TaskId {
        let id = {
            let mut tasks = self.tasks.borrow_mut();
            let index = match tasks.free.pop() {
                Some(i) => i,
                None => {
                    tasks.slots.push(Slot { generation: 0, entry: None });
                    u32::try_from(tasks.slots.len() - 1).expect("too many tasks")
                }
            };
            let slot = &mut tasks.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.entry = Some(TaskEntry {
                fut: Some(fut),
                pid,
                name: name.into(),
                queued: true,
                woken_by_other: true,
                streak: 0,
            });
            let id = (u64::from(self.epoch) << 48) | (u64::from(slot.generation) << 32) | u64::from(index);
            tasks.ready.push(id);
            id
        };
        self.stats_mut(pid, |s| s.live_tasks += 1);
        self.scheduler.borrow_mut().on_spawn(id);
        trace::sim_event(1, task_key(id), u64::from(pid), || format!("spawn {name:?}"));
        id
    }

    /// The entry of `id` if it is a live task of this run.
    fn entry<'a>(&self, tasks: &'a mut Tasks, id: TaskId) -> Option<&'a mut TaskEntry> {
        if (id >> 48) as u16 != self.epoch {
            return None;
        }
        let slot = tasks.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if slot.generation != ((id >> 32) & 0xffff) as u16 {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Moves woken tasks to the ready list. Wakes of `polled` during its own
    /// poll are yields, not progress.
    fn collect_wakes(&self, polled: Option<TaskId>) {
        let mut woken = self.woken.borrow_mut();
        waker::drain_woken(&mut woken);
        if woken.is_empty() {
            return;
        }
        let mut tasks = self.tasks.borrow_mut();
        for id in woken.drain(..) {
            let Some(e) = self.entry(&mut tasks, id) else {
                continue;
            };
            if polled != Some(id) {
                e.woken_by_other = true;
            }
            if !e.queued {
                e.queued = true;
                if self.stopped_count.get() > 0 && self.stopped.borrow().contains(e.pid) {
                    self.parked.borrow_mut().push(id);
                } else {
                    tasks.ready.push(id);
                }
            }
        }
    }

    /// Runs tasks until virtual time reaches `limit_ns`, nothing is left to
    /// do, or a check fails.
    pub fn run_until(&self, limit_ns: u64) -> Stop {
        self.collect_wakes(None);
        loop {
            if self.checks.failed() {
                return Stop::Failed;
            }
            if self.tasks.borrow().ready.is_empty() {
                let next = self.timers.borrow_mut().next_deadline();
                match next {
                    // An event at the limit belongs to the next phase.
                    Some(t) if t < limit_ns => {
                        if t > self.now.get() {
                            self.now.set(t);
                        }
                        self.fire_timers();
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
            let id = self.pick();
            self.poll(id);
            self.collect_wakes(Some(id));
            let cost = self.poll_cost();
            self.now.set(self.now.get() + cost);
            self.fire_timers();
        }
    }

    /// Fires due timers and runs due actions, then collects the wakes.
    fn fire_timers(&self) {
        let fired = self.timers.borrow_mut().fire_due(self.now.get(), &mut self.actions.borrow_mut());
        if fired == 0 {
            return;
        }
        let mut context_set = false;
        loop {
            // One at a time: an action may schedule timers or wake tasks.
            let Some(action) = self.actions.borrow_mut().pop_front() else { break };
            if !context_set {
                trace::set_context(self.now.get(), 0, 0);
                context_set = true;
            }
            match action {
                Fired::Act(a) => a(),
                Fired::Datagram(slot) => crate::world::deliver_datagram(self, slot),
            }
        }
        self.collect_wakes(None);
    }

    /// The virtual time a poll costs: 16 random bits per poll, four polls
    /// per draw of the poll-cost stream.
    #[inline]
    fn poll_cost(&self) -> u64 {
        let (mut bits, mut left) = self.cost_bits.get();
        if left == 0 {
            bits = self.decisions.borrow_mut().draw(Stream::PollCost);
            left = 4;
        }
        self.cost_bits.set((bits >> 16, left - 1));
        ((bits & 0xffff) * (self.poll_cost_max_ns + 1)) >> 16
    }

    fn pick(&self) -> TaskId {
        let step = self.steps.get();
        self.steps.set(step + 1);
        let mut tasks = self.tasks.borrow_mut();
        let i = self.scheduler.borrow_mut().pick(&tasks.ready, step);
        let id = tasks.ready.swap_remove(i);
        drop(tasks);
        self.decisions.borrow_mut().note(Stream::Schedule, task_key(id));
        id
    }

    fn poll(&self, id: TaskId) {
        let now = self.now.get();
        let (mut fut, pid) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(e) = self.entry(&mut tasks, id) else {
                return;
            };
            e.queued = false;
            if e.woken_by_other {
                e.streak = 0;
            } else {
                e.streak += 1;
            }
            e.woken_by_other = false;
            if e.streak > LIVELOCK_STREAK {
                let msg = format!(
                    "task {:?} (pid {}) was polled {} times in a row with no timer, message or I/O completing in between",
                    e.name, e.pid, e.streak
                );
                drop(tasks);
                self.checks.fail_class(FailureClass::Livelock, "no-busy-loop", msg);
                return;
            }
            let Some(fut) = e.fut.take() else { return };
            (fut, e.pid)
        };
        {
            let mut procs = self.procs.borrow_mut();
            if procs.len() <= pid as usize {
                procs.resize_with(pid as usize + 1, ProcStats::default);
            }
            let stats = &mut procs[pid as usize];
            let sec = (now / 1_000_000_000) as usize;
            if stats.polls_by_second.len() <= sec {
                stats.polls_by_second.resize(sec + 1, 0);
            }
            stats.polls_by_second[sec] += 1;
        }
        self.polls.set(self.polls.get() + 1);
        trace::set_context(now, pid, task_key(id));
        trace::sim_event(2, task_key(id), 0, || "poll".to_owned());
        self.current.set(id);
        let waker = waker::waker(id);
        let mut cx = Context::from_waker(&waker);
        if let Some(w) = &self.watch {
            w.enter_poll();
        }
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
        if let Some(w) = &self.watch {
            w.exit_poll();
            if self.polls.get().is_multiple_of(1024) {
                // The watchdog's report names the hash as of a recent poll.
                w.set_hash(trace::current_hash());
            }
        }
        self.current.set(waker::NO_TASK);
        trace::set_context(self.now.get(), 0, 0);
        if self.is_dead(pid) {
            // Its process ended during this poll (SIGKILL, crash point).
            self.finish(id, pid, fut);
            return;
        }
        match result {
            Ok(Poll::Pending) => {
                let mut tasks = self.tasks.borrow_mut();
                if let Some(e) = self.entry(&mut tasks, id) {
                    e.fut = Some(fut);
                }
            }
            Ok(Poll::Ready(())) => self.finish(id, pid, fut),
            Err(payload) => {
                let msg = warden::env::panic_message(&*payload);
                self.finish(id, pid, fut);
                self.checks.fail_class(FailureClass::Crash, "no-panic", format!("task panicked: {msg}"));
            }
        }
    }

    fn finish(&self, id: TaskId, pid: u32, fut: LocalTask) {
        {
            let mut tasks = self.tasks.borrow_mut();
            let index = (id & 0xffff_ffff) as u32;
            if let Some(slot) = tasks.slots.get_mut(index as usize) {
                slot.entry = None;
                tasks.free.push(index);
            }
        }
        if let Some(stats) = self.procs.borrow_mut().get_mut(pid as usize) {
            stats.live_tasks = stats.live_tasks.saturating_sub(1);
        }
        // Destructors may spawn, wake or trace: no borrow is held here.
        drop(fut);
    }

    /// Drops every task (end of run) without holding a borrow while their
    /// destructors run.
    pub fn shutdown(&self) {
        let futs: Vec<LocalTask> = {
            let mut tasks = self.tasks.borrow_mut();
            tasks.ready.clear();
            tasks.slots.iter_mut().filter_map(|s| s.entry.take().and_then(|e| e.fut)).collect()
        };
        drop(futs);
        self.tasks.borrow_mut().slots.clear();
        *self.timers.borrow_mut() = Timers::default();
        waker::reset();
    }

    /// Whether `name` is a declared mutant and the one switched on.
    pub fn mutant_on(&self, name: &'static str) -> bool {
        if mutants::find(name).is_none() {
            self.checks.fail_class(
                FailureClass::SimError,
                "known-mutant",
                format!("env.mutant({name:?}): no such mutant in warden::env::mutants::ALL"),
            );
            return false;
        }
        mutants::enabled() && self.mutant == Some(name)
    }

    /// Whether faults may be injected now (the safety phase of a scenario
    /// that allows them).
    pub fn faults_allowed(&self) -> bool {
        self.buggify.borrow().fault_phase
    }

    /// Whether the buggify site fires now.
    pub fn buggify(&self, site: &'static str) -> bool {
        let mut b = self.buggify.borrow_mut();
        if !b.allowed || !b.fault_phase {
            return false;
        }
        let enabled = match b.sites.get(site) {
            Some(e) => *e,
            None => {
                let e = match b.forced.get(site) {
                    Some(e) => *e,
                    None => below(self.decisions.borrow_mut().draw(Stream::Faults), 4) == 0,
                };
                b.sites.insert(site, e);
                trace::sim_event(3, u64::from(e), 0, || format!("buggify site {site} enabled={e}"));
                e
            }
        };
        enabled && below(self.decisions.borrow_mut().draw(Stream::Faults), 4) == 0
    }

    /// Names of tasks still alive, for liveness reports.
    pub fn live_task_names(&self) -> Vec<String> {
        let tasks = self.tasks.borrow();
        tasks.slots.iter().filter_map(|s| s.entry.as_ref().map(|e| format!("{} (pid {})", e.name, e.pid))).collect()
    }

    /// Where a replayed schedule stopped matching its record.
    pub fn replay_diverged_at(&self) -> Option<u64> {
        self.scheduler.borrow().diverged_at()
    }

    /// The scheduler's self-description.
    pub fn scheduler_description(&self) -> String {
        self.scheduler.borrow().describe()
    }
}
