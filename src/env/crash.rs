//! Named crash points: every step where a crash changes the outcome calls
//! `crash_point!(env, "protocol.role.step").await`. Names are declared in
//! one list per protocol (collected in [`ALL`]), so the simulator and
//! real-process tests can enumerate and sweep them.
//!
//! In the simulator a fault plan crashes the process at the k-th hit of a
//! point. In the real binary a crash point compiles to nothing unless the
//! `crash-points` feature is on; then `WARDEN_CRASH_AT=name[:k]` makes the
//! process SIGKILL itself at the k-th hit (default the first).

/// Crash points of the simulator's own self-test programs (a journal
/// writer), used to prove crash handling before the protocols arrive.
pub const SELFTEST: &[&str] = &["selftest.journal.after_append", "selftest.journal.after_sync"];

/// Every declared list, by protocol.
pub const ALL: &[(&str, &[&str])] = &[("selftest", SELFTEST)];

/// Whether `name` is a declared crash point.
pub fn is_declared(name: &str) -> bool {
    ALL.iter().any(|(_, names)| names.contains(&name))
}

/// Every declared crash point.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().flat_map(|(_, names)| names.iter().copied())
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
        assert_eq!(parse_target("selftest.journal.after_sync:3"), Ok(("selftest.journal.after_sync".into(), 3)));
        assert_eq!(parse_target("selftest.journal.after_sync"), Ok(("selftest.journal.after_sync".into(), 1)));
        assert!(parse_target("nope").is_err());
        assert!(parse_target("selftest.journal.after_sync:0").is_err());
    }
}
