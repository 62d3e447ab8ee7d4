//! Child processes of the real backend: spawned through std's `Command`
//! with a `pre_exec` that lays out the fds and resets signals, then held
//! by a pidfd, so waiting and signalling never name a recycled pid.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::rc::Rc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::child_io::{NotifySocket, Output, PidExec, child_path_var, output_pipes, search_path};
use super::fds::{FdPlan, RealFd, need_runtime, nofile_limit, register};
use super::{RealEnv, signals};
use crate::env::{CHILD_PID, ExitStatus, OutputLine, Pid, ProcessSpec, Signal, SpawnOptions};

/// A child process, held by a pidfd.
///
/// Dropping it without [`wait_child`](crate::env::ProcessEnv::wait_child)
/// leaves a zombie until this process exits, as with any unreaped child.
pub struct RealChild {
    inner: Rc<ChildInner>,
}

struct ChildInner {
    pid: Pid,
    pidfd: AsyncFd<OwnedFd>,
    /// Not our child (`open_process`): its exit is seen, its status is not.
    adopted: bool,
    /// Set once the child was reaped: `waitid` reports a status only once,
    /// every later wait returns this.
    status: Cell<Option<ExitStatus>>,
    /// Captured stdout/stderr lines ([`SpawnOptions::capture_output`]).
    output: Option<Output>,
    /// Its notification socket ([`SpawnOptions::notify`]).
    notify: Option<NotifySocket>,
    /// It leads its own process group ([`SpawnOptions::new_process_group`]).
    group: bool,
}

impl Drop for ChildInner {
    fn drop(&mut self) {
        // Unreaped and unheld: an orphan for `reap_orphans` from now on.
        // Only a child this handle owns and has not reaped: once reaped,
        // its pid may already name a newer child, owned by another handle.
        if !self.adopted && self.status.get().is_none() {
            super::orphans::disown(self.pid);
        }
    }
}

impl std::fmt::Debug for RealChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealChild").field("pid", &self.inner.pid).finish_non_exhaustive()
    }
}

/// `NotFound` with the message the trait promises.
pub(super) fn no_such_process() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such process")
}

/// A pid as the kernel's `pid_t`; `InvalidInput` for 0 and for numbers
/// above `i32::MAX`, which kill(2) would read as a process group or "all".
fn pid_t(pid: Pid) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{pid} is not a process id"))),
    }
}

/// pidfd_open(2): a pidfd for process `pid` (close-on-exec by definition).
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::ESRCH) { no_such_process() } else { e });
    }
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just returned this new fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a `waitid` result maps to an [`ExitStatus`], from `si_code` and
/// `si_status`.
///
/// A signal warden has no name for (SIGSEGV, SIGABRT, ...) becomes
/// `Code(128 + n)`, the shell's convention: [`ExitStatus`] cannot carry an
/// unnamed signal, and `Signaled(Kill)` would claim a SIGKILL nobody sent.
/// An unexpected `si_code` becomes `Code(-1)`, which no exit can produce.
pub(super) fn exit_status(si_code: i32, si_status: i32) -> ExitStatus {
    match si_code {
        libc::CLD_EXITED => ExitStatus::Code(si_status),
        libc::CLD_KILLED | libc::CLD_DUMPED => match Signal::from_number(si_status) {
            Some(s) => ExitStatus::Signaled(s),
            None => ExitStatus::Code(128 + si_status),
        },
        _ => ExitStatus::Code(-1),
    }
}

