//! S, the coordinator: the supervisor side of a handoff. It keeps a copy of
//! every listener (the fd store), starts generations of the service with
//! them, journals every phase, and on request replaces the incumbent O by a
//! successor N (see `step.rs` for the path, `recover.rs` for restarts).

mod admin;
mod after_journal;
mod driver;
mod fdstore;
mod machine;
mod peers;
mod recover;
mod step;
mod types;

pub use admin::{AdminError, parse_reply, request_handoff, request_line};
pub use driver::{CoordinatorHost, CoordinatorSetup, EXIT_LOCKED, run, run_hosted};
pub use machine::Coordinator;
pub use types::{
    CoordinatorAction, CoordinatorBugs, CoordinatorConfig, CoordinatorEvent, CoordinatorPhase, GenSpec, HandoffError,
    Outcome, RequestId,
};

/// Environment variables a generation is started with.
pub mod vars {
    /// `incumbent` or `successor`.
    pub const ROLE: &str = "WARDEN_HANDOFF_ROLE";
    /// The generation's token (16 hex digits).
    pub const TOKEN: &str = "WARDEN_HANDOFF_TOKEN";
    /// The handoff a successor is spawned for (16 hex digits).
    pub const ID: &str = "WARDEN_HANDOFF_ID";
    /// The fd number of the generation's handoff socket (a listener).
    pub const CTL_FD: &str = "WARDEN_HANDOFF_CTL_FD";
    /// Number of listeners passed from fd 3 on (systemd's convention).
    pub const LISTEN_FDS: &str = "LISTEN_FDS";
    /// Their names, `:`-separated.
    pub const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
    /// The pid the listeners are meant for.
    pub const LISTEN_PID: &str = "LISTEN_PID";
}
