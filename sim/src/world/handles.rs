//! Handles a simulated program holds: fds (entries of its process's fd
//! table, closed on drop or when the process dies), child handles, signal
//! streams and directory locks.

use std::path::PathBuf;
use std::rc::Rc;

use warden::env::Signal;

use super::fd::{Desc, DescKind};
use crate::simulation::Simulation;

/// An fd of a simulated process.
pub struct SimFd {
    sim: Rc<Simulation>,
    proc: u32,
    slot: u64,
    desc: Rc<Desc>,
}

impl SimFd {
    /// Enters `desc` (whose reference the caller hands over) in `proc`'s
    /// fd table.
    pub(crate) fn register(sim: &Rc<Simulation>, proc: u32, desc: Rc<Desc>) -> SimFd {
        let slot = {
            let mut w = sim.world.borrow_mut();
            match w.procs.get_mut(&proc) {
                Some(p) if !sim.exec.is_dead(proc) => {
                    let slot = p.next_fd;
                    p.next_fd += 1;
                    p.fds.insert(slot, desc.clone());
                    slot
                }
                // A dead process opens nothing: the reference goes at once.
                _ => u64::MAX,
            }
        };
        if slot == u64::MAX {
            desc.release();
        }
        SimFd { sim: sim.clone(), proc, slot, desc }
    }

    /// The open file description.
    pub(crate) fn desc(&self) -> &Rc<Desc> {
        &self.desc
    }

    /// Removes the fd from its table without closing it: its reference
    /// moves to the caller (an SCM_RIGHTS message, a child's fd table).
    pub(crate) fn transfer(mut self) -> Option<Rc<Desc>> {
        let removed = self.unregister();
        self.slot = u64::MAX;
        removed.then(|| self.desc.clone())
    }

    fn unregister(&self) -> bool {
        if self.slot == u64::MAX {
            return false;
        }
        match self.sim.world.try_borrow_mut() {
            Ok(mut w) => w.procs.get_mut(&self.proc).and_then(|p| p.fds.remove(&self.slot)).is_some(),
            Err(_) => false,
        }
    }

    /// A readable name of what it is.
    pub fn kind_name(&self) -> &'static str {
        match &self.desc.kind {
            DescKind::Listener(_) => "listener",
            DescKind::Stream(_) => "stream",
            DescKind::Udp(_) => "udp socket",
            DescKind::File(_) => "file",
        }
    }
}

impl Drop for SimFd {
    fn drop(&mut self) {
        if self.unregister() {
            if matches!(self.desc.kind, DescKind::Listener(_))
                && self.sim.mutant_on("listener-closed-with-first-holder")
            {
                // The planted bug: closing one fd closes the shared listener.
                self.desc.close();
            }
            self.desc.release();
        }
    }
}

/// A child process: its never-reused global id and its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimChild {
    pub(crate) proc: u32,
    pub(crate) pid: u32,
    /// Not a child (`open_process`): its exit is seen, its status is not.
    pub(crate) adopted: bool,
}

/// Signals a process handles; dropping it restores their default action.
pub struct SimSignals {
    pub(crate) sim: Rc<Simulation>,
    pub(crate) proc: u32,
    pub(crate) set: Vec<Signal>,
}

impl Drop for SimSignals {
    fn drop(&mut self) {
        super::process::unhandle_signals(&self.sim, self.proc, &self.set);
    }
}

/// An exclusive lock on a directory of a host.
pub struct SimDirLock {
    pub(crate) sim: Rc<Simulation>,
    pub(crate) host: u32,
    pub(crate) dir: PathBuf,
    pub(crate) proc: u32,
}

impl Drop for SimDirLock {
    fn drop(&mut self) {
        if let Ok(mut w) = self.sim.world.try_borrow_mut() {
            let key = (self.host, self.dir.clone());
            if w.locks.get(&key) == Some(&self.proc) {
                w.locks.remove(&key);
            }
        }
    }
}
