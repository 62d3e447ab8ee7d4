//! The simulated world: hosts that boot, crash and restart; processes with
//! pids, fds, signals and exit statuses; sockets between them; disks.
//!
//! State lives in [`WorldState`] inside the run's sim. Programs are
//! async functions registered by name; a process runs one as its main task
//! and exits with the code it returns.

mod clock;
mod crash;
pub mod disk;
pub(crate) mod facade;
pub mod fd;
mod handles;
mod net;
mod process;
mod process_env;
mod service_io;
pub mod stream;
mod udp;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::task::Waker;

use futures::future::LocalBoxFuture;
use warden::env::{ExitStatus, Signal};

pub(crate) use clock::ClockDraw;
pub use clock::WallClock;
pub(crate) use crash::{CrashTargets, hit_crash_point};
pub use handles::{SimChild, SimDirLock, SimFd, SimSignals};
pub use process::Launch;
pub(crate) use process::bare_process;
pub(crate) use process::{crash_host, exit_process, restart_host, start_process};
pub use stream::BACKLOG;

use crate::env::SimEnv;
use crate::simulation::Simulation;
use fd::Desc;
use stream::ListenerState;
use udp::UdpState;
pub use udp::{InFlight, Payload};

/// A program: what a process runs.
pub type Program = Rc<dyn Fn(SimEnv, Vec<String>) -> LocalBoxFuture<'static, i32>>;

/// A process that host init starts at boot (and restarts when it exits).
#[derive(Clone)]
pub struct InitEntry {
    /// Program name.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Restart it (after [`INIT_RESTART_DELAY_NS`]) whenever it exits.
    pub restart: bool,
}

/// Virtual time init waits before restarting an exited process.
pub const INIT_RESTART_DELAY_NS: u64 = 100_000_000;

/// A simulated machine.
pub struct Host {
    /// Its name.
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Whether it is running.
    pub up: bool,
    /// Global virtual time it last booted.
    pub boot_ns: u64,
    /// How many times it booted.
    pub boots: u32,
    /// The next pid to try.
    pub next_pid: u32,
    /// Its disk.
    pub disk: disk::Disk,
    /// What init starts.
    pub init: Vec<InitEntry>,
    /// Its wall clock.
    pub clock: WallClock,
}

/// How a process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running.
    Running,
    /// Paused by SIGSTOP.
    Stopped,
    /// Ended.
    Exited(ExitStatus),
}

/// A simulated process.
pub struct Proc {
    /// Its host.
    pub host: u32,
    /// Its pid on that host.
    pub pid: u32,
    /// Its parent's global id.
    pub parent: Option<u32>,
    /// The program it runs.
    pub program: String,
    /// Its state.
    pub state: ProcState,
    /// Its environment.
    pub vars: BTreeMap<String, String>,
    /// Fds inherited at spawn, by number, not yet taken.
    pub inherited: BTreeMap<i32, Rc<Desc>>,
    /// Fd table: every open fd handle of the process.
    pub fds: BTreeMap<u64, Rc<Desc>>,
    /// Next fd-table slot.
    pub next_fd: u64,
    /// Signals it handles.
    pub handled: BTreeSet<Signal>,
    /// Handled signals not yet read.
    pub signals: VecDeque<Signal>,
    /// Signals held while stopped.
    pub held: Vec<Signal>,
    /// The task reading signals.
    pub signal_waker: Option<Waker>,
    /// Tasks waiting for it to exit.
    pub exit_waiters: Vec<Waker>,
    /// Index of the init entry that started it.
    pub init_entry: Option<usize>,
    /// Its process group (the pid of the group's leader).
    pub pgid: u32,
    /// Its working directory, when spawned with one.
    pub cwd: Option<PathBuf>,
    /// Notifications it sent (`READY=1`, ...), when spawned with a
    /// notification socket, not yet read by its parent.
    pub notifications: Option<VecDeque<String>>,
    /// The parent's task waiting for a notification.
    pub notify_waker: Option<Waker>,
    /// It reaps its orphaned descendants (PR_SET_CHILD_SUBREAPER).
    pub subreaper: bool,
    /// SIGKILL it when its parent exits (PR_SET_PDEATHSIG).
    pub kill_with_parent: bool,
}

