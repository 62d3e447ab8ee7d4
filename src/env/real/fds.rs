//! Descriptors of the real backend: [`RealFd`], fds inherited at fixed
//! numbers, and the plan that places a child's fds at their numbers.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// An open descriptor of any kind, closed on drop.
#[derive(Debug)]
pub struct RealFd(OwnedFd);

impl RealFd {
    /// Wraps an owned descriptor.
    pub fn new(fd: OwnedFd) -> Self {
        RealFd(fd)
    }

    /// The owned descriptor inside.
    pub fn into_owned(self) -> OwnedFd {
        self.0
    }

    pub(super) fn as_owned(&self) -> &OwnedFd {
        &self.0
    }
}

impl From<OwnedFd> for RealFd {
    fn from(fd: OwnedFd) -> Self {
        RealFd(fd)
    }
}

impl From<RealFd> for OwnedFd {
    fn from(fd: RealFd) -> Self {
        fd.0
    }
}

impl AsFd for RealFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for RealFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// `Other` unless called inside the tokio runtime of
/// [`RealEnv::block_on`](super::RealEnv::block_on): registering a fd with
/// the reactor needs it (tokio would panic).
pub(super) fn need_runtime() -> io::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| io::Error::other("the real backend's I/O must run inside RealEnv::block_on"))
}

