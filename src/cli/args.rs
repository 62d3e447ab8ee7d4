//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// warden: a process and task supervisor.
///
/// `warden run -c warden.toml` supervises the services the file lists:
/// starts them in dependency order, restarts them by policy with backoff
/// and restart intensity, stops them in reverse order on SIGTERM/SIGINT.
/// The other commands talk to a running warden through its control socket
/// (the `control` path of the same file).
#[derive(Parser)]
#[command(version, about, long_about)]
pub(crate) struct Cli {
    /// Log format on stderr (the level comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The config file argument shared by every command.
#[derive(Args, Clone)]
pub(crate) struct ConfigArg {
    /// The config file (warden.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

/// A service name and the config file.
#[derive(Args, Clone)]
pub(crate) struct ServiceArg {
    /// The service's name, as in the config file.
    pub service: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Runs in the foreground and supervises the services of FILE.
    ///
    /// Starts each service once the services it starts `after` are ready;
    /// restarts per `restart` with jittered backoff until `intensity` is
    /// exceeded (the service is then failed; a `critical` one stops
    /// warden). On SIGTERM or SIGINT stops every service in reverse
    /// dependency order (its stop_signal, then SIGKILL at its
    /// stop_timeout); a second signal kills everything at once. Exit
    /// status: 0 after a requested stop, 128+N when a second signal N
    /// forced it, 1 when a critical service failed or FILE is invalid.
    Run(ConfigArg),
    /// Validates FILE: exit 0, or exit 2 with FILE:LINE:COL: error on stderr.
    Check(ConfigArg),
    /// Shows every service of a running warden: state, pid, restarts,
    /// readiness.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// A JSON array (name, state, pid, restarts, ready, ...) instead of
        /// a table.
        #[arg(long)]
        json: bool,
    },
    /// Starts a stopped, exited or failed service (its restart count
    /// within the intensity window starts over).
    Start(ServiceArg),
    /// Stops a service (stop_signal, SIGKILL at stop_timeout); it stays
    /// stopped until `warden start`.
    Stop(ServiceArg),
    /// Stops a service and starts it again.
    Restart(ServiceArg),
    /// Replaces a service that declares `handoff = true` by a new process
    /// of its command with no refused or dropped connection: a handoff
    /// through the service's coordinator. Prints the outcome; exit 1 when
    /// the handoff was refused or given up (the old process still serves).
    Upgrade(ServiceArg),
    /// Runs a handoff coordinator (S) in the foreground: what `warden run`
    /// starts for a service with `handoff = true`, usable alone.
    #[command(hide = true, args_override_self = true)]
    HandoffCoordinator(Box<super::coordinator::CoordinatorArgs>),
    /// Checks that this machine gives the real backend what it needs:
    /// a boot-relative monotonic clock, timers that fire in order, tasks
    /// that join, abort and report panics. Exits non-zero on the first
    /// failed check.
    CheckEnv,
}