impl Proc {
    /// A running process of `program` with pid `pid` on `host`, nothing
    /// inherited, no parent.
    pub fn new(host: u32, pid: u32, program: &str) -> Proc {
        Proc {
            host,
            pid,
            parent: None,
            program: program.to_owned(),
            state: ProcState::Running,
            vars: BTreeMap::new(),
            inherited: BTreeMap::new(),
            fds: BTreeMap::new(),
            next_fd: 0,
            handled: BTreeSet::new(),
            signals: VecDeque::new(),
            held: Vec::new(),
            signal_waker: None,
            exit_waiters: Vec::new(),
            init_entry: None,
            pgid: pid,
            cwd: None,
            notifications: None,
            notify_waker: None,
            subreaper: false,
            kill_with_parent: false,
        }
    }
}

/// Network behaviour: latencies between hosts and within one (loopback,
/// Unix sockets), loss, partitions.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Lowest one-way latency between hosts.
    pub latency_min_ns: u64,
    /// Highest one-way latency between hosts.
    pub latency_max_ns: u64,
    /// Lowest one-way latency within a host (loopback TCP, Unix sockets,
    /// UDP to oneself): small but not zero, so that exchanges between
    /// processes of one host interleave with other tasks' steps.
    pub local_latency_min_ns: u64,
    /// Highest one-way latency within a host.
    pub local_latency_max_ns: u64,
    /// Probability a datagram is lost.
    pub udp_loss: f64,
    /// Partitions: (host a, host b, from, until) in global virtual time.
    pub partitions: Vec<(u32, u32, u64, u64)>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min_ns: 1_000_000,
            latency_max_ns: 10_000_000,
            local_latency_min_ns: 5_000,
            local_latency_max_ns: 50_000,
            udp_loss: 0.0,
            partitions: Vec::new(),
        }
    }
}

impl NetConfig {
    /// The one-way latency range to a peer on the same host or another.
    #[inline]
    pub fn latency_range(&self, same_host: bool) -> (u64, u64) {
        if same_host {
            (self.local_latency_min_ns, self.local_latency_max_ns)
        } else {
            (self.latency_min_ns, self.latency_max_ns)
        }
    }
}

/// Everything outside the executor.
pub struct WorldState {
    /// Hosts by index.
    pub hosts: Vec<Host>,
    /// Processes by global id (never reused, unlike pids).
    pub procs: BTreeMap<u32, Proc>,
    /// Next global process id.
    pub next_proc: u32,
    /// Live processes by (host, pid).
    pub live_pids: BTreeMap<(u32, u32), u32>,
    /// Programs by name.
    pub programs: BTreeMap<String, Program>,
    /// Unix listeners by (host, path).
    pub unix: BTreeMap<(u32, PathBuf), Rc<RefCell<ListenerState>>>,
    /// TCP listeners by address.
    pub tcp: BTreeMap<SocketAddr, Rc<RefCell<ListenerState>>>,
    /// UDP sockets by host index, then port (a host binds a few: a scan
    /// of its short list is cheaper than any map on the datagram path).
    pub udp: Vec<Vec<(u16, Rc<RefCell<UdpState>>)>>,
    /// Datagrams in flight, by slot (free slots are `None`).
    pub in_flight: Vec<Option<InFlight>>,
    /// Free slots of `in_flight`.
    pub in_flight_free: Vec<u32>,
    /// Every stream end created, to reset those of a crashed host.
    pub streams: Vec<std::rc::Weak<stream::StreamEnd>>,
    /// Directory locks: (host, dir) -> holding process.
    pub locks: BTreeMap<(u32, PathBuf), u32>,
    /// Network behaviour.
    pub net: NetConfig,
    /// Probability that a disk operation fails with EIO or ENOSPC.
    pub disk_error: f64,
    /// Where processes die (crash points of the fault plan).
    pub(crate) crashes: CrashTargets,
    /// How new hosts' wall clocks are skewed.
    pub(crate) clocks: ClockDraw,
    /// Pids wrap after this (small values make reuse reachable).
    pub pid_max: u32,
}

