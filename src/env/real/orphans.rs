//! Children nobody holds a handle for: orphaned descendants adopted by a
//! subreaper, and whatever is left when the process exits.
//!
//! A process that called
//! [`set_child_subreaper`](crate::env::ProcessEnv::set_child_subreaper)
//! becomes the parent of every orphaned descendant; unreaped, they stay
//! zombies. [`reap_orphans`] reaps the exited children that no
//! [`RealChild`](super::RealChild) owns; [`kill_all_children`] ends every
//! child at exit, so none outlives this process.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::env::Pid;

/// Pids of children a live `RealChild` owns and has not reaped. A `static`
/// because it mirrors the OS process table, which is process-wide (exempt
/// from DESIGN.md rule 2 as OS state).
static OWNED: Mutex<BTreeSet<Pid>> = Mutex::new(BTreeSet::new());

fn owned() -> std::sync::MutexGuard<'static, BTreeSet<Pid>> {
    OWNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn own(pid: Pid) {
    owned().insert(pid);
}

pub(super) fn disown(pid: Pid) {
    owned().remove(&pid);
}

/// This process's children, from `/proc/self/task/*/children`.
fn children() -> io::Result<Vec<Pid>> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("children");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        pids.extend(text.split_whitespace().filter_map(|p| p.parse::<Pid>().ok()));
    }
    Ok(pids)
}

/// Whether `pid` is a zombie (exited, not reaped).
fn is_zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn reap(pid: Pid, flags: libc::c_int) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else { return false };
    let mut status = 0;
    // SAFETY: waitpid on a child pid with a valid status pointer.
    unsafe { libc::waitpid(p, &mut status, flags) == p }
}

/// Reaps every exited child that no `RealChild` owns; returns how many.
pub fn reap_orphans() -> io::Result<usize> {
    let mut n = 0;
    for pid in children()? {
        if !owned().contains(&pid) && is_zombie(pid) && reap(pid, libc::WNOHANG) {
            tracing::debug!(pid, "reaped an orphan");
            n += 1;
        }
    }
    Ok(n)
}

/// SIGKILLs every child (and the process group each leads) and reaps them,
/// waiting at most `timeout`: nothing this process started outlives it.
/// Returns how many were still alive.
pub fn kill_all_children(timeout: Duration) -> io::Result<usize> {
    let kids = children()?;
    let mut alive = 0;
    for &pid in &kids {
        let Ok(p) = libc::pid_t::try_from(pid) else { continue };
        if !is_zombie(pid) {
            alive += 1;
        }
        // SAFETY: kill/killpg with positive ids; ESRCH is fine.
        unsafe {
            libc::killpg(p, libc::SIGKILL);
            libc::kill(p, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + timeout;
    let mut left: Vec<Pid> = kids;
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|&pid| !reap(pid, libc::WNOHANG) && std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(alive)
}
