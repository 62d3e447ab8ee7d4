//! Named buggify sites: places where a delay or a late step widens a real
//! race window. `buggify!(env, "protocol.step")` fires, in the simulator,
//! in a quarter of the hits of a site that is switched on for the run (a
//! quarter of the runs that allow buggify); with the real backend it never
//! fires. Names are declared here, in one list, so a fault plan that names
//! a site can be checked and a run can report the sites it reached.

/// A declared buggify site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// `protocol.step`, e.g. `gate.gone.after_prune`.
    pub name: &'static str,
    /// The window it widens.
    pub widens: &'static str,
}

/// Every declared site.
pub const ALL: &[Site] = &[
    Site {
        name: "supervisor.tree.late_exit",
        widens: "a runnable returned but its exit is processed late: GC and other exits run in between",
    },
    Site {
        name: "supervisor.recover.slow_return",
        widens: "a run of run-with-recover ended; the loop decides late whether to restart, while a cancel may land",
    },
    Site {
        name: "supervisor.lifecycle.late_signal",
        widens: "a signal reaches the lifecycle machine late, after other inputs it raced with",
    },
    Site {
        name: "supervisor.lifecycle.spurious_wake",
        widens: "the lifecycle timer loop wakes before any deadline: the machine must not act early",
    },
    Site {
        name: "gate.gone.after_prune",
        widens: "a gone report between pruning its runtime and stopping the heartbeat: a peer registers meanwhile",
    },
    Site {
        name: "gate.gone.before_gate",
        widens: "a gone report between stopping the heartbeat and reaching the gate: it arrives as a straggler",
    },
    Site {
        name: "gate.sync.before_gate",
        widens: "the sync loop's report of a drained key between reading the set and the gate: a peer registers meanwhile",
    },
    Site {
        name: "handoff.s.late_frame",
        widens: "a frame of an earlier handoff reaches a generation late, during a later handoff: it must be ignored",
    },
];

/// The declared site called `name`.
pub fn find(name: &str) -> Option<&'static Site> {
    ALL.iter().find(|s| s.name == name)
}

/// Whether this fault-injection site fires now (see the module docs).
#[macro_export]
macro_rules! buggify {
    ($env:expr, $site:literal) => {
        $crate::env::Env::buggify_site(&$env, $site)
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = super::ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::ALL.len(), "a buggify site is declared twice");
    }
}
