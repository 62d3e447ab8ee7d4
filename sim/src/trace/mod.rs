//! Trace capture and the run hash.
//!
//! One global `tracing` subscriber is installed once per OS process and
//! forwards every event to the sink of the run active on the calling
//! thread, so parallel `cargo test` threads and explorer workers do not see
//! each other's events. (A callsite first hit with no subscriber would be
//! cached as "never" for the whole process; the forwarder answers
//! "sometimes" for every callsite instead and decides per event.)
//!
//! The hash covers the simulator's own events (virtual time, pid, task,
//! decision) and the structured fields of application events, never span
//! ids or the seed. Fields are hashed as they stream; text is only
//! formatted when a tail or an event dump was asked for.

mod chrome;
mod forward;
mod hash;
mod kind;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

pub use forward::install;
pub use hash::{HashWriter, RunHasher};
pub use kind::Kind;

use crate::exec::TaskId;
use chrome::ChromeTrace;

/// How many formatted events a failure report shows.
pub const TAIL_LINES: usize = 40;

/// What the current run on this thread keeps besides the hash.
#[derive(Default)]
struct Capture {
    tail: Option<VecDeque<String>>,
    dump: Option<Vec<String>>,
}

struct RunLocal {
    active: Cell<bool>,
    hash: Cell<RunHasher>,
    events: Cell<u64>,
    now_ns: Cell<u64>,
    pid: Cell<u32>,
    task: Cell<TaskId>,
    formatting: Cell<bool>,
    capture: RefCell<Capture>,
    /// The Chrome trace being exported, if asked for.
    export: RefCell<Option<ChromeTrace>>,
    exporting: Cell<bool>,
}

thread_local! {
    // Const-initialised: no lazy-init check on the per-poll path.
    static RUN: RunLocal = const {
        RunLocal {
            active: Cell::new(false),
            hash: Cell::new(RunHasher::EMPTY),
            events: Cell::new(0),
            now_ns: Cell::new(0),
            pid: Cell::new(0),
            task: Cell::new(TaskId::NONE),
            formatting: Cell::new(false),
            capture: RefCell::new(Capture { tail: None, dump: None }),
            export: RefCell::new(None),
            exporting: Cell::new(false),
        }
    };
}

/// What a run keeps of its events besides the hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    /// Hash the events (off only to measure what hashing costs).
    pub hash: bool,
    /// The last formatted events, for a failure report.
    pub tail: bool,
    /// Every event with the hash after it (check-determinism).
    pub dump: bool,
    /// A Chrome trace of the run (`run --trace`).
    pub chrome: bool,
}

/// Starts a run on this thread: resets the hash and chooses what to keep.
/// With `hash` off (benchmarks of the features' cost only) nothing is
/// hashed or kept.
pub fn begin_run(keep: Keep) {
    let Keep { hash, tail, dump, chrome } = keep;
    install();
    RUN.with(|r| {
        r.active.set(hash);
        r.hash.set(RunHasher::default());
        r.events.set(0);
        r.now_ns.set(0);
        r.pid.set(0);
        r.task.set(TaskId::NONE);
        r.formatting.set(tail || dump || chrome);
        *r.capture.borrow_mut() = Capture { tail: tail.then(VecDeque::new), dump: dump.then(Vec::new) };
        *r.export.borrow_mut() = chrome.then(ChromeTrace::default);
        r.exporting.set(chrome);
    });
}

/// What a finished run leaves: its hash, event count, tail and dump.
pub struct RunTrace {
    /// The run hash.
    pub hash: u64,
    /// How many events were hashed.
    pub events: u64,
    /// The last [`TAIL_LINES`] formatted events, if asked for.
    pub tail: Vec<String>,
    /// Every hashed event with the hash after it, if asked for.
    pub dump: Vec<String>,
    /// The Chrome trace JSON, if asked for.
    pub chrome: Option<String>,
}

