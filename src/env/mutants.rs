//! The one list of mutants: known historical bugs that `env.mutant(name)`
//! switches back on (cargo feature `mutants`), so that the simulator can
//! prove its scenarios catch them.

/// A named, re-introducible bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutant {
    /// The frozen name used on command lines and in scenario files.
    pub name: &'static str,
    /// What the bug does, for `warden-sim list` and error messages.
    pub bug: &'static str,
}

/// Every mutant warden knows; an unknown name is an error everywhere.
pub const ALL: &[Mutant] = &[
    Mutant {
        name: "selftest-lost-update",
        bug: "read-modify-write of a shared counter with a yield in between (no lock)",
    },
    Mutant {
        name: "selftest-pct-depth3",
        bug: "a two-step update with a yield between the steps: a reader that runs after exactly the right two preemptions sees it torn",
    },
    Mutant {
        name: "selftest-busy-loop",
        bug: "a waiter spins on a flag with yield_now instead of awaiting a notification",
    },
    Mutant {
        name: "rename-no-dirsync",
        bug: "replaces a file by rename without fsyncing the directory: a host crash undoes the rename",
    },
    Mutant {
        name: "torn-record-accepted",
        bug: "a journal reader trusts a record's length prefix and accepts a torn final record",
    },
    Mutant {
        name: "pid-reuse-trusted",
        bug: "signals a remembered pid after its process exited and the number was reused",
    },
    Mutant {
        name: "listener-closed-with-first-holder",
        bug: "closes a passed listener when its first holder dies, although another process holds it",
    },
    Mutant {
        name: "selftest-nondeterministic",
        bug: "iterates a randomly seeded std HashMap, so the order of events differs between processes",
    },
    Mutant {
        name: "selftest-leaky-static",
        bug: "keeps a counter in a process-wide static hidden behind a newtype: a seed re-run in the same process is another run",
    },
    Mutant {
        name: "gate-no-watermark",
        bug: "the re-register gate keeps no success watermark: a straggler reaching it after a success registers again",
    },
    Mutant {
        name: "gate-stamp-on-failure",
        bug: "a failed register stamps the success watermark, hiding the deletion its retry was to recover",
    },
    Mutant {
        name: "gate-recovery-uses-caller-cancel",
        bug: "recovery runs under the reporting heartbeat's token, which pruning cancels: the register is abandoned",
    },
    Mutant {
        name: "gate-slot-kept-on-success",
        bug: "a successful register leaves the gate's slot for the rest of the window, suppressing a later deletion",
    },
    Mutant {
        name: "gate-append-runtimes",
        bug: "the register response is appended to the key's runtime set instead of replacing it, duplicating siblings",
    },
    Mutant {
        name: "gate-no-follow-up",
        bug: "a claim coalesced behind an in-flight register is dropped, losing a deletion that landed after it was applied",
    },
    Mutant {
        name: "done-on-signal",
        bug: "a runnable enters DONE when it signals Done, before it returned: GC restarts its parent under it (seed 000)",
    },
    Mutant {
        name: "recover-restarts-clean-return",
        bug: "run-with-recover restarts a function that returned cleanly, as if it had panicked",
    },
    Mutant {
        name: "immediate-return-is-exit",
        bug: "a service start that returns at once (serving in the background) is taken for an exit and restarted in a loop",
    },
    Mutant {
        name: "busy-spin-after-cancel",
        bug: "the controller's error handler never disables its cancelled branch and spins after shutdown",
    },
    Mutant {
        name: "stop-waits-forever",
        bug: "stop functions run with no deadline: one that ignores its context hangs wait() forever",
    },
    Mutant { name: "readiness-fails-open", bug: "a readiness check that has not completed yet counts as ready" },
    Mutant { name: "start-not-idempotent", bug: "a second start() starts every service again" },
    // Handoff (seed 004).
    Mutant {
        name: "handoff-seal-timeout-no-resume",
        bug: "a seal timeout or SealFailed aborts without ResumeAfterAbort: O stays sealed and nobody serves",
    },
    Mutant { name: "handoff-commit-unhealthy", bug: "Ready with healthz_ok = false is committed" },
    Mutant {
        name: "handoff-journal-ignored-on-restart",
        bug: "a restarted coordinator ignores its journal and starts afresh, orphaning the handoff's generations",
    },
    Mutant {
        name: "handoff-incumbent-death-unhandled",
        bug: "O dying during drain or seal is not acted on: the handoff times out and nobody is restarted",
    },
    Mutant {
        name: "handoff-listener-closed-early",
        bug: "S gives its listener copies to N at spawn and keeps none, so a listener closes when its holders die",
    },
    Mutant {
        name: "handoff-stale-frame-accepted",
        bug: "frames carrying another handoff's id are acted on (a late ResumeAfterAbort resumes a sealed O)",
    },
    // The service manager (warden run).
    Mutant {
        name: "service-stop-unordered",
        bug: "the service manager stops every service at once instead of dependents first",
    },
    Mutant {
        name: "service-orphan-on-exit",
        bug: "a service that ignores its stop signal is forgotten at its stop timeout, not killed: it outlives warden",
    },
    Mutant {
        name: "service-on-failure-restarts-clean-exit",
        bug: "restart = on-failure restarts a service that exited with status 0",
    },
    Mutant {
        name: "gate-gives-up",
        bug: "the re-register gate stops retrying a key after 6 failed registers: a partial deletion is never recovered",
    },
    // The gate against a real registry (issue 16).
    Mutant {
        name: "gate-unconditional-register",
        bug: "a register applies unconditionally: a retry after a reply lost past the apply registers twice",
    },
];

/// Mutants that re-introduce a regression of warden's own design rather
/// than a bug a seed fixed or names: listed apart by `warden-sim list`.
pub const REGRESSIONS: &[&str] = &["gate-no-follow-up", "gate-gives-up"];

/// Whether mutant `name` is one of warden's own regressions.
pub fn is_regression(name: &str) -> bool {
    REGRESSIONS.contains(&name)
}

/// Whether warden was built with the `mutants` feature, so mutants can fire.
pub fn enabled() -> bool {
    cfg!(feature = "mutants")
}

/// Looks a mutant up by name.
pub fn find(name: &str) -> Option<&'static Mutant> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut names: Vec<_> = super::ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::ALL.len(), "duplicate mutant name");
        for n in names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{n}");
        }
        for r in super::REGRESSIONS {
            assert!(super::find(r).is_some(), "regression {r} is not a declared mutant");
        }
    }
}
