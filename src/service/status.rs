//! What `warden status`, `/status`, `/readyz` and `/metrics` show of a
//! service: a snapshot the driver publishes after every step.

/// One service, as the outside sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// `waiting`, `starting`, `running`, `stopping`, `backoff`, `exited`,
    /// `failed` or `stopped`.
    pub state: &'static str,
    /// The pid of its process, when one runs.
    pub pid: Option<u32>,
    /// Automatic restarts since warden started.
    pub restarts: u64,
    /// Its readiness check passed for the running process (always true
    /// for a running service without a check).
    pub ready: bool,
    /// It has a readiness check (`/readyz` waits for those).
    pub has_check: bool,
    /// How its last process ended.
    pub last_exit: Option<String>,
    /// Its failure stops warden.
    pub critical: bool,
}

impl ServiceStatus {
    /// Whether a process runs.
    pub fn up(&self) -> bool {
        self.pid.is_some()
    }

    /// Whether it serves: running and ready (what `/metrics` reports ready
    /// and what the registry registers).
    pub fn serving(&self) -> bool {
        self.state == "running" && self.ready
    }

    /// Why `/readyz` fails for it, if it does: a service with a check must
    /// be running and ready; one that exited cleanly counts as done. Fails
    /// closed: every other state is a reason.
    pub fn not_ready_reason(&self) -> Option<String> {
        if !self.has_check || self.state == "exited" || self.serving() {
            return None;
        }
        Some(match self.state {
            "running" => format!("{}: readiness check has not passed", self.name),
            state => format!("{}: {state}", self.name),
        })
    }
}