impl RealEnv {
    pub(super) fn spawn_real(&self, spec: ProcessSpec<RealFd>, mut opts: SpawnOptions) -> io::Result<RealChild> {
        need_runtime()?;
        let ProcessSpec { program, args, mut vars, fds } = spec;
        // A variable set with `ProcessSpec::pid_var` is a pid variable too.
        if let Some(i) = vars.iter().position(|(_, v)| v == CHILD_PID) {
            let (name, _) = vars.remove(i);
            opts.pid_var.get_or_insert(name);
        }
        let (sources, targets): (Vec<RealFd>, Vec<i32>) = fds.into_iter().unzip();
        let plan = FdPlan::new(&targets)?;
        let raw_sources: Vec<RawFd> = sources.iter().map(AsRawFd::as_raw_fd).collect();
        let mut scratch: Vec<RawFd> = vec![-1; raw_sources.len()];
        let nofile = nofile_limit();

        if opts.blocking_fds {
            for fd in &raw_sources {
                super::fds::set_nonblocking(*fd, false)?;
            }
        }
        let notify = if opts.notify { Some(NotifySocket::bind()?) } else { None };
        if let Some(n) = &notify {
            vars.retain(|(k, _)| k != "NOTIFY_SOCKET");
            vars.push(("NOTIFY_SOCKET".to_owned(), n.path().display().to_string()));
        }
        let resolved = if opts.search_path { Some(search_path(&program, &child_path_var(&vars))?) } else { None };
        let mut cmd = match (&self.launcher, &resolved) {
            (_, Some(path)) => {
                let mut c = std::process::Command::new(path);
                c.arg0(&program);
                c
            }
            (Some(l), None) if !program.contains('/') => {
                let mut c = std::process::Command::new(&l.exe);
                c.args(&l.prefix_args).arg(&program);
                c
            }
            _ => std::process::Command::new(&program),
        };
        let mut pid_exec = match &opts.pid_var {
            Some(name) => {
                // The same program and argv as `cmd` (launcher included).
                let path = std::path::PathBuf::from(cmd.get_program());
                let argv0 = if resolved.is_some() { program.clone() } else { path.display().to_string() };
                let argv: Vec<String> = std::iter::once(argv0)
                    .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
                    .chain(args.iter().cloned())
                    .collect();
                Some(PidExec::new(&path, &argv, &vars, name)?)
            }
            None => None,
        };
        cmd.args(&args).env_clear().envs(vars);
        if let Some(dir) = &opts.working_dir {
            cmd.current_dir(dir);
        }
        if opts.new_process_group {
            cmd.process_group(0);
        }
        let mut pipes_parent = None;
        if opts.capture_output {
            let (parent, (out_w, err_w)) = output_pipes()?;
            cmd.stdout(std::process::Stdio::from(out_w)).stderr(std::process::Stdio::from(err_w));
            pipes_parent = Some(parent);
        }
        let kill_with_parent = opts.kill_with_parent;
        // SAFETY: the closure runs between fork and exec in the child and
        // makes only async-signal-safe calls (fcntl, dup2, close_range,
        // sigprocmask, sigaction, prctl, getpid, execve) on data prepared
        // above; it allocates nothing (io::Error::last_os_error does not
        // allocate).
        unsafe {
            cmd.pre_exec(move || {
                plan.apply_in_child(&raw_sources, &mut scratch, nofile)?;
                signals::reset_in_child()?;
                if kill_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                match pid_exec.as_mut() {
                    // Execs here (std's exec never runs) with the pid set.
                    Some(exec) => Err(exec.exec_in_child()),
                    None => Ok(()),
                }
            });
        }
        let spawned = cmd.spawn();
        // The write ends of the output pipes belong to the child now.
        drop(cmd);
        let mut child = spawned?;
        // Our copies of the passed fds close now; the child has its own.
        drop(sources);
        let pid = child.id();
        // Nobody reaps the child but us, so its pid cannot be reused before
        // the pidfd exists.
        let pidfd = match pid_t(pid).and_then(pidfd_open).and_then(|fd| register(fd, Interest::READABLE)) {
            Ok(fd) => fd,
            Err(e) => {
                // A child we cannot hold must not run unsupervised; SIGKILL
                // makes the reap below immediate.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        // std's Child is dropped without waiting: the pidfd holds it now.
        drop(child);
        super::orphans::own(pid);
        tracing::debug!(pid, program = %program, "spawned");
        let output = match pipes_parent {
            Some((out, err)) => Some(Output::start(out, err)?),
            None => None,
        };
        let group = opts.new_process_group;
        Ok(RealChild {
            inner: Rc::new(ChildInner { pid, pidfd, adopted: false, status: Cell::new(None), output, notify, group }),
        })
    }

    pub(super) fn signal_group_real(child: &RealChild, signal: Signal) -> io::Result<()> {
        let inner = &child.inner;
        if !inner.group {
            return Self::signal_child_real(child, signal);
        }
        // The group outlives its leader while any member lives; its number
        // is not reused before it is empty (a pid that names a live group
        // is never handed out), so this never reaches a stranger's group
        // while a member of ours is left.
        // SAFETY: killpg with a positive group id.
        let rc = unsafe { libc::killpg(pid_t(inner.pid)?, signal.number()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ESRCH) { no_such_process() } else { e });
        }
        Ok(())
    }

    pub(super) async fn next_output_line_real(child: &RealChild) -> Option<OutputLine> {
        match &child.inner.output {
            Some(o) => o.next().await,
            None => None,
        }
    }

    pub(super) async fn next_notification_real(child: &RealChild) -> Option<String> {
        match &child.inner.notify {
            Some(n) => n.next().await,
            None => None,
        }
    }

    pub(super) fn child_pid_real(child: &RealChild) -> Pid {
        child.inner.pid
    }

    pub(super) fn wait_real(child: &RealChild) -> impl Future<Output = ExitStatus> + 'static {
        let inner = child.inner.clone();
        async move {
            loop {
                if let Some(s) = inner.status.get() {
                    return s;
                }
                let mut guard = match inner.pidfd.readable().await {
                    Ok(g) => g,
                    Err(e) => {
                        // Only when the reactor is gone (runtime shutting down).
                        tracing::error!(pid = inner.pid, error = %e, "cannot wait for child");
                        return std::future::pending().await;
                    }
                };
                if let Some(s) = inner.status.get() {
                    return s;
                }
                if inner.adopted {
                    // Readable: it exited. Only its parent may reap it.
                    let s = ExitStatus::Code(-1);
                    inner.status.set(Some(s));
                    return s;
                }
                match waitid_pidfd(inner.pidfd.get_ref()) {
                    Ok(Some(s)) => {
                        inner.status.set(Some(s));
                        super::orphans::disown(inner.pid);
                        tracing::debug!(pid = inner.pid, status = %s, "child exited");
                        return s;
                    }
                    Ok(None) => guard.clear_ready(),
                    Err(e) => {
                        // ECHILD: someone else reaped it (SIGCHLD ignored, a
                        // stray waitpid(-1)). The status is lost; Code(-1)
                        // says so, since no exit produces it.
                        tracing::error!(pid = inner.pid, error = %e, "child's exit status lost");
                        let s = ExitStatus::Code(-1);
                        inner.status.set(Some(s));
                        super::orphans::disown(inner.pid);
                        return s;
                    }
                }
            }
        }
    }

