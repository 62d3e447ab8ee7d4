//! The handoff on the real OS, end to end: the coordinator S is the
//! `warden` binary's own (`warden handoff-coordinator`), the service is
//! the demo `handoff-echo` (HTTP/1.1), clients are a real tokio load
//! client on loopback. Every test counts what clients saw: accepted,
//! answered, refused, reset, timed out. Each runs under a wall-clock
//! budget that suits a 2-core CI machine, one at a time, and kills every
//! process it started on every exit path (`Bed`'s drop).
//!
//! Needs `--features crash-points` (S kills itself at a named crash point
//! through `WARDEN_CRASH_AT`): `cargo test --features crash-points --test handoff_real`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod handoff_support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use handoff_support::load::{Load, LoadConfig, Report};
use handoff_support::{Bed, alive, children_of, cloexec, fds_of, kill, listener_inode, serial, wait_for};
use warden::handoff::coordinator::Outcome;
use warden::handoff::journal::JournalPhase;

/// S's timings in these tests: short enough for CI, long enough for a
/// loaded 2-core machine.
const S_ARGS: &[&str] = &[
    "--hello-timeout",
    "5s",
    "--drain-grace",
    "5s",
    "--deadline",
    "15s",
    "--ready-timeout",
    "3s",
    "--liveness",
    "3s",
    "--abort-grace",
    "3s",
    "--retire-grace",
    "10s",
    "--retry",
    "200ms",
];
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Fails unless every attempt was answered: none refused, reset, timed out.
fn assert_clean(report: &Report, bed: &Bed, at_least: usize) {
    let failures = report.failures(5);
    assert!(
        failures.is_empty() && report.answered() == report.sent(),
        "requests lost: {}; first failures: {failures:#?}\nlog:\n{}",
        report.summary(),
        bed.log_tail()
    );
    assert!(report.sent() >= at_least, "only {} requests under load (wanted {at_least})", report.summary());
    eprintln!("load: {}", report.summary());
}

/// Fails unless every answer to a request started after `from` came from `pid`.
fn assert_only(report: &Report, from: Instant, pid: u32, when: &str) {
    let mut by: Vec<u32> = report.answered_between(from, Instant::now()).map(|(_, p)| p).collect();
    let n = by.len();
    by.sort_unstable();
    by.dedup();
    assert!(n > 0 && by == [pid], "{when}: {n} answers from {by:?}, not only from {pid}");
}

fn committed(out: Result<Outcome, String>, bed: &Bed) -> u32 {
    match out {
        Ok(Outcome::Committed { pid, .. }) => pid,
        other => panic!("handoff not committed: {other:?}\nlog:\n{}", bed.log_tail()),
    }
}

fn aborted(out: Result<Outcome, String>, bed: &Bed) -> String {
    match out {
        Ok(Outcome::Aborted { reason, .. }) => reason,
        other => panic!("handoff not aborted: {other:?}\nlog:\n{}", bed.log_tail()),
    }
}

/// Waits until S has exactly one child, `pid` (a retired or aborted
/// generation exited).
fn only_generation(bed: &Bed, pid: u32) {
    let s = bed.s_pid();
    wait_for(SECS(15), || (children_of(s) == [pid]).then_some(()))
        .unwrap_or_else(|| panic!("S's children are {:?}, not just {pid}\nlog:\n{}", children_of(s), bed.log_tail()));
}

#[test]
fn twenty_upgrades_under_load_lose_no_request() {
    let _serial = serial();
    let mut bed = Bed::new("load", &["--generation", "g0"], S_ARGS);
    bed.start_s(None);
    let (_, first) = bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    // (requested at, committed at, pid)
    let mut commits = Vec::new();
    let mut pids = vec![first];
    for i in 1..=20 {
        let g = format!("g{i}");
        let asked = Instant::now();
        let pid = committed(bed.upgrade(&["--generation", &g], SECS(30)), &bed);
        commits.push((asked, Instant::now(), pid));
        assert!(!pids.contains(&pid), "generation {i} reuses pid {pid}");
        pids.push(pid);
        assert!(load.wait_more(40, SECS(10)), "the load stalled after upgrade {i}");
    }
    let last = *pids.last().unwrap_or(&0);
    assert!(load.wait_more(40, SECS(10)), "the load stalled after the last upgrade");
    let report = load.stop();
    assert_clean(&report, &bed, 1000);
    // After each commit, until the next request, exactly one generation
    // answers: the committed one.
    for (i, (_, at, pid)) in commits.iter().enumerate() {
        let until = commits.get(i + 1).map_or_else(Instant::now, |c| c.0);
        let mut others: Vec<u32> = report.answered_between(*at, until).map(|(_, p)| p).filter(|p| p != pid).collect();
        others.dedup();
        assert!(others.is_empty(), "after commit {}: answers from {others:?}, not only {pid}", i + 1);
    }
    only_generation(&bed, last);
    assert!(pids[..pids.len() - 1].iter().all(|p| !alive(*p)), "a retired generation is still alive");
    bed.within(SECS(120));
}