/// Ends the run on this thread; `failure` ends the Chrome trace.
pub fn end_run(failure: Option<String>) -> RunTrace {
    RUN.with(|r| {
        r.active.set(false);
        r.formatting.set(false);
        r.exporting.set(false);
        let cap = std::mem::take(&mut *r.capture.borrow_mut());
        let chrome = r.export.borrow_mut().take().map(|t| t.finish(failure));
        RunTrace {
            hash: r.hash.get().finish(),
            events: r.events.get(),
            tail: cap.tail.map(Vec::from).unwrap_or_default(),
            dump: cap.dump.unwrap_or_default(),
            chrome,
        }
    })
}

/// Whether a Chrome trace is being exported (callers skip building what
/// it needs otherwise).
#[inline]
pub fn exporting() -> bool {
    RUN.with(|r| r.exporting.get())
}

/// Runs `f` on the Chrome trace being exported, with the current virtual
/// time and process.
pub(crate) fn with_export<T>(f: impl FnOnce(&mut ChromeTrace, u64, u32) -> T) -> Option<T> {
    RUN.with(|r| {
        if !r.exporting.get() {
            return None;
        }
        let mut e = r.export.borrow_mut();
        e.as_mut().map(|t| f(t, r.now_ns.get(), r.pid.get()))
    })
}

/// The hash so far (for the watchdog's report).
pub fn current_hash() -> u64 {
    RUN.with(|r| r.hash.get().finish())
}

/// Sets the context events are attributed to: virtual time, process, task.
#[inline]
pub fn set_context(now_ns: u64, pid: u32, task: TaskId) {
    RUN.with(|r| {
        r.now_ns.set(now_ns);
        r.pid.set(pid);
        r.task.set(task);
    });
}

/// Hashes a simulator event: a kind tag and up to three words.
/// `describe` is only called when text is being kept.
#[inline]
pub fn sim_event(kind: Kind, a: u64, b: u64, describe: impl FnOnce() -> String) {
    RUN.with(|r| {
        if !r.active.get() {
            return;
        }
        let mut h = r.hash.get();
        h.word(kind as u64);
        h.word(r.now_ns.get());
        h.word(a);
        h.word(b);
        r.hash.set(h);
        r.events.set(r.events.get() + 1);
        if r.formatting.get() {
            let text = describe();
            if r.exporting.get() {
                export_sim_event(r, kind, a, &text);
            }
            let line = format!("{} {text}", prefix(r));
            keep(r, line, h.finish());
        }
    });
}

/// The simulator events a Chrome trace shows as instants: faults and the
/// ends of processes.
fn export_sim_event(r: &RunLocal, kind: Kind, a: u64, text: &str) {
    let (host, proc, cat) = match kind {
        Kind::HostCrash | Kind::HostBoot => (Some(a as u32), 0, "fault"),
        Kind::Exit | Kind::Signal => (None, a as u32, "process"),
        Kind::CrashPoint | Kind::Partition | Kind::Buggify => (None, r.pid.get(), "fault"),
        Kind::Spawn | Kind::Poll | Kind::Start | Kind::Notify => return,
    };
    if let Some(t) = r.export.borrow_mut().as_mut() {
        t.instant(host, proc, cat, text, r.now_ns.get());
    }
}

fn prefix(r: &RunLocal) -> String {
    let t = r.now_ns.get();
    format!(
        "[{:>4}.{:06}s pid={} task={}]",
        t / 1_000_000_000,
        (t % 1_000_000_000) / 1000,
        r.pid.get(),
        task_label(r.task.get())
    )
}

/// A task's slab index, or `-` outside any task.
fn task_label(t: TaskId) -> String {
    if t == TaskId::NONE { "-".to_owned() } else { t.index().to_string() }
}

fn keep(r: &RunLocal, line: String, hash: u64) {
    let mut cap = r.capture.borrow_mut();
    if let Some(dump) = &mut cap.dump {
        dump.push(format!("#{} {:016x} {}", r.events.get(), hash, line));
    }
    if let Some(tail) = &mut cap.tail {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}
