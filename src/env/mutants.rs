//! The one list of mutants: known historical bugs that `env.mutant(name)`
//! switches back on (cargo feature `mutants`), so that the simulator can
//! prove its scenarios catch them.

/// A named, re-introducible bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutant {
    /// The frozen name used on command lines and in scenario files.
    pub name: &'static str,
    /// What the bug does, for `warden-sim mutants` and error messages.
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
];

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
    }
}
