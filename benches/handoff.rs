//! The handoff under load, measured (run by `ci/bench-handoff.sh`, not in
//! CI): `HANDOFF_UPGRADES` (default 20) upgrades of the demo service
//! `handoff-echo` under the real load client, then the same number of
//! stop-then-start restarts of the same service on the same port, the
//! baseline a user would otherwise pick. Prints one line each:
//!
//! ```text
//! handoff: U upgrades, begin->commit p50 X ms p99 Y ms, requests A sent B answered, C refused, D reset
//! naive: U restarts, stop->serving p50 X ms p99 Y ms, requests A sent B answered, C refused, D reset
//! ```
//!
//! begin->commit: from the handoff request on S's admin socket to S's
//! "committed" answer. stop->serving: from SIGTERM to the old process
//! group to the first answer of the new process.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/handoff_support/mod.rs"]
mod handoff_support;

use std::time::{Duration, Instant};

use handoff_support::load::{Load, LoadConfig, Report};
use handoff_support::{Bed, kill, wait_for};
use warden::handoff::coordinator::Outcome;

/// At least this many requests in each run.
const MIN_REQUESTS: u64 = 1000;

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let upgrades: usize = std::env::var("HANDOFF_UPGRADES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    if upgrades == 0 {
        eprintln!("HANDOFF_UPGRADES must be at least 1");
        std::process::exit(2);
    }
    let per_step = MIN_REQUESTS.div_ceil(upgrades as u64 + 1).max(20);
    let handoff = run_handoff(upgrades, per_step);
    println!("{}", line("handoff", upgrades, "upgrades", "begin->commit", &handoff.0, &handoff.1));
    let naive = run_naive(upgrades, per_step);
    println!("{}", line("naive", upgrades, "restarts", "stop->serving", &naive.0, &naive.1));
}

fn line(name: &str, n: usize, what: &str, span: &str, times: &[Duration], r: &Report) -> String {
    format!(
        "{name}: {n} {what}, {span} p50 {:.1} ms p99 {:.1} ms, requests {} sent {} answered, {} refused, {} reset",
        percentile(times, 50),
        percentile(times, 99),
        r.sent(),
        r.answered(),
        r.refused(),
        r.reset()
    )
}

/// The `p`-th percentile (nearest rank) in milliseconds.
fn percentile(times: &[Duration], p: usize) -> f64 {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let rank = (p * ms.len()).div_ceil(100).clamp(1, ms.len().max(1));
    ms.get(rank - 1).copied().unwrap_or(0.0)
}

fn run_handoff(upgrades: usize, per_step: u64) -> (Vec<Duration>, Report) {
    let mut bed = Bed::new("bench", &["--generation", "g0"], &[]);
    bed.start_s(None);
    bed.wait_serving(Duration::from_secs(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    let mut times = Vec::with_capacity(upgrades);
    load.wait_more(per_step, Duration::from_secs(30));
    for i in 1..=upgrades {
        let g = format!("g{i}");
        let begin = Instant::now();
        match bed.upgrade(&["--generation", &g], Duration::from_secs(60)) {
            Ok(Outcome::Committed { .. }) => times.push(begin.elapsed()),
            other => fail(&bed, &format!("upgrade {i}: {other:?}")),
        }
        if !load.wait_more(per_step, Duration::from_secs(30)) {
            fail(&bed, &format!("the load stalled after upgrade {i}"));
        }
    }
    while load.done() < MIN_REQUESTS {
        load.wait_more(per_step, Duration::from_secs(30));
    }
    (times, load.stop())
}

fn run_naive(restarts: usize, per_step: u64) -> (Vec<Duration>, Report) {
    // A plain restart knows nothing of earlier runs: no journal.
    let mut bed = Bed::new("naive", &["--generation", "g0"], &["--fresh"]);
    bed.start_s(None);
    bed.wait_serving(Duration::from_secs(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    let mut times = Vec::with_capacity(restarts);
    load.wait_more(per_step, Duration::from_secs(30));
    for i in 1..=restarts {
        // Stop: SIGTERM to the service's process group, wait until it is gone.
        let stop = Instant::now();
        let s = bed.s_pid();
        let gens = bed.generations();
        // SAFETY: killpg with the group of the S this bed started.
        unsafe { libc::killpg(s as i32, libc::SIGTERM) };
        bed.wait_s_exit(Duration::from_secs(10));
        for g in gens {
            if wait_for(Duration::from_secs(5), || (!handoff_support::alive(g)).then_some(())).is_none() {
                kill(g, libc::SIGKILL);
            }
        }
        // Start: the same service on the same port.
        bed.start_s(None);
        if wait_for(Duration::from_secs(10), || bed.get("/", Duration::from_millis(200)).ok()).is_none() {
            fail(&bed, &format!("restart {i}: the service does not answer"));
        }
        times.push(stop.elapsed());
        load.wait_more(per_step, Duration::from_secs(30));
    }
    while load.done() < MIN_REQUESTS {
        load.wait_more(per_step, Duration::from_secs(30));
    }
    (times, load.stop())
}

fn fail(bed: &Bed, what: &str) -> ! {
    eprintln!("bench failed: {what}\nlog:\n{}", bed.log_tail());
    std::process::exit(1);
}