/// Runs one S crash at `point`: S is SIGKILLed there during a handoff
/// under load, restarted from its journal, and must converge to one
/// serving generation with no request lost. `lead_in`: a step crash that
/// must happen first (for recovery points).
fn crash_s_at(point: &str, lead_in: Option<&str>) {
    // An abort path reaches these two; the others are on the commit path.
    let abort_path = matches!(point, "handoff.s.after_abort_sent" | "handoff.s.after_resume_sent");
    let mut bed = Bed::new("crash", &["--generation", "o"], S_ARGS);
    bed.gens_die_with_s = false;
    bed.start_s(Some(lead_in.unwrap_or(point)));
    let (_, o) = bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig { fresh_workers: 4, keepalive_workers: 4, ..LoadConfig::new(bed.addr()) });
    assert!(load.wait_more(50, SECS(10)), "the load does not run");
    let n_args: &[&str] = if abort_path { &["--generation", "n", "--unhealthy"] } else { &["--generation", "n"] };
    let out = bed.upgrade(n_args, SECS(30));
    assert!(out.is_err(), "{point}: S answered {out:?} instead of dying");
    let st = bed.wait_s_exit(SECS(10));
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{point}: S did not die by SIGKILL at its crash point: {st:?}");
    if lead_in.is_some() {
        // The restarted S dies again, recovering.
        bed.start_s(Some(point));
        let st = bed.wait_s_exit(SECS(15));
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{point}: S did not die while recovering: {st:?}");
    }
    bed.start_s(None);
    // Converged: the journal is idle, names a live generation that answers
    // every request, and the other generation is gone.
    let serving = wait_for(SECS(20), || {
        let rec = bed.journal().filter(|r| r.phase == JournalPhase::Idle)?;
        let pid = rec.incumbent.pid.filter(|p| alive(*p))?;
        let (_, answered_by) = bed.get("/", SECS(2)).ok()?;
        (answered_by == pid && bed.generations() == [pid]).then_some(pid)
    })
    .unwrap_or_else(|| panic!("{point}: did not converge; journal {:?}\nlog:\n{}", bed.journal(), bed.log_tail()));
    let at = Instant::now();
    assert!(load.wait_more(50, SECS(10)), "{point}: the load stalled after recovery");
    let report = load.stop();
    assert_clean(&report, &bed, 100);
    assert_only(&report, at, serving, &format!("{point}: after converging"));
    eprintln!("{point}: converged on {} ({})", serving, if serving == o { "O" } else { "N" });
}

#[test]
fn s_killed_at_each_crash_point_converges_from_its_journal() {
    let _serial = serial();
    let started = Instant::now();
    let points: Vec<&str> = warden::env::crash::HANDOFF
        .iter()
        .filter(|p| p.name.starts_with("handoff.s.") && p.after_crash_at.is_none())
        .map(|p| p.name)
        .collect();
    let recovery: Vec<&str> = warden::env::crash::HANDOFF
        .iter()
        .filter(|p| p.name.starts_with("handoff.s.") && p.after_crash_at.is_some())
        .map(|p| p.name)
        .collect();
    assert!(points.len() >= 10 && recovery.len() >= 3, "crash points: {points:?} {recovery:?}");
    for p in &points {
        crash_s_at(p, None);
    }
    for p in &recovery {
        crash_s_at(p, Some("handoff.s.after_begin_sent"));
    }
    let took = started.elapsed();
    eprintln!("{} crash points in {:.1} s", points.len() + recovery.len(), took.as_secs_f64());
    assert!(took <= SECS(240), "took {took:?}, over its budget of 240 s");
}

/// A handoff to `n_args` that must be given up while O keeps serving.
fn aborted_under_load(tag: &str, n_args: &[&str], s_extra: &[&str], expect: &str) {
    let _serial = serial();
    let s_args: Vec<&str> = S_ARGS.iter().chain(s_extra).copied().collect();
    let mut bed = Bed::new(tag, &["--generation", "o"], &s_args);
    bed.start_s(None);
    let (_, o) = bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    let reason = aborted(bed.upgrade(n_args, SECS(30)), &bed);
    let at = Instant::now();
    assert!(reason.contains(expect), "aborted for {reason:?}, not {expect:?}");
    assert!(load.wait_more(100, SECS(10)), "the load stalled after the abort");
    let report = load.stop();
    assert_clean(&report, &bed, 200);
    assert_only(&report, at, o, "after the abort");
    only_generation(&bed, o);
    bed.within(SECS(60));
}

