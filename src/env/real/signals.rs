//! Signals of the real backend, through signalfd.
//!
//! The rule, from DESIGN.md "Real backend" and made precise here:
//!
//! - `main` calls [`block_handled_signals`] before any thread exists, so
//!   every thread the process ever has inherits a mask that blocks
//!   SIGHUP, SIGINT, SIGTERM, SIGUSR1 and SIGCONT. A blocked signal can
//!   only be consumed through a signalfd, never by a stray thread's
//!   default action.
//! - [`RealEnv::block_on`](super::RealEnv::block_on) unblocks, on its own
//!   thread, every one of them that no live [`RealSignals`] claims. That
//!   thread is the one a process-directed signal is delivered to, so an
//!   unhandled SIGTERM/SIGINT/SIGHUP/SIGUSR1 kills the process with that
//!   signal (the default disposition), and a pending one kills it the
//!   moment the runtime starts. A program that never handles signals dies
//!   on SIGTERM as any process does.
//! - [`handle_signals`](crate::env::ProcessEnv::handle_signals) blocks its
//!   set on the runtime thread again and opens a signalfd for it: from
//!   then on those signals queue in the signalfd and `next_signal` reads
//!   them. Dropping the [`RealSignals`] closes the signalfd and unblocks
//!   the set (unless another live `RealSignals` still claims a signal), so
//!   a pending or later signal kills the process again.
//! - A child spawned by the real backend starts with an empty mask and
//!   default dispositions ([`reset_in_child`]).
//!
//! Two live `RealSignals` claiming the same signal both wake; one of them
//! reads it. The mask is per thread, so the claim counts are per thread
//! and `RealSignals` is not `Send`.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::fds::{need_runtime, register};
use crate::env::Signal;

/// The signals `main` blocks and a process may handle.
const HANDLED: [Signal; 5] = [Signal::Hup, Signal::Int, Signal::Term, Signal::Usr1, Signal::Cont];

/// Whether [`block_handled_signals`] ran. A `static` because the signal
/// mask it records is process state (exempt from DESIGN.md rule 2).
static BLOCKED_AT_START: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// How many live `RealSignals` on this thread claim each of
    /// [`HANDLED`]. Thread-local because the signal mask is per thread
    /// (exempt from DESIGN.md rule 2: it mirrors OS state).
    static CLAIMS: Cell<[u32; HANDLED.len()]> = const { Cell::new([0; HANDLED.len()]) };
}

fn index(s: Signal) -> Option<usize> {
    HANDLED.iter().position(|h| *h == s)
}

fn sigset(signals: impl IntoIterator<Item = Signal>) -> SigSet {
    let mut set = SigSet::empty();
    for s in signals {
        if let Ok(n) = nix::sys::signal::Signal::try_from(s.number()) {
            set.add(n);
        }
    }
    set
}

/// Blocks SIGHUP, SIGINT, SIGTERM, SIGUSR1 and SIGCONT on the calling
/// thread. Call it first thing in `main`, before any thread exists, so
/// every thread inherits the mask; see the module docs for the whole rule.
pub fn block_handled_signals() -> io::Result<()> {
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&sigset(HANDLED)), None)?;
    BLOCKED_AT_START.store(true, Ordering::SeqCst);
    Ok(())
}

/// Unblocks, on the calling thread, every handled signal that no live
/// [`RealSignals`] claims: from here an unhandled signal kills.
pub(super) fn release_unclaimed() -> io::Result<()> {
    let claims = CLAIMS.with(Cell::get);
    let free = HANDLED.iter().zip(claims).filter(|(_, c)| *c == 0).map(|(s, _)| *s);
    pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&sigset(free)), None)?;
    Ok(())
}

/// A stream of handled signals; dropping it restores their default
/// disposition (closes the signalfd, unblocks them).
pub struct RealSignals {
    fd: Option<AsyncFd<SignalFd>>,
    set: Vec<Signal>,
    /// The mask it changed is this thread's: drop it on this thread.
    _thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for RealSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealSignals").field("set", &self.set).finish_non_exhaustive()
    }
}

