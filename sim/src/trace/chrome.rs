//! A run as Chrome trace-event JSON, the format Perfetto's UI opens: one
//! track per simulated process (the trace's `pid` is the host, its `tid`
//! the process), task polls and `tracing` spans as slices on virtual time,
//! messages between processes as flow events, faults and application
//! events as instants, and the failing invariant as the last event.
//!
//! Written by hand, in the order things happened, with timestamps as
//! exact decimals of virtual microseconds: two runs of one seed give the
//! same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The trace of one run being exported.
#[derive(Default)]
pub(crate) struct ChromeTrace {
    events: Vec<String>,
    /// Process -> (host, label).
    procs: BTreeMap<u32, (u32, String)>,
    /// Host -> label.
    hosts: BTreeMap<u32, String>,
    /// Spans entered and not exited, per process (closed at the end of
    /// the poll that entered them, so slices nest).
    open_spans: Vec<(u32, String)>,
    /// Span id -> name (ids are never hashed; they exist only here).
    span_names: Vec<String>,
    /// Flow starts waiting for their end (a message still in flight or
    /// lost is not drawn): id -> the start event.
    flows: BTreeMap<u64, String>,
    next_flow: u64,
    last_ns: u64,
}

/// Virtual nanoseconds as exact microseconds.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// `s` as a JSON string literal.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ChromeTrace {
    fn host_of(&self, proc: u32) -> u32 {
        self.procs.get(&proc).map_or(0, |(h, _)| *h)
    }

    fn push(&mut self, ns: u64, event: String) {
        self.last_ns = self.last_ns.max(ns);
        self.events.push(event);
    }

    /// Process `proc` started on `host`: names its track and the host's.
    pub(crate) fn process(&mut self, proc: u32, host: u32, host_label: &str, label: String) {
        self.hosts.entry(host).or_insert_with(|| host_label.to_owned());
        self.procs.insert(proc, (host, label));
    }

    /// A task of `proc` was polled from `start_ns` for `dur_ns`; spans it
    /// left open close at the end of the slice.
    pub(crate) fn poll(&mut self, proc: u32, task: &str, start_ns: u64, dur_ns: u64) {
        let host = self.host_of(proc);
        let ev = format!(
            r#"{{"ph":"X","cat":"poll","name":{},"ts":{},"dur":{},"pid":{host},"tid":{proc}}}"#,
            quoted(task),
            micros(start_ns),
            micros(dur_ns)
        );
        self.push(start_ns + dur_ns, ev);
        while let Some(i) = self.open_spans.iter().rposition(|(p, _)| *p == proc) {
            let (_, name) = self.open_spans.remove(i);
            self.span_end(proc, &name, start_ns);
        }
    }

    /// A new span: returns its id (from 1).
    pub(crate) fn new_span(&mut self, name: String) -> u64 {
        self.span_names.push(name);
        self.span_names.len() as u64
    }

    /// Process `proc` entered span `id` at `ns`.
    pub(crate) fn enter(&mut self, proc: u32, id: u64, ns: u64) {
        let Some(name) = self.span_names.get(id as usize - 1).cloned() else { return };
        let host = self.host_of(proc);
        let ev = format!(
            r#"{{"ph":"B","cat":"span","name":{},"ts":{},"pid":{host},"tid":{proc}}}"#,
            quoted(&name),
            micros(ns)
        );
        self.push(ns, ev);
        self.open_spans.push((proc, name));
    }

    /// Process `proc` left span `id` at `ns`.
    pub(crate) fn exit(&mut self, proc: u32, id: u64, ns: u64) {
        let Some(name) = self.span_names.get(id as usize - 1).cloned() else { return };
        if let Some(i) = self.open_spans.iter().rposition(|(p, n)| *p == proc && *n == name) {
            self.open_spans.remove(i);
            self.span_end(proc, &name, ns);
        }
    }

    fn span_end(&mut self, proc: u32, name: &str, ns: u64) {
        let host = self.host_of(proc);
        let ev = format!(
            r#"{{"ph":"E","cat":"span","name":{},"ts":{},"pid":{host},"tid":{proc}}}"#,
            quoted(name),
            micros(ns)
        );
        self.push(ns, ev);
    }

    /// A message leaves `proc` at `ns`, inside the slice being polled:
    /// returns the flow's id.
    pub(crate) fn send(&mut self, proc: u32, what: &str, ns: u64) -> u64 {
        self.next_flow += 1;
        let id = self.next_flow;
        let host = self.host_of(proc);
        let ev = format!(
            r#"{{"ph":"s","cat":"msg","name":{},"id":{id},"ts":{},"pid":{host},"tid":{proc},"bp":"e"}}"#,
            quoted(what),
            micros(ns)
        );
        self.flows.insert(id, ev);
        id
    }

    /// Message `id` reaches `proc` at `ns`; `inside` when this happens
    /// within the receiver's poll (a read), else it binds to the
    /// receiver's next slice (a datagram waking its reader).
    pub(crate) fn receive(&mut self, id: u64, proc: u32, what: &str, ns: u64, inside: bool) {
        let Some(start) = self.flows.remove(&id) else { return };
        let host = self.host_of(proc);
        let bind = if inside { r#","bp":"e""# } else { "" };
        let ev = format!(
            r#"{{"ph":"f","cat":"msg","name":{},"id":{id},"ts":{},"pid":{host},"tid":{proc}{bind}}}"#,
            quoted(what),
            micros(ns)
        );
        self.events.push(start);
        self.push(ns, ev);
    }

    /// Something happened at `ns` on `proc`'s track (0: the host's own
    /// track): a fault, a process start or exit, an application event.
    pub(crate) fn instant(&mut self, host: Option<u32>, proc: u32, cat: &str, text: &str, ns: u64) {
        let host = host.unwrap_or_else(|| self.host_of(proc));
        let ev = format!(
            r#"{{"ph":"i","s":"t","cat":{},"name":{},"ts":{},"pid":{host},"tid":{proc}}}"#,
            quoted(cat),
            quoted(text),
            micros(ns)
        );
        self.push(ns, ev);
    }

    /// The whole trace as JSON, ending with `last` (the failing invariant)
    /// as an instant after every other event.
    pub(crate) fn finish(mut self, last: Option<String>) -> String {
        if let Some(text) = last {
            let ns = self.last_ns + 1000;
            let ev = format!(
                r#"{{"ph":"i","s":"g","cat":"failure","name":{},"ts":{},"pid":0,"tid":0}}"#,
                quoted(&text),
                micros(ns)
            );
            self.events.push(ev);
        }
        let mut meta = Vec::new();
        for (host, label) in &self.hosts {
            meta.push(format!(
                r#"{{"ph":"M","name":"process_name","pid":{host},"tid":0,"args":{{"name":{}}}}}"#,
                quoted(label)
            ));
        }
        for (proc, (host, label)) in &self.procs {
            meta.push(format!(
                r#"{{"ph":"M","name":"thread_name","pid":{host},"tid":{proc},"args":{{"name":{}}}}}"#,
                quoted(label)
            ));
        }
        let mut out = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        let all: Vec<&String> = meta.iter().chain(self.events.iter()).collect();
        for (i, e) in all.iter().enumerate() {
            out.push_str(e);
            out.push_str(if i + 1 < all.len() { ",\n" } else { "\n" });
        }
        out.push_str("]}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_times_exact() {
        assert_eq!(quoted("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(micros(1_234_567), "1234.567");
        assert_eq!(micros(5), "0.005");
    }

    #[test]
    fn a_message_lost_on_the_way_draws_no_flow() {
        let mut t = ChromeTrace::default();
        t.process(1, 1, "h1", "a".into());
        t.process(2, 2, "h2", "b".into());
        let delivered = t.send(1, "udp", 10);
        let _lost = t.send(1, "udp", 20);
        t.receive(delivered, 2, "udp", 30, false);
        let json = t.finish(Some("invariant x failed".into()));
        assert_eq!(json.matches(r#""ph":"s""#).count(), 1);
        assert_eq!(json.matches(r#""ph":"f""#).count(), 1);
        assert!(json.trim_end().ends_with(
            r#""pid":0,"tid":0}
]}"#
        ));
    }
}
