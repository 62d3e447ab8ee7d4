//! The global `tracing` subscriber: forwards every event to the run
//! active on the calling thread (hashing its structured fields, and
//! keeping its text when asked), and records spans only for a Chrome
//! trace export.

use std::fmt::Write as _;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use super::{HashWriter, RUN, RunHasher, keep, prefix, with_export};

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
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        // Span ids are never hashed: they depend on allocation order
        // across runs on the same thread. Only a Chrome trace export
        // tells spans apart, to draw them.
        let id = with_export(|t, _, _| t.new_span(attrs.metadata().name().to_owned()));
        Id::from_u64(id.unwrap_or(1))
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
                if r.exporting.get() {
                    let what = line.split_once("] ").map_or(line.as_str(), |(_, rest)| rest);
                    if let Some(t) = r.export.borrow_mut().as_mut() {
                        t.instant(None, r.pid.get(), "event", what, r.now_ns.get());
                    }
                }
                keep(r, line, h.finish());
            }
        });
    }
    fn enter(&self, id: &Id) {
        with_export(|t, now, proc| t.enter(proc, id.into_u64(), now));
    }
    fn exit(&self, id: &Id) {
        with_export(|t, now, proc| t.exit(proc, id.into_u64(), now));
    }
}
