//! Process lifecycle: start, exit, signals, SIGSTOP/SIGCONT, host crash and
//! restart with init; and `ProcessEnv` for `SimEnv`.

use std::collections::BTreeMap;
use std::io;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use futures::FutureExt;
use warden::env::{ExitStatus, Signal, SpawnOptions};

use super::fd::{Desc, DescKind};
use super::{INIT_RESTART_DELAY_NS, Proc, ProcState};
use crate::env::SimEnv;
use crate::simulation::Simulation;
use crate::trace::{self, Kind};

pub(super) fn no_such_process() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such process")
}

/// What to start and where.
pub struct Launch {
    /// The host.
    pub host: u32,
    /// A registered program name.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment.
    pub vars: Vec<(String, String)>,
    /// Descriptors (references handed over) at the given numbers.
    pub fds: Vec<(Rc<Desc>, i32)>,
    /// The parent's global id.
    pub parent: Option<u32>,
    /// The init entry that starts it.
    pub init_entry: Option<usize>,
    /// Working directory, process group, notification socket, pid variable.
    pub options: SpawnOptions,
}

impl Launch {
    /// `program` on `host` with `args`, no parent, fds or variables.
    pub fn new(host: u32, program: &str, args: Vec<String>) -> Launch {
        Launch {
            host,
            program: program.to_owned(),
            args,
            vars: Vec::new(),
            fds: Vec::new(),
            parent: None,
            init_entry: None,
            options: SpawnOptions::default(),
        }
    }
}

/// Starts a process; returns its global id.
pub(crate) fn start_process(sim: &Rc<Simulation>, launch: Launch) -> io::Result<u32> {
    let Launch { host, program, args, mut vars, fds, parent, init_entry, options } = launch;
    let program = program.as_str();
    let (proc, env, main) = {
        let mut w = sim.world.borrow_mut();
        let release = |fds: Vec<(Rc<Desc>, i32)>| fds.into_iter().for_each(|(d, _)| d.release());
        let Some(main) = w.programs.get(program).cloned() else {
            release(fds);
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no program named {program:?} is registered")));
        };
        if !w.hosts.get(host as usize).is_some_and(|h| h.up) {
            release(fds);
            return Err(io::Error::other("host is down"));
        }
        let Some(pid) = w.alloc_pid(host) else {
            release(fds);
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "no free pid (EAGAIN)"));
        };
        let inherited: BTreeMap<i32, Rc<Desc>> = fds.into_iter().map(|(d, n)| (n, d)).collect();
        let pgid = super::service_io::child_pgid(&w, parent, pid, &options);
        super::service_io::child_vars(&mut vars, pid, &options);
        let proc = w.insert_proc(Proc {
            parent,
            vars: vars.into_iter().collect(),
            inherited,
            init_entry,
            pgid,
            cwd: options.working_dir.clone(),
            notifications: options.notify.then(Default::default),
            kill_with_parent: options.kill_with_parent,
            ..Proc::new(host, pid, program)
        });
        let boot = w.hosts[host as usize].boot_ns;
        (proc, SimEnv::new(sim.clone(), proc, host, boot), main)
    };
    trace::sim_event(Kind::Start, u64::from(proc), u64::from(host), || {
        format!("start {program:?} as proc {proc} on host {host}")
    });
    name_track(sim, proc, host, program);
    let k = Rc::downgrade(sim);
    let fut = main(env, args);
    sim.exec.spawn(
        proc,
        program,
        Box::pin(async move {
            // A panicking main ends the process like Rust's runtime does.
            let code = AssertUnwindSafe(fut).catch_unwind().await.unwrap_or(101);
            if let Some(k) = k.upgrade() {
                exit_process(&k, proc, ExitStatus::Code(code));
            }
        }),
    );
    Ok(proc)
}

/// Creates a process with no program (a model's own process).
pub(crate) fn bare_process(sim: &Rc<Simulation>, host: u32, name: &str) -> u32 {
    let proc = {
        let mut w = sim.world.borrow_mut();
        let pid = w.alloc_pid(host).unwrap_or(1);
        w.insert_proc(Proc::new(host, pid, name))
    };
    name_track(sim, proc, host, name);
    proc
}

