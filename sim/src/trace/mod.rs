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

mod hash;
mod kind;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

pub use hash::{HashWriter, RunHasher};
pub use kind::Kind;

use crate::exec::TaskId;

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
        }
    };
}

/// Starts a run on this thread: resets the hash and chooses what to keep.
/// With `hash` off (benchmarks of the features' cost only) nothing is
/// hashed or kept.
pub fn begin_run(hash: bool, tail: bool, dump: bool) {
    install();
    RUN.with(|r| {
        r.active.set(hash);
        r.hash.set(RunHasher::default());
        r.events.set(0);
        r.now_ns.set(0);
        r.pid.set(0);
        r.task.set(TaskId::NONE);
        r.formatting.set(tail || dump);
        *r.capture.borrow_mut() = Capture { tail: tail.then(VecDeque::new), dump: dump.then(Vec::new) };
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
}

/// Ends the run on this thread.
pub fn end_run() -> RunTrace {
    RUN.with(|r| {
        r.active.set(false);
        r.formatting.set(false);
        let cap = std::mem::take(&mut *r.capture.borrow_mut());
        RunTrace {
            hash: r.hash.get().finish(),
            events: r.events.get(),
            tail: cap.tail.map(Vec::from).unwrap_or_default(),
            dump: cap.dump.unwrap_or_default(),
        }
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
            let line = format!("{} {}", prefix(r), describe());
            keep(r, line, h.finish());
        }
    });
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

/// Installs the forwarding subscriber once per OS process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if tracing::subscriber::set_global_default(Forwarder).is_err() {
            eprintln!("warden-sim: another global tracing subscriber is installed; application events are not hashed");
        }
    });
}

/// The global subscriber: forwards to the thread's run, if any.
struct Forwarder;

struct FieldHasher<'a> {
    hash: &'a mut RunHasher,
    text: Option<&'a mut String>,
}

impl Visit for FieldHasher<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.hash.bytes(field.name().as_bytes());
        self.hash.word(value);
        if let Some(t) = &mut self.text {
            let _ = write!(t, " {}={}", field.name(), value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value as u64);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_u64(field, u64::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.hash.bytes(field.name().as_bytes());
        self.hash.bytes(value.as_bytes());
        if let Some(t) = &mut self.text {
            let _ = write!(t, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.hash.bytes(field.name().as_bytes());
        let _ = write!(HashWriter(self.hash), "{value:?}");
        if let Some(t) = &mut self.text {
            if field.name() == "message" {
                let _ = write!(t, " {value:?}");
            } else {
                let _ = write!(t, " {}={:?}", field.name(), value);
            }
        }
    }
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        RUN.with(|r| r.active.get())
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Span ids are never hashed: they depend on allocation order
        // across runs on the same thread.
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        RUN.with(|r| {
            if !r.active.get() {
                return;
            }
            let meta = event.metadata();
            let mut h = r.hash.get();
            h.word(0xe7e7);
            h.word(r.now_ns.get());
            h.word(u64::from(r.pid.get()));
            h.word(r.task.get().key());
            h.bytes(meta.target().as_bytes());
            h.word(u64::from(meta.line().unwrap_or(0)));
            let mut text = r.formatting.get().then(|| format!("{} {:<5} {}:", prefix(r), meta.level(), meta.target()));
            event.record(&mut FieldHasher { hash: &mut h, text: text.as_mut() });
            r.hash.set(h);
            r.events.set(r.events.get() + 1);
            if let Some(line) = text {
                keep(r, line, h.finish());
            }
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
