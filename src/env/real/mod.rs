//! `RealEnv`: the production backend on tokio and the operating system.
//!
//! Core code runs on a current-thread runtime inside a `LocalSet` (see
//! [`RealEnv::block_on`]), so spawned futures need not be `Send`. This module
//! is exempt from DESIGN.md rule 1: it is where ambient time, randomness and
//! OS calls are allowed to live.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::{
    Addr, DiskEnv, Env, ExitStatus, Instant, LocalTask, NetEnv, OpenOptions, OutputLine, Pid, ProcessEnv, ProcessSpec,
    Signal, SpawnOptions,
};

mod child_io;
mod crash;
mod disk;
mod fds;
mod net;
mod orphans;
mod panic_location;
mod process;
mod scm;
mod signals;

pub use crash::check_crash_target;
pub use disk::{RealDirLock, RealFile};
pub use fds::RealFd;
pub use net::{RealDatagram, RealListener, RealStream};
pub use orphans::{kill_all_children, reap_orphans};
pub use process::RealChild;
pub use signals::{RealSignals, block_handled_signals};

/// The real environment of this OS process.
#[derive(Clone)]
pub struct RealEnv {
    rng: Rc<Cell<u64>>,
    launcher: Option<Rc<Launcher>>,
}

/// How a program given by name (no '/') is started: `exe prefix_args..
/// program args..`, a binary that dispatches on the program name.
struct Launcher {
    exe: PathBuf,
    prefix_args: Vec<String>,
}

impl RealEnv {
    /// A handle for this process; must be used inside [`RealEnv::block_on`].
    pub fn new() -> Self {
        panic_location::install();
        // RandomState's keys come from the OS's entropy source once per
        // thread; two of them give an unpredictable 64-bit seed.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        RealEnv { rng: Rc::new(Cell::new(seed)), launcher: None }
    }

    /// A handle whose [`ProcessEnv::spawn_process`] runs a program given
    /// by name (no '/') as `exe prefix_args.. program args..`: a binary
    /// that dispatches on the program name, such as a test binary
    /// re-executing itself. A program given as a path is executed as is.
    pub fn with_launcher(exe: PathBuf, prefix_args: Vec<String>) -> Self {
        RealEnv { launcher: Some(Rc::new(Launcher { exe, prefix_args })), ..Self::new() }
    }

    /// Runs `fut` to completion on a current-thread runtime with a
    /// `LocalSet`, the shape every real-backend program runs in.
    ///
    /// Fails at once on an invalid `WARDEN_CRASH_AT` (with the
    /// `crash-points` feature). Unblocks, on this thread, the handled
    /// signals no [`RealSignals`] claims, so that unhandled they kill (see
    /// [`block_handled_signals`]).
    pub fn block_on<F: Future>(fut: F) -> std::io::Result<F::Output> {
        check_crash_target()?;
        signals::release_unclaimed()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let local = tokio::task::LocalSet::new();
        Ok(local.block_on(&rt, fut))
    }
}

