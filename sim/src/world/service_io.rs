//! What a service manager adds to a simulated child: process groups, the
//! notification socket (`READY=1`), the pid variable of socket activation.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::task::Poll;

use warden::env::{Signal, SpawnOptions};

use super::{ProcState, WorldState};
use crate::simulation::Simulation;

/// The group a new process `pid` joins: its own when asked (or when it has
/// no parent), else its parent's, as fork does.
pub(super) fn child_pgid(w: &WorldState, parent: Option<u32>, pid: u32, options: &SpawnOptions) -> u32 {
    match parent.and_then(|p| w.procs.get(&p)) {
        Some(p) if !options.new_process_group => p.pgid,
        _ => pid,
    }
}

/// Adds the variables the options imply (`NOTIFY_SOCKET`, the pid variable).
pub(super) fn child_vars(vars: &mut Vec<(String, String)>, pid: u32, options: &SpawnOptions) {
    if options.notify {
        vars.retain(|(k, _)| k != "NOTIFY_SOCKET");
        vars.push(("NOTIFY_SOCKET".to_owned(), format!("sim:notify/{pid}")));
    }
    if let Some(name) = &options.pid_var {
        vars.retain(|(k, _)| k != name);
        vars.push((name.clone(), pid.to_string()));
    }
}

/// Signals every live process of group `pgid` on `host`.
pub(super) fn signal_group(sim: &Rc<Simulation>, host: u32, pgid: u32, signal: Signal) -> io::Result<()> {
    let members: Vec<u32> = sim
        .world
        .borrow()
        .procs
        .iter()
        .filter(|(_, p)| p.host == host && p.pgid == pgid && !matches!(p.state, ProcState::Exited(_)))
        .map(|(id, _)| *id)
        .collect();
    if members.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such process"));
    }
    for m in members {
        let _ = super::process::deliver(sim, m, signal);
    }
    Ok(())
}

/// Process `proc` sends `state` to its notification socket, if it has one.
pub(super) fn notify(sim: &Rc<Simulation>, proc: u32, state: &str) {
    if sim.exec.is_dead(proc) {
        return;
    }
    let waker = {
        let mut w = sim.world.borrow_mut();
        let Some(p) = w.procs.get_mut(&proc) else { return };
        let Some(q) = p.notifications.as_mut() else { return };
        q.push_back(state.to_owned());
        p.notify_waker.take()
    };
    crate::trace::sim_event(crate::trace::Kind::Notify, u64::from(proc), state.len() as u64, || {
        format!("proc {proc} notifies {state:?}")
    });
    if let Some(w) = waker {
        w.wake();
    }
}

/// The next notification of child `proc`; pending for ever when it has no
/// socket or once it exited with nothing left to read.
pub(super) fn next_notification(sim: Rc<Simulation>, proc: u32) -> impl Future<Output = Option<String>> + 'static {
    std::future::poll_fn(move |cx| {
        let mut w = sim.world.borrow_mut();
        let Some(p) = w.procs.get_mut(&proc) else { return Poll::Ready(None) };
        let Some(q) = p.notifications.as_mut() else { return Poll::Ready(None) };
        if let Some(s) = q.pop_front() {
            return Poll::Ready(Some(s));
        }
        p.notify_waker = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// Process `parent` exited: its children spawned with `kill_with_parent`
/// get SIGKILL, as PR_SET_PDEATHSIG does.
pub(super) fn kill_children_of(sim: &Rc<Simulation>, parent: u32) {
    let doomed: Vec<u32> = sim
        .world
        .borrow()
        .procs
        .iter()
        .filter(|(_, p)| p.parent == Some(parent) && p.kill_with_parent && !matches!(p.state, ProcState::Exited(_)))
        .map(|(id, _)| *id)
        .collect();
    for c in doomed {
        let _ = super::process::deliver(sim, c, Signal::Kill);
    }
}
