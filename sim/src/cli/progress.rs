//! Progress of a long sweep: a bar on a terminal; in a log (no terminal),
//! a line on stderr every few seconds with the seeds done, the rate and
//! the failures so far, so a CI job is never silent for minutes.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a log line is printed without a terminal.
const EVERY: Duration = Duration::from_secs(5);

/// The progress of one scenario's sweep.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
    done: AtomicU64,
    failed: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Progress of `total` seeds of `label`.
    pub(super) fn new(total: u64, label: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} seeds {per_sec} eta {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_owned());
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            label: label.to_owned(),
            total,
            started: now,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_line: Mutex::new(now),
        }
    }

    /// A seed finished (and whether it failed).
    pub(super) fn seed_done(&self, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed = self.failed.fetch_add(u64::from(failed), Ordering::Relaxed) + u64::from(failed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if failed > 0 {
                bar.set_message(format!("{failed} failed"));
            }
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < EVERY {
            return;
        }
        *last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "explore {}: {done}/{} seeds, {:.1} seeds/s, {failed} failed so far",
            self.label,
            self.total,
            done as f64 / secs
        );
    }

    /// The sweep is over.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