    pub(super) fn signal_child_real(child: &RealChild, signal: Signal) -> io::Result<()> {
        let inner = &child.inner;
        // An exited child is "no such process" even before it is reaped (a
        // zombie would still accept the signal): its pidfd is readable.
        if inner.status.get().is_some() || pidfd_exited(inner.pidfd.get_ref())? {
            return Err(no_such_process());
        }
        // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                inner.pidfd.get_ref().as_raw_fd(),
                signal.number(),
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ESRCH) { no_such_process() } else { e });
        }
        Ok(())
    }

    pub(super) fn kill_real(pid: Pid, signal: Signal) -> io::Result<()> {
        // SAFETY: kill(2) with a positive pid (pid_t rejects 0 and overflow).
        let rc = unsafe { libc::kill(pid_t(pid)?, signal.number()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ESRCH) { no_such_process() } else { e });
        }
        Ok(())
    }

    pub(super) fn open_real(pid: Pid) -> io::Result<RealChild> {
        need_runtime()?;
        let pidfd = register(pidfd_open(pid_t(pid)?)?, Interest::READABLE)?;
        Ok(RealChild {
            inner: Rc::new(ChildInner {
                pid,
                pidfd,
                adopted: true,
                status: Cell::new(None),
                output: None,
                notify: None,
                group: false,
            }),
        })
    }

    pub(super) fn watch_real(pid: Pid) -> io::Result<impl Future<Output = ()> + 'static> {
        need_runtime()?;
        let pidfd = register(pidfd_open(pid_t(pid)?)?, Interest::READABLE)?;
        Ok(async move {
            // A pidfd becomes readable when the process exits and stays so.
            if let Err(e) = pidfd.readable().await {
                tracing::error!(pid, error = %e, "cannot watch process");
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Whether the process behind `pidfd` has exited (its pidfd polls readable).
fn pidfd_exited(pidfd: &OwnedFd) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
}

/// Reaps the child behind `pidfd` if it exited: `Ok(None)` while it runs.
fn waitid_pidfd(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    // SAFETY: an all-zero siginfo_t is a valid value to pass for output.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let id = libc::id_t::try_from(pidfd.as_raw_fd()).map_err(|_| io::Error::other("bad pidfd"))?;
    loop {
        // SAFETY: waitid with a pidfd we own and a valid siginfo_t pointer.
        let rc = unsafe { libc::waitid(libc::P_PIDFD, id, &mut info, libc::WEXITED | libc::WNOHANG) };
        if rc == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: waitid filled `info` for SIGCHLD (or left si_pid 0 with WNOHANG
    // when the child still runs), so these union fields are the valid ones.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(exit_status(info.si_code, status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes_and_named_signals() {
        assert_eq!(exit_status(libc::CLD_EXITED, 0), ExitStatus::Code(0));
        assert_eq!(exit_status(libc::CLD_EXITED, 3), ExitStatus::Code(3));
        assert_eq!(exit_status(libc::CLD_KILLED, libc::SIGTERM), ExitStatus::Signaled(Signal::Term));
        assert_eq!(exit_status(libc::CLD_KILLED, libc::SIGKILL), ExitStatus::Signaled(Signal::Kill));
        assert_eq!(exit_status(libc::CLD_DUMPED, libc::SIGQUIT), ExitStatus::Code(128 + libc::SIGQUIT));
        assert_eq!(exit_status(libc::CLD_KILLED, libc::SIGSEGV), ExitStatus::Code(139));
        assert_eq!(exit_status(libc::CLD_STOPPED, libc::SIGSTOP), ExitStatus::Code(-1));
    }

    #[test]
    fn pids_that_kill_would_misread_are_rejected() {
        assert_eq!(pid_t(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(pid_t(u32::MAX).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(pid_t(1).unwrap(), 1);
    }
}
