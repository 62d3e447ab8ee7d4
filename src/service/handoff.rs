//! Services with `handoff = true`: warden runs each under its own handoff
//! coordinator S (the `warden` binary as `warden handoff-coordinator`),
//! and the manager supervises S as the service's process. S receives the
//! service's listeners (warden keeps its copies for its whole life), starts
//! the service's command as the first generation, and hands the service
//! over to a new process of the same command when `warden upgrade` asks
//! (`coordinator::request_handoff` on S's admin socket).
//!
//! Generations die with S (PR_SET_PDEATHSIG) and S dies with warden, so
//! nothing outlives warden; a restarted S starts fresh (its journal names
//! generations that died with the previous S), while clients wait in the
//! backlog of the listener warden still holds.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::action::{CommandError, Upgraded};
use super::config::{Config, ServiceConfig};
use crate::env::{Addr, Env};
use crate::handoff::coordinator::{self, AdminError, GenSpec, Outcome};

/// How long `warden upgrade` waits for the handoff's outcome: above S's
/// own deadlines (seal 300 s, ready 60 s), so S always answers first.
pub(crate) const UPGRADE_TIMEOUT: Duration = Duration::from_secs(600);

/// How warden starts a coordinator: a program and its first arguments
/// (the `warden` binary and `handoff-coordinator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorProgram {
    /// The program (a path).
    pub program: String,
    /// Arguments before S's own.
    pub args: Vec<String>,
}

/// Where the coordinator of `svc` keeps its journal, admin socket and the
/// generations' handoff sockets: `CONTROL.handoff/NAME` beside the
/// control socket.
pub fn state_dir(config: &Config, svc: &ServiceConfig) -> PathBuf {
    let mut dir = config.warden.control.clone().into_os_string();
    dir.push(".handoff");
    PathBuf::from(dir).join(&svc.name)
}

/// The admin socket of the coordinator whose state is in `dir`.
fn admin(dir: &Path) -> Addr {
    Addr::Unix(dir.join("admin.sock"))
}

/// S's arguments for `svc` (after `program.args`): its state directory,
/// the listeners by name and address (passed at fds 3.. as well),
/// generations that die with it, a fresh start, then the command.
pub(crate) fn coordinator_args(program: &CoordinatorProgram, dir: &Path, svc: &ServiceConfig) -> Vec<String> {
    let mut args = program.args.clone();
    args.extend(["--state-dir".to_owned(), dir.display().to_string()]);
    for l in &svc.listen {
        args.extend(["--listen".to_owned(), format!("{}={}", l.name, l.addr)]);
    }
    args.extend(["--generations-die-with-coordinator".to_owned(), "--fresh".to_owned(), "--".to_owned()]);
    args.extend(svc.command.iter().cloned());
    args
}

/// Asks the coordinator of `svc` (state in `dir`) to hand the service over
/// to a new process of its command; waits for the outcome.
pub(crate) async fn upgrade<E: Env>(env: &E, dir: &Path, svc: &ServiceConfig) -> Result<Upgraded, CommandError> {
    let spec = GenSpec { program: svc.command[0].clone(), args: svc.command[1..].to_vec() };
    tracing::info!(service = svc.name.as_str(), "upgrade: asking the coordinator for a handoff");
    match coordinator::request_handoff(env, &admin(dir), &spec, UPGRADE_TIMEOUT).await {
        Ok(Outcome::Committed { id, pid }) => {
            tracing::info!(service = svc.name.as_str(), handoff = %id, pid, "upgrade committed");
            Ok(Upgraded { handoff: id.to_string(), pid })
        }
        Ok(Outcome::Aborted { id, reason }) => {
            tracing::warn!(service = svc.name.as_str(), handoff = %id, reason = reason.as_str(), "upgrade given up");
            Err(CommandError::UpgradeAborted(format!("handoff {id}: {reason}")))
        }
        Err(AdminError::Refused(why)) => Err(CommandError::UpgradeRefused(why)),
        // Nothing listens on the admin socket (yet): the request never
        // reached the coordinator.
        Err(AdminError::Io(e)) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            Err(CommandError::UpgradeRefused(format!("the coordinator of {:?} does not listen (yet): {e}", svc.name)))
        }
        Err(e) => Err(CommandError::UpgradeUnknown(format!("no answer from the coordinator of {:?}: {e}", svc.name))),
    }
}