#[test]
fn successor_never_ready_is_given_up_and_incumbent_serves() {
    aborted_under_load("never-ready", &["--generation", "n", "--never-ready"], &[], "not ready");
}

#[test]
fn unhealthy_successor_is_never_committed() {
    aborted_under_load("unhealthy", &["--generation", "n", "--unhealthy"], &[], "not healthy");
}

#[test]
fn seal_timeout_resumes_the_incumbent() {
    let _serial = serial();
    // O takes 4 s to seal; S gives up 2 s after the request.
    let s_args: Vec<&str> = S_ARGS.iter().copied().chain(["--deadline", "2s"]).collect();
    let mut bed = Bed::new("seal", &["--generation", "o", "--seal-ms", "4000"], &s_args);
    bed.start_s(None);
    let (_, o) = bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    let reason = aborted(bed.upgrade(&["--generation", "n"], SECS(30)), &bed);
    assert!(reason.contains("seal timed out"), "aborted for {reason:?}");
    // O's seal completes late; it resumes and answers.
    wait_for(SECS(10), || bed.get("/", SECS(5)).ok().filter(|(_, p)| *p == o))
        .unwrap_or_else(|| panic!("O did not serve again\nlog:\n{}", bed.log_tail()));
    assert!(load.wait_more(100, SECS(15)), "the load stalled after the abort");
    let report = load.stop();
    assert_clean(&report, &bed, 200);
    only_generation(&bed, o);
    bed.within(SECS(60));
}