impl Default for RealEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// CLOCK_BOOTTIME: monotonic, counts suspended time, starts at boot.
fn boot_time() -> Instant {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on
    // every Linux since 2.6.39.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Instant::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

impl Env for RealEnv {
    fn now(&self) -> Instant {
        boot_time()
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + 'static {
        tokio::time::sleep(deadline.saturating_duration_since(self.now()))
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + 'static {
        tokio::time::sleep(d)
    }

    fn yield_now(&self) -> impl Future<Output = ()> + 'static {
        tokio::task::yield_now()
    }

    fn spawn_task(&self, name: &str, task: LocalTask) {
        tracing::trace!(task = name, "spawn");
        drop(tokio::task::spawn_local(task));
    }

    fn random_u64(&self) -> u64 {
        // splitmix64: fast, full period, good enough for jitter and ids.
        let mut s = self.rng.get();
        let out = super::splitmix64(&mut s);
        self.rng.set(s);
        out
    }

    fn buggify_site(&self, _site: &'static str) -> bool {
        false
    }

    fn mutant_enabled(&self, _name: &'static str) -> bool {
        false
    }

    fn take_panic_location(&self) -> Option<String> {
        panic_location::take()
    }

    fn report_unobserved_panic(&self, task: &str, message: &str) {
        tracing::error!(task, message, "detached task panicked");
    }

    fn crash_point(&self, name: &'static str) -> impl Future<Output = ()> + 'static {
        crash::hit(name);
        std::future::ready(())
    }
}

impl ProcessEnv for RealEnv {
    type Child = RealChild;
    type Fd = RealFd;
    type Signals = RealSignals;

    fn pid(&self) -> Pid {
        std::process::id()
    }

    fn spawn_process(&self, spec: ProcessSpec<RealFd>) -> io::Result<RealChild> {
        self.spawn_real(spec, SpawnOptions::default())
    }

    fn child_pid(&self, child: &RealChild) -> Pid {
        Self::child_pid_real(child)
    }

    fn wait_child(&self, child: &RealChild) -> impl Future<Output = ExitStatus> + 'static {
        Self::wait_real(child)
    }

    fn signal_child(&self, child: &RealChild, signal: Signal) -> io::Result<()> {
        Self::signal_child_real(child, signal)
    }

    fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()> {
        Self::kill_real(pid, signal)
    }

    fn open_process(&self, pid: Pid) -> io::Result<RealChild> {
        Self::open_real(pid)
    }

    fn watch(&self, pid: Pid) -> io::Result<impl Future<Output = ()> + 'static> {
        Self::watch_real(pid)
    }

    fn handle_signals(&self, signals: &[Signal]) -> io::Result<RealSignals> {
        signals::handle(signals)
    }

    fn next_signal<'a>(&self, signals: &'a mut RealSignals) -> impl Future<Output = Signal> + 'a {
        signals::next(signals)
    }

    fn inherited_fd(&self, n: i32) -> Option<RealFd> {
        fds::take_inherited(n)
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn spawn_with(&self, spec: ProcessSpec<RealFd>, opts: SpawnOptions) -> io::Result<RealChild> {
        self.spawn_real(spec, opts)
    }

    fn signal_group(&self, child: &RealChild, signal: Signal) -> io::Result<()> {
        Self::signal_group_real(child, signal)
    }

    fn next_output_line<'a>(&self, child: &'a RealChild) -> impl Future<Output = Option<OutputLine>> + 'a {
        Self::next_output_line_real(child)
    }

    fn next_notification<'a>(&self, child: &'a RealChild) -> impl Future<Output = Option<String>> + 'a {
        Self::next_notification_real(child)
    }

    fn notify(&self, state: &str) -> io::Result<()> {
        sd_notify::notify(false, &[sd_notify::NotifyState::Custom(state)])
    }

    fn set_child_subreaper(&self) -> io::Result<()> {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl NetEnv for RealEnv {
    type Listener = RealListener;
    type Stream = RealStream;
    type Datagram = RealDatagram;

    fn listen(&self, addr: &Addr) -> io::Result<RealListener> {
        net::listen(addr)
    }

    fn accept<'a>(&self, l: &'a RealListener) -> impl Future<Output = io::Result<RealStream>> + 'a {
        net::accept(l)
    }

    fn connect(&self, addr: &Addr) -> impl Future<Output = io::Result<RealStream>> + 'static {
        net::connect(addr)
    }

    fn socketpair(&self) -> io::Result<(RealStream, RealStream)> {
        net::socketpair()
    }

    fn read<'a>(&self, s: &'a RealStream, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        net::read(s, buf)
    }

    fn write_all<'a>(&self, s: &'a RealStream, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        net::write_all(s, buf)
    }

    fn send_with_fds<'a>(
        &self,
        s: &'a RealStream,
        buf: &'a [u8],
        fds: Vec<RealFd>,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        scm::send_with_fds(s, buf, fds)
    }

    fn recv_with_fds<'a>(
        &self,
        s: &'a RealStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, Vec<RealFd>)>> + 'a {
        scm::recv_with_fds(s, buf)
    }

    fn shutdown_write(&self, s: &RealStream) -> io::Result<()> {
        net::shutdown_write(s)
    }

    fn bind_udp(&self, addr: SocketAddr) -> io::Result<RealDatagram> {
        net::bind_udp(addr)
    }

    fn send_to<'a>(
        &self,
        d: &'a RealDatagram,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        net::send_to(d, buf, to)
    }

    fn recv_from<'a>(
        &self,
        d: &'a RealDatagram,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        net::recv_from(d, buf)
    }

    fn listener_into_fd(&self, l: RealListener) -> RealFd {
        net::listener_into_fd(l)
    }

    fn fd_into_listener(&self, fd: RealFd) -> io::Result<RealListener> {
        net::fd_into_listener(fd)
    }

    fn stream_into_fd(&self, s: RealStream) -> RealFd {
        net::stream_into_fd(s)
    }

    fn fd_into_stream(&self, fd: RealFd) -> io::Result<RealStream> {
        net::fd_into_stream(fd)
    }

    fn dup_fd(&self, fd: &RealFd) -> io::Result<RealFd> {
        net::dup_fd(fd)
    }
}

impl DiskEnv for RealEnv {
    type File = RealFile;
    type DirLock = RealDirLock;

    fn open(&self, path: &Path, opts: OpenOptions) -> impl Future<Output = io::Result<RealFile>> + 'static {
        disk::open(path, opts)
    }

    fn append<'a>(&self, f: &'a RealFile, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        disk::append(f, buf)
    }

    fn read_all<'a>(&self, f: &'a RealFile) -> impl Future<Output = io::Result<Vec<u8>>> + 'a {
        disk::read_all(f)
    }

    fn truncate<'a>(&self, f: &'a RealFile, len: u64) -> impl Future<Output = io::Result<()>> + 'a {
        disk::truncate(f, len)
    }

    fn sync_file<'a>(&self, f: &'a RealFile) -> impl Future<Output = io::Result<()>> + 'a {
        disk::sync_file(f)
    }

    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        disk::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        disk::remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        disk::create_dir_all(path)
    }

    fn sync_dir(&self, dir: &Path) -> impl Future<Output = io::Result<()>> + 'static {
        disk::sync_dir(dir)
    }

    fn read_dir(&self, dir: &Path) -> impl Future<Output = io::Result<Vec<String>>> + 'static {
        disk::read_dir(dir)
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<RealDirLock> {
        disk::lock_dir(dir)
    }
}
