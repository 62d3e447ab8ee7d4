//! The process facet: spawning programs, exit statuses, signals, watching
//! any pid, fds inherited at fixed numbers.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;

/// A process id as the host numbers it: reused once the number wraps, so
/// never a safe name for a process that may have exited (use a child handle).
pub type Pid = u32;

/// The signals warden sends and handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// SIGHUP: reload.
    Hup,
    /// SIGINT: interrupt.
    Int,
    /// SIGKILL: ends the process at once; cannot be handled.
    Kill,
    /// SIGTERM: polite stop.
    Term,
    /// SIGSTOP: pauses the process; cannot be handled.
    Stop,
    /// SIGCONT: resumes a stopped process.
    Cont,
    /// SIGUSR1: application-defined.
    Usr1,
}

impl Signal {
    /// The Linux signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Kill => 9,
            Signal::Usr1 => 10,
            Signal::Term => 15,
            Signal::Cont => 18,
            Signal::Stop => 19,
        }
    }

    /// The signal with Linux number `n`.
    pub fn from_number(n: i32) -> Option<Signal> {
        [Signal::Hup, Signal::Int, Signal::Kill, Signal::Usr1, Signal::Term, Signal::Cont, Signal::Stop]
            .into_iter()
            .find(|s| s.number() == n)
    }

    /// Whether a process may install a handler for it.
    pub fn can_be_handled(self) -> bool {
        !matches!(self, Signal::Kill | Signal::Stop)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Hup => "SIGHUP",
            Signal::Int => "SIGINT",
            Signal::Kill => "SIGKILL",
            Signal::Term => "SIGTERM",
            Signal::Stop => "SIGSTOP",
            Signal::Cont => "SIGCONT",
            Signal::Usr1 => "SIGUSR1",
        })
    }
}

/// How a process ended, as its parent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signaled(Signal),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by {s}"),
        }
    }
}

/// The value [`ProcessSpec::pid_var`] gives a variable: backends replace it
/// with the child's pid (a NUL byte, so no real value can collide with it).
pub const CHILD_PID: &str = "\u{0}child-pid";

/// What to start: a program (a name registered with the simulator, or for
/// the real backend a name its program binary dispatches on, or a path),
/// its arguments and environment, and the fds it inherits at fixed numbers
/// (every other fd is closed).
pub struct ProcessSpec<Fd> {
    /// Program name or path.
    pub program: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables (the only ones the child sees).
    pub vars: Vec<(String, String)>,
    /// Descriptors placed at the given numbers (3, 4, ... by convention).
    pub fds: Vec<(Fd, i32)>,
}

impl<Fd> ProcessSpec<Fd> {
    /// A program with no arguments, variables or fds.
    pub fn new(program: impl Into<String>) -> Self {
        ProcessSpec { program: program.into(), args: Vec::new(), vars: Vec::new(), fds: Vec::new() }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds an environment variable.
    pub fn var(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.vars.push((k.into(), v.into()));
        self
    }

    /// Sets variable `name` to the child's own pid, as systemd sets
    /// `LISTEN_PID` (the value is only known once the child exists; both
    /// backends fill it in before the program runs).
    pub fn pid_var(self, name: impl Into<String>) -> Self {
        self.var(name, CHILD_PID)
    }

    /// Passes `fd` at number `n`.
    pub fn fd(mut self, fd: Fd, n: i32) -> Self {
        self.fds.push((fd, n));
        self
    }
}

/// How a child starts beyond its [`ProcessSpec`]: what a service manager
/// needs (systemd's `WorkingDirectory=`, its own process group, captured
/// output, `NOTIFY_SOCKET`, `LISTEN_PID`). `Default` is what
/// [`ProcessEnv::spawn_process`] does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// The child's working directory (default: the caller's).
    pub working_dir: Option<PathBuf>,
    /// Start the child in a new process group led by itself, so
    /// [`ProcessEnv::signal_group`] reaches it and everything it forks.
    pub new_process_group: bool,
    /// Capture stdout and stderr as lines ([`ProcessEnv::next_output_line`]).
    pub capture_output: bool,
    /// Find a program named without '/' on `PATH` (the child's, else the
    /// caller's), as execvp does, instead of the backend's program lookup.
    pub search_path: bool,
    /// Give the child a notification socket (`NOTIFY_SOCKET`) whose messages
    /// [`ProcessEnv::next_notification`] returns.
    pub notify: bool,
    /// Set this variable to the child's own pid in its environment
    /// (`LISTEN_PID` of socket activation), known only after fork.
    pub pid_var: Option<String>,
    /// SIGKILL the child when the calling process dies, however it dies.
    pub kill_with_parent: bool,
    /// Pass the spec's fds in blocking mode, as systemd passes activated
    /// sockets. The mode belongs to the open file description, which the
    /// caller shares: only for fds the caller does not use itself.
    pub blocking_fds: bool,
}

