//! What a service manager adds to a real child (see
//! [`SpawnOptions`](crate::env::SpawnOptions)): captured output as lines,
//! a notification socket (`NOTIFY_SOCKET`), a program found on `PATH`, and
//! an exec that puts the child's own pid in its environment (`LISTEN_PID`).
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::RefCell;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, BufReader};
use tokio::sync::mpsc;

use crate::env::{OutputLine, OutputStream};

/// Lines longer than this are split (a child must not make warden buffer
/// without bound).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Lines read but not yet taken; a full queue stalls the child's writes.
const LINE_QUEUE: usize = 1024;
/// Where `PATH` search looks when neither the child nor warden has one.
pub(super) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The parent's side of a child's captured output.
pub(super) struct Output {
    rx: RefCell<mpsc::Receiver<OutputLine>>,
}

/// Pipes for a child's stdout and stderr: the write ends go to the child,
/// the read ends to a task that splits lines into a queue.
pub(super) fn output_pipes() -> io::Result<((OwnedFd, OwnedFd), (OwnedFd, OwnedFd))> {
    let out = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let err = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok(((out.0, err.0), (out.1, err.1)))
}

impl Output {
    /// Starts reading `stdout` and `stderr` (read ends) on the local set.
    pub(super) fn start(stdout: OwnedFd, stderr: OwnedFd) -> io::Result<Output> {
        let (tx, rx) = mpsc::channel(LINE_QUEUE);
        for (fd, stream) in [(stdout, OutputStream::Stdout), (stderr, OutputStream::Stderr)] {
            let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
            drop(tokio::task::spawn_local(read_lines(pipe, stream, tx.clone())));
        }
        Ok(Output { rx: RefCell::new(rx) })
    }

    /// The next line; `None` once both pipes closed.
    pub(super) async fn next(&self) -> Option<OutputLine> {
        std::future::poll_fn(|cx| self.rx.borrow_mut().poll_recv(cx)).await
    }
}

async fn read_lines(pipe: tokio::net::unix::pipe::Receiver, stream: OutputStream, tx: mpsc::Sender<OutputLine>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "child output closed");
                return;
            }
        };
        if n == 0 {
            return;
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        if tx.send(OutputLine { stream, text }).await.is_err() {
            return;
        }
    }
}

/// A notification socket (`NOTIFY_SOCKET`): a Unix datagram socket bound
/// in a directory of this process's own, removed when dropped.
pub(super) struct NotifySocket {
    sock: tokio::net::UnixDatagram,
    path: PathBuf,
}

/// Numbers notification sockets within this process. A `static` because
/// the socket paths it names are shared by the whole OS process (exempt
/// from DESIGN.md rule 2 as OS state).
static NEXT_NOTIFY: AtomicU64 = AtomicU64::new(0);

impl NotifySocket {
    /// Binds a fresh socket under the temporary directory.
    pub(super) fn bind() -> io::Result<NotifySocket> {
        let dir = std::env::temp_dir().join(format!("warden-notify-{}", std::process::id()));
        // Re-created if a dropped socket took it away meanwhile.
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let path = dir.join(format!("{}.sock", NEXT_NOTIFY.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_file(&path);
        let sock = tokio::net::UnixDatagram::bind(&path)?;
        Ok(NotifySocket { sock, path })
    }

    /// The path children connect to.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram, as text.
    pub(super) async fn next(&self) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        match self.sock.recv(&mut buf).await {
            // Newline-separated assignments; sd_notify clients often end
            // the last one with a newline too: the message is the same.
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).trim_end_matches('\n').to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "notification socket failed");
                std::future::pending().await
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // The directory goes with its last socket (remove_dir fails while
        // another one is bound there).
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Finds `program` on `path_var` (':'-separated) as execvp would: the first
/// regular, executable file. A name with '/' is returned as is.
pub(super) fn search_path(program: &str, path_var: &str) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, format!("{program}: not found on PATH")))
}

/// An exec prepared in the parent so that the forked child can put its own
/// pid into one environment variable and exec with async-signal-safe calls
/// only (no allocation between fork and exec).
pub(super) struct PidExec {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// `NAME=` followed by room for the digits and the NUL; the child
    /// writes its pid there.
    pid_entry: Vec<u8>,
    name_len: usize,
}

// SAFETY: the raw pointers point into buffers this struct owns and never
// moves (Vec heap storage); it is used by one forked child only.
unsafe impl Send for PidExec {}
// SAFETY: as above; the parent never touches it after building it.
unsafe impl Sync for PidExec {}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"))
}

impl PidExec {
    /// Prepares `path argv.. ` with `vars` and `pid_var=<pid>`.
    pub(super) fn new(path: &Path, argv: &[String], vars: &[(String, String)], pid_var: &str) -> io::Result<Self> {
        let path = cstring(path.as_os_str().as_bytes())?;
        let argv: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect::<io::Result<_>>()?;
        let envp: Vec<CString> = vars
            .iter()
            .filter(|(k, _)| k != pid_var)
            .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<_>>()?;
        let mut pid_entry = Vec::with_capacity(pid_var.len() + 24);
        pid_entry.extend_from_slice(pid_var.as_bytes());
        pid_entry.push(b'=');
        let name_len = pid_entry.len();
        pid_entry.resize(name_len + 24, 0);
        let mut me = PidExec {
            path,
            argv_ptrs: argv.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect(),
            _argv: argv,
            envp_ptrs: Vec::new(),
            _envp: Vec::new(),
            pid_entry,
            name_len,
        };
        me.envp_ptrs = envp.iter().map(|c| c.as_ptr()).collect();
        me.envp_ptrs.push(me.pid_entry.as_ptr().cast());
        me.envp_ptrs.push(std::ptr::null());
        me._envp = envp;
        Ok(me)
    }

    /// In the forked child: writes the pid and execs; returns only on error.
    pub(super) fn exec_in_child(&mut self) -> io::Error {
        // SAFETY: getpid is async-signal-safe.
        let mut pid = u64::try_from(unsafe { libc::getpid() }).unwrap_or(0);
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (pid % 10) as u8;
            n += 1;
            pid /= 10;
            if pid == 0 {
                break;
            }
        }
        for i in 0..n {
            self.pid_entry[self.name_len + i] = digits[n - 1 - i];
        }
        self.pid_entry[self.name_len + n] = 0;
        // SAFETY: null-terminated arrays of pointers to NUL-terminated
        // strings owned by `self`; execve is async-signal-safe.
        unsafe { libc::execve(self.path.as_ptr(), self.argv_ptrs.as_ptr(), self.envp_ptrs.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// The `PATH` to search for a child: its own if given, else this process's.
pub(super) fn child_path_var(vars: &[(String, String)]) -> String {
    vars.iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH").map(|p| OsStr::to_string_lossy(&p).into_owned()))
        .unwrap_or_else(|| DEFAULT_PATH.to_owned())
}