impl Default for WorldState {
    fn default() -> Self {
        WorldState {
            hosts: Vec::new(),
            procs: BTreeMap::new(),
            next_proc: 1,
            live_pids: BTreeMap::new(),
            programs: BTreeMap::new(),
            unix: BTreeMap::new(),
            tcp: BTreeMap::new(),
            udp: Vec::new(),
            streams: Vec::new(),
            in_flight: Vec::new(),
            in_flight_free: Vec::new(),
            locks: BTreeMap::new(),
            net: NetConfig::default(),
            disk_error: 0.0,
            crashes: CrashTargets::default(),
            clocks: ClockDraw::default(),
            pid_max: 32_768,
        }
    }
}

impl WorldState {
    /// Adds a host that is up from now on.
    pub fn add_host(&mut self, name: &str, now_ns: u64) -> u32 {
        let i = self.hosts.len() as u32;
        self.hosts.push(Host {
            name: name.to_owned(),
            ip: Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 1) as u8),
            up: true,
            boot_ns: now_ns,
            boots: 1,
            next_pid: 2,
            disk: disk::Disk::default(),
            init: Vec::new(),
            clock: self.clocks.next(),
        });
        i
    }

    /// The UDP socket bound to `port` on `host`, open or not.
    #[inline]
    pub fn udp_socket(&self, host: u32, port: u16) -> Option<&Rc<RefCell<UdpState>>> {
        self.udp.get(host as usize)?.iter().find(|(p, _)| *p == port).map(|(_, s)| s)
    }

    /// The host with address `ip`.
    pub fn host_by_ip(&self, ip: std::net::IpAddr) -> Option<u32> {
        // Host i has 10.0.(i / 250).(i % 250 + 1): invert instead of searching.
        let std::net::IpAddr::V4(v4) = ip else { return None };
        let [a, b, c, d] = v4.octets();
        if a != 10 || b != 0 || d == 0 {
            return None;
        }
        let i = u32::from(c) * 250 + u32::from(d) - 1;
        self.hosts.get(i as usize).filter(|h| h.ip == v4).map(|_| i)
    }

    /// Whether hosts `a` and `b` are cut off from each other at `now`.
    pub fn partitioned(&self, a: u32, b: u32, now: u64) -> Option<u64> {
        if a == b {
            return None;
        }
        self.net
            .partitions
            .iter()
            .filter(|(x, y, from, until)| {
                ((*x == a && *y == b) || (*x == b && *y == a)) && *from <= now && now < *until
            })
            .map(|(_, _, _, until)| *until)
            .max()
    }

    /// Whether `pid` is in use on `host`.
    fn pid_in_use(&self, host: u32, pid: u32) -> bool {
        self.live_pids.contains_key(&(host, pid))
    }

    /// The live process with `pid` on `host`.
    pub fn find_pid(&self, host: u32, pid: u32) -> Option<u32> {
        self.live_pids.get(&(host, pid)).copied()
    }

    /// Enters `p` in the process table under a new global id.
    fn insert_proc(&mut self, p: Proc) -> u32 {
        let proc = self.next_proc;
        self.next_proc += 1;
        self.live_pids.insert((p.host, p.pid), proc);
        self.procs.insert(proc, p);
        proc
    }

    /// Allocates the next free pid on `host`, wrapping at `pid_max`.
    fn alloc_pid(&mut self, host: u32) -> Option<u32> {
        let max = self.pid_max.max(3);
        for _ in 0..max {
            let h = &mut self.hosts[host as usize];
            let pid = h.next_pid;
            h.next_pid = if pid + 1 > max { 2 } else { pid + 1 };
            if !self.pid_in_use(host, pid) {
                return Some(pid);
            }
        }
        None
    }
}

/// A world event a timer handed back (see `Executor::schedule_event`):
/// today only a datagram arriving, its token the in-flight slot.
pub(crate) fn event(sim: &Simulation, token: u64) {
    udp::deliver(sim, token as u32);
}