#[test]
fn incumbent_killed_mid_drain_aborts_and_restarts_it() {
    let _serial = serial();
    let mut bed = Bed::new("drain", &["--generation", "o"], S_ARGS);
    bed.start_s(None);
    let (_, o) = bed.wait_serving(SECS(10));
    // A slow request keeps O draining.
    let addr = bed.addr();
    let slow = std::thread::spawn(move || {
        let b = handoff_support::load::parse_body;
        let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut s, b"GET /slow?ms=8000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text).map_err(|e| e.to_string())?;
        text.split_once("\r\n\r\n").and_then(|(_, body)| b(body)).ok_or(format!("answer {text:?}"))
    });
    std::thread::sleep(Duration::from_millis(200));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    let admin = bed.admin();
    let asking = std::thread::spawn(move || {
        let spec = warden::handoff::coordinator::GenSpec {
            program: handoff_support::echo_bin().to_owned(),
            args: vec!["--generation".into(), "n".into()],
        };
        handoff_support::request(&admin, &spec, SECS(30))
    });
    // O is draining (Prepared is journaled before O hears of it): kill it.
    wait_for(SECS(10), || bed.journal().filter(|r| r.phase == JournalPhase::Prepared))
        .unwrap_or_else(|| panic!("the handoff never reached Prepared\nlog:\n{}", bed.log_tail()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(o), "O exited before it was killed");
    kill(o, libc::SIGKILL);
    let reason = aborted(asking.join().expect("the request thread panicked"), &bed);
    assert!(reason.contains("incumbent"), "aborted for {reason:?}: O's death counted against N?");
    // O's program starts again; the listener stayed open meanwhile.
    let (_, again) = bed.wait_serving(SECS(10));
    assert_ne!(again, o, "the killed O answers?");
    assert!(load.wait_more(100, SECS(10)), "the load stalled after the abort");
    let report = load.stop();
    assert_clean(&report, &bed, 200);
    only_generation(&bed, again);
    assert!(slow.join().expect("slow request thread").is_err(), "the request O held answered though O was killed");
    bed.within(SECS(60));
}

#[test]
fn hundred_upgrades_keep_fds_flat_cloexec_and_out_of_grandchildren() {
    let _serial = serial();
    let mut bed = Bed::new("fds", &["--grandchild"], S_ARGS);
    bed.start_s(None);
    bed.wait_serving(SECS(10));
    let s = bed.s_pid();
    let inode = listener_inode(bed.port).expect("no listening socket on the port");
    let load = Load::start(LoadConfig { fresh_workers: 2, keepalive_workers: 2, ..LoadConfig::new(bed.addr()) });
    let mut baseline = None;
    for i in 1..=100 {
        let pid = committed(bed.upgrade(&["--grandchild"], SECS(30)), &bed);
        if i % 10 != 0 {
            continue;
        }
        only_generation(&bed, pid);
        let s_fds = fds_of(s);
        let n = s_fds.len();
        eprintln!("after {i} upgrades: S holds {n} fds");
        let base = *baseline.get_or_insert(n);
        assert_eq!(n, base, "S's fds grew from {base} to {n} after {i} upgrades: {s_fds:?}");
        for (who, p) in [("S", s), ("the generation", pid)] {
            for (fd, what) in fds_of(p).into_iter().filter(|(fd, _)| *fd > 2) {
                // None: closed since it was listed (a client's connection).
                let flag = cloexec(p, fd);
                assert_ne!(flag, Some(false), "{who} {p}: fd {fd} ({what}) is not close-on-exec");
            }
        }
        let grandchildren = children_of(pid);
        assert!(!grandchildren.is_empty(), "the generation started no grandchild");
        for g in grandchildren {
            let fds = fds_of(g);
            assert!(
                fds.iter().all(|(fd, what)| *fd <= 2 && !what.contains(&inode)),
                "grandchild {g} holds {fds:?} (the listener is socket:[{inode}])"
            );
        }
    }
    let report = load.stop();
    assert_clean(&report, &bed, 100);
    bed.within(SECS(150));
}

#[test]
fn successor_clearing_o_nonblock_does_not_stall_the_incumbent() {
    let _serial = serial();
    let s_args: Vec<&str> = S_ARGS.iter().copied().chain(["--ready-timeout", "1s"]).collect();
    let mut bed = Bed::new("nonblock", &["--generation", "o"], &s_args);
    bed.start_s(None);
    let (_, o) = bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    // N clears O_NONBLOCK on the listener it shares with O, then is given up.
    let reason = aborted(bed.upgrade(&["--generation", "n1", "--never-ready", "--clear-nonblock"], SECS(30)), &bed);
    assert!(reason.contains("not ready"), "aborted for {reason:?}");
    let flags = std::fs::read_to_string(format!("/proc/{o}/fdinfo/3")).unwrap_or_default();
    let flags = flags.lines().find_map(|l| l.strip_prefix("flags:")).map(str::trim).unwrap_or("?");
    assert!(
        u32::from_str_radix(flags, 8).is_ok_and(|f| f & 0o4000 == 0),
        "O_NONBLOCK still set ({flags}): N did not clear it"
    );
    // One client at a time: a blocking accept in O would stall each answer
    // until the next connection arrives.
    for i in 0..50 {
        let (_, by) = bed.get("/", SECS(3)).unwrap_or_else(|e| panic!("request {i} after the abort: {e}"));
        assert_eq!(by, o, "request {i} answered by {by}, not O");
    }
    // A successor that clears it is committed and serves too.
    let n = committed(bed.upgrade(&["--generation", "n2", "--clear-nonblock"], SECS(30)), &bed);
    for i in 0..50 {
        let (_, by) = bed.get("/", SECS(3)).unwrap_or_else(|e| panic!("request {i} after the commit: {e}"));
        assert_eq!(by, n, "request {i} answered by {by}, not N");
    }
    assert!(load.wait_more(100, SECS(10)), "the load stalled");
    let report = load.stop();
    assert_clean(&report, &bed, 200);
    bed.within(SECS(60));
}

#[test]
fn a_second_upgrade_during_one_is_refused_with_its_id_and_phase() {
    let _serial = serial();
    // O seals slowly, so the first handoff is surely in progress.
    let mut bed = Bed::new("overlap", &["--generation", "o", "--seal-ms", "1500"], S_ARGS);
    bed.start_s(None);
    bed.wait_serving(SECS(10));
    let load = Load::start(LoadConfig::new(bed.addr()));
    assert!(load.wait_more(100, SECS(10)), "the load does not run");
    let admin = bed.admin();
    let first = std::thread::spawn(move || {
        let spec = warden::handoff::coordinator::GenSpec {
            program: handoff_support::echo_bin().to_owned(),
            args: vec!["--generation".into(), "n1".into()],
        };
        handoff_support::request(&admin, &spec, SECS(30))
    });
    wait_for(SECS(10), || bed.journal().filter(|r| r.in_progress()))
        .unwrap_or_else(|| panic!("the first handoff never started\nlog:\n{}", bed.log_tail()));
    let second = bed.upgrade(&["--generation", "n2"], SECS(30));
    let err = second.expect_err("a second handoff was taken while one is in progress");
    assert!(err.contains("in progress") && err.contains("phase"), "refused with {err:?}");
    let n1 = committed(first.join().expect("the first request's thread panicked"), &bed);
    let (generation, by) = bed.get("/", SECS(5)).unwrap_or_else(|e| panic!("after the commit: {e}"));
    assert_eq!((generation.as_str(), by), ("n1", n1), "the refused handoff changed something");
    only_generation(&bed, n1);
    assert!(load.wait_more(100, SECS(10)), "the load stalled");
    let report = load.stop();
    assert_clean(&report, &bed, 200);
    bed.within(SECS(60));
}
