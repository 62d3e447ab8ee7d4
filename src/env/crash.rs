//! Named crash points: every step where a crash changes the outcome calls
//! `crash_point!(env, "protocol.role.step").await`. Names are declared in
//! one list per protocol (collected in [`ALL`]), so the simulator and
//! real-process tests can enumerate and sweep them.
//!
//! In the simulator a fault plan crashes the process at the k-th hit of a
//! point. In the real binary a crash point compiles to nothing unless the
//! `crash-points` feature is on; then `WARDEN_CRASH_AT=name[:k]` makes the
//! process SIGKILL itself at the k-th hit (default the first).

/// A declared crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    /// `protocol.role.step`, e.g. `handoff.s.after_begin_sent`.
    pub name: &'static str,
    /// For a step reached only while a process recovers from an earlier
    /// crash (reading its journal after a restart): the name prefix of the
    /// points whose crash leads there. A fault plan that targets such a
    /// point first crashes the process at one of those.
    pub after_crash_at: Option<&'static str>,
}

impl CrashPoint {
    /// A point reached in a normal run.
    pub const fn step(name: &'static str) -> CrashPoint {
        CrashPoint { name, after_crash_at: None }
    }

    /// A point reached only after a crash at a point named `lead_in*`.
    pub const fn recovery(name: &'static str, lead_in: &'static str) -> CrashPoint {
        CrashPoint { name, after_crash_at: Some(lead_in) }
    }
}

/// Crash points of the simulator's own self-test programs (a journal
/// writer), used to prove crash handling before the protocols arrive.
pub const SELFTEST: &[CrashPoint] =
    &[CrashPoint::step("selftest.journal.after_append"), CrashPoint::step("selftest.journal.after_sync")];

/// Crash points of the handoff (seed 004): the coordinator S (`handoff.s.*`,
/// its recovery steps under `handoff.s.recover.*`), the incumbent O
/// (`handoff.o.*`) and the successor N (`handoff.n.*`).
pub const HANDOFF: &[CrashPoint] = &[
    CrashPoint::step("handoff.s.after_lease"),
    CrashPoint::step("handoff.s.after_o_hello"),
    CrashPoint::step("handoff.s.after_spawn_successor"),
    CrashPoint::step("handoff.s.after_n_hello"),
    CrashPoint::step("handoff.s.after_prepare_sent"),
    CrashPoint::step("handoff.s.after_drained_recv"),
    CrashPoint::step("handoff.s.after_seal_request_sent"),
    CrashPoint::step("handoff.s.after_seal_complete_recv"),
    CrashPoint::step("handoff.s.after_begin_sent"),
    CrashPoint::step("handoff.s.after_ready_recv"),
    CrashPoint::step("handoff.s.after_commit_sent"),
    CrashPoint::step("handoff.s.after_journal_clear"),
    CrashPoint::step("handoff.s.after_abort_sent"),
    CrashPoint::step("handoff.s.after_resume_sent"),
    CrashPoint::recovery("handoff.s.recover.after_journal_read", "handoff.s."),
    CrashPoint::recovery("handoff.s.recover.after_reidentify", "handoff.s."),
    CrashPoint::recovery("handoff.s.recover.after_decision", "handoff.s."),
    CrashPoint::step("handoff.o.after_prepare_recv"),
    CrashPoint::step("handoff.o.after_drained_sent"),
    CrashPoint::step("handoff.o.after_seal_request_recv"),
    CrashPoint::step("handoff.o.after_seal_complete_sent"),
    CrashPoint::step("handoff.o.after_commit_recv"),
    CrashPoint::step("handoff.o.after_resumed"),
    CrashPoint::step("handoff.n.after_listeners_adopted"),
    CrashPoint::step("handoff.n.after_hello"),
    CrashPoint::step("handoff.n.after_begin_recv"),
    CrashPoint::step("handoff.n.after_ready_sent"),
    CrashPoint::step("handoff.n.after_commit_recv"),
];

/// Crash points of the service manager's driver (`warden run`): warden
/// dies right after it spawned a service, signalled one, or learnt that
/// one exited. Its services must not outlive it (PR_SET_PDEATHSIG).
pub const SERVICE: &[CrashPoint] = &[
    CrashPoint::step("service.driver.after_spawn"),
    CrashPoint::step("service.driver.after_signal"),
    CrashPoint::step("service.driver.after_exit"),
];

/// Every declared list, by protocol.
pub const ALL: &[(&str, &[CrashPoint])] = &[("selftest", SELFTEST), ("handoff", HANDOFF), ("service", SERVICE)];

/// The declared crash point called `name`.
pub fn find(name: &str) -> Option<&'static CrashPoint> {
    all().find(|p| p.name == name)
}

/// Whether `name` is a declared crash point.
pub fn is_declared(name: &str) -> bool {
    find(name).is_some()
}

/// Every declared crash point.
pub fn all() -> impl Iterator<Item = &'static CrashPoint> {
    ALL.iter().flat_map(|(_, points)| points.iter())
}

/// Every declared crash point's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    all().map(|p| p.name)
}

/// Parses `WARDEN_CRASH_AT`: `name` or `name:k` (k >= 1).
pub fn parse_target(spec: &str) -> Result<(String, u64), String> {
    let (name, k) = match spec.rsplit_once(':') {
        Some((n, k)) => {
            (n, k.parse::<u64>().map_err(|_| format!("WARDEN_CRASH_AT={spec:?}: k must be a positive integer"))?)
        }
        None => (spec, 1),
    };
    if k == 0 {
        return Err(format!("WARDEN_CRASH_AT={spec:?}: k must be at least 1"));
    }
    if !is_declared(name) {
        return Err(format!("WARDEN_CRASH_AT={spec:?}: no crash point named {name:?}"));
    }
    Ok((name.to_owned(), k))
}

/// Crashes the process here if the run's fault plan says so.
#[macro_export]
macro_rules! crash_point {
    ($env:expr, $name:expr) => {
        $crate::env::Env::crash_point(&$env, $name)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_targets_parse() {
        let mut all: Vec<_> = names().collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a crash point is declared twice");
        for p in super::all() {
            if let Some(lead) = p.after_crash_at {
                assert!(
                    super::all().any(|q| q.after_crash_at.is_none() && q.name.starts_with(lead)),
                    "{}: no ordinary point starts with {lead:?}",
                    p.name
                );
            }
        }
        assert_eq!(parse_target("selftest.journal.after_sync:3"), Ok(("selftest.journal.after_sync".into(), 3)));
        assert_eq!(parse_target("selftest.journal.after_sync"), Ok(("selftest.journal.after_sync".into(), 1)));
        assert!(parse_target("nope").is_err());
        assert!(parse_target("selftest.journal.after_sync:0").is_err());
    }
}