/// Names process `proc`'s track (and its host's) in a Chrome trace.
fn name_track(sim: &Simulation, proc: u32, host: u32, program: &str) {
    if !trace::exporting() {
        return;
    }
    let (host_label, label) = {
        let w = sim.world.borrow();
        let Some(h) = w.hosts.get(host as usize) else { return };
        let pid = w.procs.get(&proc).map_or(0, |p| p.pid);
        (format!("host {host}: {} ({})", h.name, h.ip), format!("{program} (pid {pid}, proc {proc})"))
    };
    trace::with_export(|t, _, _| t.process(proc, host, &host_label, label));
}

/// Ends process `proc` with `status`: its tasks are discarded after the
/// current poll, its fds closed, its locks released, waiters woken.
pub(crate) fn exit_process(sim: &Rc<Simulation>, proc: u32, status: ExitStatus) {
    let (fds, inherited, waiters, sig_waker, restart, host) = {
        let mut w = sim.world.borrow_mut();
        let Some(p) = w.procs.get_mut(&proc) else {
            return;
        };
        if matches!(p.state, ProcState::Exited(_)) {
            return;
        }
        p.state = ProcState::Exited(status);
        let key = (p.host, p.pid);
        let fds = std::mem::take(&mut p.fds);
        let inherited = std::mem::take(&mut p.inherited);
        let waiters = std::mem::take(&mut p.exit_waiters);
        let sig_waker = p.signal_waker.take();
        let (host, init_entry) = (p.host, p.init_entry);
        if w.live_pids.get(&key) == Some(&proc) {
            w.live_pids.remove(&key);
        }
        w.locks.retain(|_, holder| *holder != proc);
        let restart = init_entry
            .filter(|i| w.hosts[host as usize].init.get(*i).is_some_and(|e| e.restart) && w.hosts[host as usize].up);
        (fds, inherited, waiters, sig_waker, restart.map(|i| (i, w.hosts[host as usize].boots)), host)
    };
    trace::sim_event(Kind::Exit, u64::from(proc), status_word(status), || format!("proc {proc} exits: {status}"));
    let first_holder_bug = sim.mutant_on("listener-closed-with-first-holder");
    for d in fds.into_values().chain(inherited.into_values()) {
        if first_holder_bug && matches!(d.kind, DescKind::Listener(_)) {
            d.close();
        }
        d.release();
    }
    sim.exec.end_group(proc);
    for w in waiters {
        w.wake();
    }
    drop(sig_waker);
    super::service_io::kill_children_of(sim, proc);
    if let Some((entry, boots)) = restart {
        let k = Rc::downgrade(sim);
        sim.exec.schedule(
            sim.now_ns() + INIT_RESTART_DELAY_NS,
            Box::new(move || {
                if let Some(k) = k.upgrade() {
                    start_init_entry(&k, host, entry, boots);
                }
            }),
        );
    }
}

fn status_word(s: ExitStatus) -> u64 {
    match s {
        ExitStatus::Code(c) => c as u32 as u64,
        ExitStatus::Signaled(sig) => 0x1_0000_0000 | sig.number() as u64,
    }
}

fn start_init_entry(sim: &Rc<Simulation>, host: u32, entry: usize, boots: u32) {
    let spec = {
        let w = sim.world.borrow();
        let h = &w.hosts[host as usize];
        if !h.up || h.boots != boots {
            return;
        }
        h.init.get(entry).cloned()
    };
    if let Some(e) = spec {
        let _ = start_process(sim, Launch { init_entry: Some(entry), ..Launch::new(host, &e.program, e.args) });
    }
}