/// Registers an owned fd with the runtime's reactor.
pub(super) fn register<T: AsRawFd>(fd: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    need_runtime()?;
    // SAFETY: every `T` used here (OwnedFd, SignalFd) owns its fd, keeps it
    // open until dropped and always returns the same number.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

/// Numbers already taken by [`take_inherited`].
///
/// A `static` because the fd table it mirrors is process-wide: two
/// `RealEnv` handles must not both own fd 3 (the second close would close
/// whatever the number names by then). Exempt from DESIGN.md rule 2 for
/// that reason: the OS state it shadows is itself shared.
static TAKEN: std::sync::Mutex<BTreeSet<i32>> = std::sync::Mutex::new(BTreeSet::new());

/// Takes ownership of fd `n` inherited from the parent, once.
///
/// `None` when `n` is not open, was taken before, or has `FD_CLOEXEC` set:
/// an inherited fd survived exec, so it has the flag clear, while every fd
/// this process opened itself (std, tokio, mio, nix all open with
/// `O_CLOEXEC`) has it set. That keeps `inherited_fd(3)` from seizing, say,
/// the runtime's epoll fd when the parent passed nothing at 3. The taken fd
/// gets `FD_CLOEXEC`, like every other fd this process owns.
pub(super) fn take_inherited(n: i32) -> Option<RealFd> {
    if n < 0 {
        return None;
    }
    let mut taken = TAKEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if taken.contains(&n) {
        return None;
    }
    // SAFETY: F_GETFD only reads the flags of whatever `n` names, if anything.
    let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
    if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
        return None;
    }
    // SAFETY: as above; setting FD_CLOEXEC on an open fd.
    let rc = unsafe { libc::fcntl(n, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    if rc < 0 {
        return None;
    }
    taken.insert(n);
    // SAFETY: `n` is open, nothing in this process owns it (it was inherited
    // without FD_CLOEXEC and nobody took it before), and the set above makes
    // sure nobody takes it again.
    Some(RealFd(unsafe { OwnedFd::from_raw_fd(n) }))
}

/// How a child's fds are laid out before exec: computed in the parent, so
/// the child (between fork and exec, where only async-signal-safe calls are
/// allowed) does no allocation and no decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FdPlan {
    /// The target numbers, in the order of the spec.
    pub targets: Vec<i32>,
    /// Temporary copies are made at or above this number, above every
    /// target, so that placing one fd never overwrites a source not yet
    /// placed.
    pub dup_floor: i32,
    /// Inclusive ranges of fds >= 3 that must not survive exec: every
    /// number that is not a target.
    pub close_ranges: Vec<(u32, u32)>,
}

impl FdPlan {
    /// Plans placing fds at `targets`; `InvalidInput` on a negative or
    /// repeated target.
    pub(crate) fn new(targets: &[i32]) -> io::Result<FdPlan> {
        let mut sorted = Vec::with_capacity(targets.len());
        for &t in targets {
            let t = u32::try_from(t)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("fd target {t} is negative")))?;
            sorted.push(t);
        }
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("fd target {} is given twice", w[0])));
        }
        let max = sorted.last().copied().unwrap_or(0);
        let dup_floor = i32::try_from(max.saturating_add(1).max(3))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("fd target {max} is too large")))?;
        let mut close_ranges = Vec::new();
        let mut next = 3u32;
        for &t in &sorted {
            if t < next {
                continue;
            }
            if t > next {
                close_ranges.push((next, t - 1));
            }
            next = t + 1;
        }
        close_ranges.push((next, u32::MAX));
        Ok(FdPlan { targets: targets.to_vec(), dup_floor, close_ranges })
    }

    /// Runs the plan in a forked child: `sources[i]` ends up at
    /// `targets[i]` with `FD_CLOEXEC` clear, and every other fd >= 3 is
    /// marked close-on-exec. `scratch` has one slot per source.
    ///
    /// Only async-signal-safe calls, no allocation. Close-on-exec rather
    /// than closing now keeps std's own exec-error pipe working (it is
    /// close-on-exec already, so it still closes exactly at exec).
    pub(crate) fn apply_in_child(&self, sources: &[RawFd], scratch: &mut [RawFd], nofile: u32) -> io::Result<()> {
        // 1. Copy every source above the highest target, so no dup2 below
        //    overwrites a source that is still to be placed.
        for (src, tmp) in sources.iter().zip(scratch.iter_mut()) {
            // SAFETY: fcntl on fds; F_DUPFD_CLOEXEC returns a new fd or -1.
            let fd = unsafe { libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, self.dup_floor) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            *tmp = fd;
        }
        // 2. Place each copy at its number; dup2's new fd has FD_CLOEXEC
        //    clear, and clearing it explicitly costs nothing.
        for (tmp, target) in scratch.iter().zip(&self.targets) {
            // SAFETY: dup2 and fcntl on fds this process holds.
            unsafe {
                if libc::dup2(*tmp, *target) < 0 || libc::fcntl(*target, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // 3. Every other fd >= 3 (the copies included) closes at exec.
        for &(first, last) in &self.close_ranges {
            cloexec_range(first, last, nofile)?;
        }
        Ok(())
    }
}

/// Marks fds `first..=last` close-on-exec with `close_range(2)`
/// (`CLOSE_RANGE_CLOEXEC`, Linux 5.11); on an older kernel, one `fcntl` per
/// fd below `nofile` (the soft `RLIMIT_NOFILE`, which bounds fd numbers).
fn cloexec_range(first: u32, last: u32, nofile: u32) -> io::Result<()> {
    // SAFETY: close_range with the CLOEXEC flag only sets flags.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, libc::CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) {
        return Err(err);
    }
    for fd in first..=last.min(nofile.saturating_sub(1)) {
        #[allow(clippy::cast_possible_wrap)] // fd < nofile <= i32::MAX
        // SAFETY: fcntl on a number that may or may not be open; EBADF is fine.
        unsafe {
            libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// The soft `RLIMIT_NOFILE`, capped to 2^20 (the kernel's default
/// `fs.nr_open`), for [`cloexec_range`]'s fallback: an unlimited soft limit
/// must not turn into 2^31 fcntl calls in the child.
pub(super) fn nofile_limit() -> u32 {
    const CAP: u32 = 1 << 20;
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc != 0 {
        return CAP;
    }
    u32::try_from(rl.rlim_cur).unwrap_or(CAP).min(CAP)
}

/// Sets or clears `O_NONBLOCK` on the open file description behind `fd`
/// (shared with every process holding it; no write when already so).
pub(super) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a fd the caller holds.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let wanted = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
        if wanted != flags && libc::fcntl(fd, libc::F_SETFL, wanted) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_with_no_fds_marks_everything_from_3() {
        let p = FdPlan::new(&[]).unwrap();
        assert_eq!(p.dup_floor, 3);
        assert_eq!(p.close_ranges, vec![(3, u32::MAX)]);
    }

    #[test]
    fn plan_keeps_targets_and_copies_above_them() {
        let p = FdPlan::new(&[5, 3, 9]).unwrap();
        assert_eq!(p.dup_floor, 10);
        assert_eq!(p.close_ranges, vec![(4, 4), (6, 8), (10, u32::MAX)]);
        assert_eq!(p.targets, vec![5, 3, 9]);
    }

    #[test]
    fn plan_with_stdio_targets() {
        let p = FdPlan::new(&[1, 3, 4]).unwrap();
        assert_eq!(p.dup_floor, 5);
        assert_eq!(p.close_ranges, vec![(5, u32::MAX)]);
        let p = FdPlan::new(&[0]).unwrap();
        assert_eq!(p.dup_floor, 3);
        assert_eq!(p.close_ranges, vec![(3, u32::MAX)]);
    }

    #[test]
    fn plan_rejects_bad_targets() {
        assert_eq!(FdPlan::new(&[3, 3]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(FdPlan::new(&[-1]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(FdPlan::new(&[i32::MAX]).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