/// Which output stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// The child's fd 1.
    Stdout,
    /// The child's fd 2.
    Stderr,
}

/// One line a child wrote (without its newline; very long lines are split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Where it was written.
    pub stream: OutputStream,
    /// The text, invalid UTF-8 replaced.
    pub text: String,
}

/// Processes, signals and inherited state of the calling process.
pub trait ProcessEnv {
    /// A child process: waitable for its status, signalled safely (it never
    /// names another process once this one exited, as with a pidfd).
    type Child: 'static;
    /// An open descriptor of any kind, closed on drop.
    type Fd: 'static;
    /// A stream of the signals this process handles; dropping it restores
    /// their default disposition.
    type Signals: 'static;

    /// This process's pid.
    fn pid(&self) -> Pid;
    /// Starts a child process.
    fn spawn_process(&self, spec: ProcessSpec<Self::Fd>) -> io::Result<Self::Child>;
    /// The child's pid.
    fn child_pid(&self, child: &Self::Child) -> Pid;
    /// Completes with the child's exit status.
    fn wait_child(&self, child: &Self::Child) -> impl Future<Output = ExitStatus> + 'static;
    /// Signals the child; `NotFound` ("no such process") once it exited.
    fn signal_child(&self, child: &Self::Child, signal: Signal) -> io::Result<()>;
    /// Signals whatever process has number `pid` now (kill(2)): racy.
    fn kill(&self, pid: Pid, signal: Signal) -> io::Result<()>;
    /// A handle on process `pid`, which need not be a child (a pidfd on
    /// Linux): signalling it never reaches another process once it exited,
    /// and waiting on it completes when it exits, with `Code(-1)` (only a
    /// parent learns the status). `NotFound` when no process has that pid.
    fn open_process(&self, pid: Pid) -> io::Result<Self::Child>;
    /// Completes when process `pid` has exited; only the parent learns how.
    fn watch(&self, pid: Pid) -> io::Result<impl Future<Output = ()> + 'static>;
    /// Starts handling `signals` (unhandled, SIGTERM/SIGINT/SIGHUP kill).
    fn handle_signals(&self, signals: &[Signal]) -> io::Result<Self::Signals>;
    /// The next handled signal.
    fn next_signal<'a>(&self, signals: &'a mut Self::Signals) -> impl Future<Output = Signal> + 'a;
    /// Takes the fd inherited at number `n`, once.
    fn inherited_fd(&self, n: i32) -> Option<Self::Fd>;
    /// An environment variable of this process.
    fn var(&self, name: &str) -> Option<String>;

    /// Starts a child process with `opts` (see [`SpawnOptions`]).
    fn spawn_with(&self, spec: ProcessSpec<Self::Fd>, opts: SpawnOptions) -> io::Result<Self::Child>;
    /// Signals the process group the child leads (spawned with
    /// [`SpawnOptions::new_process_group`]): the child and whatever it
    /// forked that stayed in its group. `NotFound` once the group is empty.
    fn signal_group(&self, child: &Self::Child, signal: Signal) -> io::Result<()>;
    /// The next line the child wrote to stdout or stderr; `None` once both
    /// are closed (or when output is not captured).
    fn next_output_line<'a>(&self, child: &'a Self::Child) -> impl Future<Output = Option<OutputLine>> + 'a;
    /// The next message the child sent on its notification socket
    /// (`READY=1`, ...); `None` when it has none.
    fn next_notification<'a>(&self, child: &'a Self::Child) -> impl Future<Output = Option<String>> + 'a;
    /// Sends `state` (`READY=1`, `STOPPING=1`, `WATCHDOG=1`) to this
    /// process's own service manager; `Ok` and nothing sent when it has none.
    fn notify(&self, state: &str) -> io::Result<()>;
    /// Makes this process the reaper of its orphaned descendants
    /// (PR_SET_CHILD_SUBREAPER), so they stay its children.
    fn set_child_subreaper(&self) -> io::Result<()>;
}