/// Delivers `signal` to `proc`.
pub(crate) fn deliver(sim: &Rc<Simulation>, proc: u32, signal: Signal) -> io::Result<()> {
    enum Act {
        Exit(ExitStatus),
        Stop,
        Cont(Vec<Signal>),
        Queued,
    }
    let act = {
        let mut w = sim.world.borrow_mut();
        let Some(p) = w.procs.get_mut(&proc) else {
            return Err(no_such_process());
        };
        match (p.state, signal) {
            (ProcState::Exited(_), _) => return Err(no_such_process()),
            (_, Signal::Kill) => Act::Exit(ExitStatus::Signaled(Signal::Kill)),
            (ProcState::Running, Signal::Stop) => {
                p.state = ProcState::Stopped;
                Act::Stop
            }
            (ProcState::Stopped, Signal::Stop) => Act::Queued,
            (ProcState::Stopped, Signal::Cont) => {
                p.state = ProcState::Running;
                Act::Cont(std::mem::take(&mut p.held))
            }
            (ProcState::Running, Signal::Cont) => Act::Queued,
            (ProcState::Stopped, s) => {
                p.held.push(s);
                Act::Queued
            }
            (ProcState::Running, s) if p.handled.contains(&s) => {
                p.signals.push_back(s);
                if let Some(w) = p.signal_waker.take() {
                    w.wake();
                }
                Act::Queued
            }
            (ProcState::Running, s) => Act::Exit(ExitStatus::Signaled(s)),
        }
    };
    trace::sim_event(Kind::Signal, u64::from(proc), signal.number() as u64, || format!("{signal} to proc {proc}"));
    match act {
        Act::Exit(status) => exit_process(sim, proc, status),
        Act::Stop => sim.exec.set_stopped(proc, true),
        Act::Cont(held) => {
            sim.exec.set_stopped(proc, false);
            for s in held {
                let _ = deliver(sim, proc, s);
            }
        }
        Act::Queued => {}
    }
    Ok(())
}

/// Stops handling `set` in `proc`: queued ones take their default action.
pub(crate) fn unhandle_signals(sim: &Rc<Simulation>, proc: u32, set: &[Signal]) {
    let pending: Vec<Signal> = {
        let Ok(mut w) = sim.world.try_borrow_mut() else {
            return;
        };
        let Some(p) = w.procs.get_mut(&proc) else {
            return;
        };
        if matches!(p.state, ProcState::Exited(_)) {
            return;
        }
        for s in set {
            p.handled.remove(s);
        }
        let (pending, keep): (Vec<Signal>, Vec<Signal>) = p.signals.drain(..).partition(|s| set.contains(s));
        p.signals = keep.into();
        pending
    };
    for s in pending {
        let _ = deliver(sim, proc, s);
    }
}

/// Power loss: every process on `host` dies, connections through it reset,
/// unsynced disk data is lost.
pub(crate) fn crash_host(sim: &Rc<Simulation>, host: u32) {
    let procs: Vec<u32> = {
        let mut w = sim.world.borrow_mut();
        let Some(h) = w.hosts.get_mut(host as usize) else {
            return;
        };
        if !h.up {
            return;
        }
        h.up = false;
        w.procs
            .iter()
            .filter(|(_, p)| p.host == host && !matches!(p.state, ProcState::Exited(_)))
            .map(|(id, _)| *id)
            .collect()
    };
    trace::sim_event(Kind::HostCrash, u64::from(host), 0, || format!("host {host} crashes"));
    for p in procs {
        exit_process(sim, p, ExitStatus::Signaled(Signal::Kill));
    }
    super::net::reset_streams_of(sim, host);
    let raw = sim.draw(crate::rng::Stream::Disk);
    sim.world.borrow_mut().hosts[host as usize].disk.crash(raw);
}

/// Boots `host` again: its clock restarts at zero and init starts its
/// entries.
pub(crate) fn restart_host(sim: &Rc<Simulation>, host: u32) {
    let (entries, boots) = {
        let mut w = sim.world.borrow_mut();
        let now = sim.now_ns();
        let Some(h) = w.hosts.get_mut(host as usize) else {
            return;
        };
        if h.up {
            return;
        }
        h.up = true;
        h.boot_ns = now;
        h.boots += 1;
        h.next_pid = 2;
        (h.init.len(), h.boots)
    };
    trace::sim_event(Kind::HostBoot, u64::from(host), 0, || format!("host {host} boots"));
    for i in 0..entries {
        start_init_entry(sim, host, i, boots);
    }
}
