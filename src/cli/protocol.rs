//! The control socket's protocol: one JSON request line, one JSON reply
//! line. Shared by the server (`warden run`) and the client commands.

use serde::{Deserialize, Serialize};
use warden::service::ServiceStatus;

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub(crate) enum Request {
    /// Every service's status.
    Status,
    /// Start a service.
    Start { service: String },
    /// Stop a service.
    Stop { service: String },
    /// Restart a service.
    Restart { service: String },
    /// Hand a service over to a new process.
    Upgrade { service: String },
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<StatusLine>>,
    /// What was done, for the client to print (`upgrade`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One service in a reply (`warden status --json` prints these).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusLine {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub ready: bool,
    pub critical: bool,
    pub last_exit: Option<String>,
}

impl From<&ServiceStatus> for StatusLine {
    fn from(s: &ServiceStatus) -> Self {
        StatusLine {
            name: s.name.clone(),
            state: s.state.to_owned(),
            pid: s.pid,
            restarts: s.restarts,
            ready: s.ready,
            critical: s.critical,
            last_exit: s.last_exit.clone(),
        }
    }
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply { ok: true, error: None, status: None, message: None }
    }

    pub(crate) fn error(e: impl ToString) -> Reply {
        Reply { ok: false, error: Some(e.to_string()), status: None, message: None }
    }
}
