//! `ProcessEnv` for `SimEnv`: spawning, waiting, signals, watching any
//! pid, inherited fds and variables.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use warden::env::{ExitStatus, OutputLine, Pid, ProcessEnv, ProcessSpec, Signal, SpawnOptions};

use super::ProcState;
use super::fd::Desc;
use super::handles::{SimChild, SimFd, SimSignals};
use super::process::{Launch, deliver, no_such_process, start_process};
use crate::env::SimEnv;
use crate::simulation::Simulation;

struct WaitExit {
    sim: Rc<Simulation>,
    proc: u32,
}

impl Future for WaitExit {
    type Output = ExitStatus;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ExitStatus> {
        let mut w = self.sim.world.borrow_mut();
        match w.procs.get_mut(&self.proc) {
            Some(p) => match p.state {
                ProcState::Exited(s) => Poll::Ready(s),
                _ => {
                    if !p.exit_waiters.iter().any(|x| x.will_wake(cx.waker())) {
                        p.exit_waiters.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            },
            None => Poll::Ready(ExitStatus::Signaled(Signal::Kill)),
        }
    }
}

impl ProcessEnv for SimEnv {
    type Child = SimChild;
    type Fd = SimFd;
    type Signals = SimSignals;

    fn pid(&self) -> Pid {
        self.sim.world.borrow().procs.get(&self.proc).map_or(0, |p| p.pid)
    }

    fn spawn_process(&self, spec: ProcessSpec<SimFd>) -> io::Result<SimChild> {
        self.spawn_with(spec, SpawnOptions::default())
    }

    fn spawn_with(&self, spec: ProcessSpec<SimFd>, options: SpawnOptions) -> io::Result<SimChild> {
        if self.sim.exec.is_dead(self.proc) {
            return Err(io::Error::other("calling process has exited"));
        }
        let fds: Vec<(Rc<Desc>, i32)> =
            spec.fds.into_iter().filter_map(|(fd, n)| fd.transfer().map(|d| (d, n))).collect();
        let launch = Launch {
            vars: spec.vars,
            fds,
            parent: Some(self.proc),
            options,
            ..Launch::new(self.host, &spec.program, spec.args)
        };
        let proc = start_process(&self.sim, launch)?;
        let mut w = self.sim.world.borrow_mut();
        let p = w.procs.get_mut(&proc).ok_or_else(no_such_process)?;
        let pid = p.pid;
        // ProcessSpec::pid_var: the pid is known now, before the program's first poll.
        for v in p.vars.values_mut().filter(|v| v.as_str() == warden::env::CHILD_PID) {
            *v = pid.to_string();
        }
        Ok(SimChild { proc, pid, adopted: false })
    }

    fn child_pid(&self, child: &SimChild) -> Pid {
        child.pid
    }

    fn wait_child(&self, child: &SimChild) -> impl Future<Output = ExitStatus> + 'static {
        let (wait, adopted) = (WaitExit { sim: self.sim.clone(), proc: child.proc }, child.adopted);
        // Only a parent learns the status (as with a pidfd on Linux).
        async move {
            let status = wait.await;
            if adopted { ExitStatus::Code(-1) } else { status }
        }
    }

    fn open_process(&self, pid: Pid) -> io::Result<SimChild> {
        let proc = self.sim.world.borrow().find_pid(self.host, pid).ok_or_else(no_such_process)?;
        Ok(SimChild { proc, pid, adopted: true })
    }

    fn signal_child(&self, child: &SimChild, signal: Signal) -> io::Result<()> {
        if self.sim.exec.is_dead(self.proc) {
            return Ok(());
        }
        deliver(&self.sim, child.proc, signal)
    }

    fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        if self.sim.exec.is_dead(self.proc) {
            return Ok(());
        }
        let target = self.sim.world.borrow().find_pid(self.host, pid);
        match target {
            Some(p) => deliver(&self.sim, p, signal),
            None => Err(no_such_process()),
        }
    }

    fn watch(&self, pid: Pid) -> io::Result<impl Future<Output = ()> + 'static> {
        let target = self.sim.world.borrow().find_pid(self.host, pid).ok_or_else(no_such_process)?;
        let wait = WaitExit { sim: self.sim.clone(), proc: target };
        // Not the parent: the status is not ours to learn.
        Ok(async move {
            let _ = wait.await;
        })
    }

    fn handle_signals(&self, signals: &[Signal]) -> io::Result<SimSignals> {
        if let Some(s) = signals.iter().find(|s| !s.can_be_handled()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{s} cannot be handled")));
        }
        if let Some(p) = self.sim.world.borrow_mut().procs.get_mut(&self.proc) {
            p.handled.extend(signals.iter().copied());
        }
        Ok(SimSignals { sim: self.sim.clone(), proc: self.proc, set: signals.to_vec() })
    }

    fn next_signal<'a>(&self, signals: &'a mut SimSignals) -> impl Future<Output = Signal> + 'a {
        std::future::poll_fn(move |cx| {
            let mut w = signals.sim.world.borrow_mut();
            let Some(p) = w.procs.get_mut(&signals.proc) else {
                return Poll::Pending;
            };
            if let Some(i) = p.signals.iter().position(|s| signals.set.contains(s))
                && let Some(s) = p.signals.remove(i)
            {
                return Poll::Ready(s);
            }
            p.signal_waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    fn inherited_fd(&self, n: i32) -> Option<SimFd> {
        let desc = self.sim.world.borrow_mut().procs.get_mut(&self.proc)?.inherited.remove(&n)?;
        Some(SimFd::register(&self.sim, self.proc, desc))
    }

    fn var(&self, name: &str) -> Option<String> {
        self.sim.world.borrow().procs.get(&self.proc)?.vars.get(name).cloned()
    }

    fn signal_group(&self, child: &SimChild, signal: Signal) -> io::Result<()> {
        if self.sim.exec.is_dead(self.proc) {
            return Ok(());
        }
        super::service_io::signal_group(&self.sim, self.host, child.pid, signal)
    }

    fn next_output_line<'a>(&self, _child: &'a SimChild) -> impl Future<Output = Option<OutputLine>> + 'a {
        // Simulated programs write no stdout or stderr.
        std::future::ready(None)
    }

    fn next_notification<'a>(&self, child: &'a SimChild) -> impl Future<Output = Option<String>> + 'a {
        super::service_io::next_notification(self.sim.clone(), child.proc)
    }

    fn notify(&self, state: &str) -> io::Result<()> {
        super::service_io::notify(&self.sim, self.proc, state);
        Ok(())
    }

    fn set_child_subreaper(&self) -> io::Result<()> {
        if let Some(p) = self.sim.world.borrow_mut().procs.get_mut(&self.proc) {
            p.subreaper = true;
        }
        Ok(())
    }
}