/// The number of threads of this process, from /proc/self/status.
fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// Starts handling `signals` on the calling thread.
pub(super) fn handle(signals: &[Signal]) -> io::Result<RealSignals> {
    let mut set: Vec<Signal> = Vec::new();
    for &s in signals {
        if index(s).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{s} cannot be handled")));
        }
        if !set.contains(&s) {
            set.push(s);
        }
    }
    need_runtime()?;
    // Blocking on this thread only is enough when it is the only thread
    // (later threads inherit its mask) or when main blocked the signals
    // before any thread existed. Otherwise another thread would take the
    // signal with its default action, and handling would be a lie.
    if !BLOCKED_AT_START.load(Ordering::SeqCst) && thread_count()? > 1 {
        return Err(io::Error::other(
            "signals can only be handled in a multi-threaded process if main called \
             warden::env::real::block_handled_signals() before starting any thread",
        ));
    }
    let mask = sigset(set.iter().copied());
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    claim(&set, 1);
    let mut signals = RealSignals { fd: None, set, _thread: PhantomData };
    // From here an error drops `signals`, which releases the claim.
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    signals.fd = Some(register(sfd, Interest::READABLE)?);
    Ok(signals)
}

/// Adds `delta` (+1 or -1) to the claims of `set`; returns the signals
/// whose count is now zero.
fn claim(set: &[Signal], delta: i32) -> Vec<Signal> {
    CLAIMS.with(|c| {
        let mut claims = c.get();
        let mut free = Vec::new();
        for s in set {
            if let Some(i) = index(*s) {
                claims[i] = claims[i].saturating_add_signed(delta);
                if claims[i] == 0 {
                    free.push(*s);
                }
            }
        }
        c.set(claims);
        free
    })
}

impl Drop for RealSignals {
    fn drop(&mut self) {
        // Close first: a signal pending in the kernel is delivered by the
        // unblock below and takes its default action.
        drop(self.fd.take());
        let free = claim(&std::mem::take(&mut self.set), -1);
        if let Err(e) = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&sigset(free)), None) {
            tracing::error!(error = %e, "cannot restore default signal disposition");
        }
    }
}

/// The next signal read from the signalfd.
pub(super) async fn next(signals: &mut RealSignals) -> Signal {
    let Some(fd) = signals.fd.as_ref() else {
        return std::future::pending().await;
    };
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                // Only when the reactor is gone (runtime shutting down).
                tracing::error!(error = %e, "cannot read signals");
                return std::future::pending().await;
            }
        };
        match guard.get_inner().read_signal() {
            Ok(Some(info)) => {
                if let Some(s) = i32::try_from(info.ssi_signo).ok().and_then(Signal::from_number) {
                    return s;
                }
            }
            Ok(None) => guard.clear_ready(),
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read signals");
                return std::future::pending().await;
            }
        }
    }
}

/// In a forked child before exec: empty signal mask and default
/// dispositions for the handled signals and SIGPIPE (an ignored signal
/// stays ignored across exec, and std ignores SIGPIPE). Only
/// async-signal-safe calls.
pub(super) fn reset_in_child() -> io::Result<()> {
    // SAFETY: sigemptyset/sigprocmask/sigaction on local, initialised
    // values; all async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut act.sa_mask);
        for sig in HANDLED.iter().map(|s| s.number()).chain([libc::SIGPIPE]) {
            if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_count_per_signal() {
        assert!(claim(&[Signal::Term, Signal::Hup], 1).is_empty());
        assert!(claim(&[Signal::Term], 1).is_empty());
        assert_eq!(claim(&[Signal::Term, Signal::Hup], -1), vec![Signal::Hup]);
        assert_eq!(claim(&[Signal::Term], -1), vec![Signal::Term]);
    }

    #[test]
    fn only_handled_signals_are_in_the_set() {
        assert!(index(Signal::Kill).is_none());
        assert!(index(Signal::Stop).is_none());
        assert!(sigset(HANDLED).contains(nix::sys::signal::Signal::SIGTERM));
        assert!(!sigset(HANDLED).contains(nix::sys::signal::Signal::SIGKILL));
    }
}
