//! `warden handoff-coordinator`: the handoff's coordinator S as a process.
//! `warden run` starts one for each service with `handoff = true` (the
//! service's listeners passed at fds 3.., its generations dying with it,
//! a fresh start each time); alone, it binds the listeners itself and a
//! restart converges from the journal it left. `warden upgrade` (or any
//! client of `coordinator::request_handoff`) asks it for handoffs on its
//! admin socket.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use warden::env::real::RealEnv;
use warden::env::{Addr, ProcessEnv, SpawnOptions};
use warden::handoff::coordinator::{self, CoordinatorConfig, CoordinatorHost, CoordinatorSetup, GenSpec, vars};
use warden::handoff::journal;

/// Variables of S's own environment that are not passed on to generations:
/// the coordinator sets them per generation, or they were meant for S.
const NOT_PASSED: [&str; 4] = [vars::LISTEN_FDS, vars::LISTEN_FDNAMES, vars::LISTEN_PID, "WARDEN_CRASH_AT"];

/// What `warden handoff-coordinator` takes.
#[derive(Args, Clone, Debug)]
pub(crate) struct CoordinatorArgs {
    /// Holds the journal; locked, so one coordinator runs per directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The admin socket where handoffs are asked for [default: DIR/admin.sock].
    #[arg(long, value_name = "PATH")]
    pub admin: Option<PathBuf>,
    /// Where each generation's handoff socket lives [default: DIR/gen].
    #[arg(long, value_name = "DIR")]
    pub ctl_dir: Option<PathBuf>,
    /// A listener of the service, `NAME=IP:PORT` (repeat for more). One
    /// passed at fds 3.. under that name (LISTEN_FDS, LISTEN_FDNAMES) is
    /// used as is; the others are bound.
    #[arg(long = "listen", value_name = "NAME=ADDR")]
    pub listen: Vec<String>,
    /// A generation must say Hello within this.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub hello_timeout: Option<Duration>,
    /// The incumbent may wait this long for its open connections.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub drain_grace: Option<Duration>,
    /// From the request to the incumbent's seal at most.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub deadline: Option<Duration>,
    /// From Begin to the successor's Ready at most.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ready_timeout: Option<Duration>,
    /// Silence of a sealing incumbent before the handoff is given up.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub liveness: Option<Duration>,
    /// A successor told to give up must exit within this (then SIGKILL).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub abort_grace: Option<Duration>,
    /// A retired incumbent must exit within this (then SIGKILL).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retire_grace: Option<Duration>,
    /// Pause before a failed start or reconnect is tried again.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retry: Option<Duration>,
    /// Generations get SIGKILL when the coordinator dies (as under
    /// `warden run`, which restarts the coordinator, fresh).
    #[arg(long)]
    pub generations_die_with_coordinator: bool,
    /// Remove a journal left by an earlier run before starting (its
    /// generations are known to be gone).
    #[arg(long)]
    pub fresh: bool,
    /// The service's command (argv; a program without '/' is found on PATH).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl CoordinatorArgs {
    fn config(&self) -> CoordinatorConfig {
        let d = CoordinatorConfig::default();
        CoordinatorConfig {
            hello_timeout: self.hello_timeout.unwrap_or(d.hello_timeout),
            drain_grace: self.drain_grace.unwrap_or(d.drain_grace),
            deadline: self.deadline.unwrap_or(d.deadline),
            ready_timeout: self.ready_timeout.unwrap_or(d.ready_timeout),
            liveness: self.liveness.unwrap_or(d.liveness),
            abort_grace: self.abort_grace.unwrap_or(d.abort_grace),
            retire_grace: self.retire_grace.unwrap_or(d.retire_grace),
            retry: self.retry.unwrap_or(d.retry),
        }
    }

    fn setup(&self) -> Result<CoordinatorSetup, String> {
        let listeners = self
            .listen
            .iter()
            .map(|l| {
                let (name, addr) = l.split_once('=').ok_or_else(|| format!("--listen {l:?}: not NAME=IP:PORT"))?;
                let addr = addr.parse().map_err(|e| format!("--listen {l:?}: {e}"))?;
                Ok((name.to_owned(), Addr::Tcp(addr)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let (program, args) = self.command.split_first().ok_or("no command")?;
        let vars = std::env::vars()
            .filter(|(k, _)| !NOT_PASSED.contains(&k.as_str()) && !k.starts_with("WARDEN_HANDOFF_"))
            .collect();
        Ok(CoordinatorSetup {
            config: self.config(),
            state_dir: self.state_dir.clone(),
            ctl_dir: self.ctl_dir.clone().unwrap_or_else(|| self.state_dir.join("gen")),
            admin: Addr::Unix(self.admin.clone().unwrap_or_else(|| self.state_dir.join("admin.sock"))),
            listeners,
            first: GenSpec { program: program.clone(), args: args.to_vec() },
            vars,
        })
    }
}

/// The listeners passed at fds 3.. for this process, by name.
fn passed_listeners(env: &RealEnv) -> Vec<(String, warden::env::real::RealFd)> {
    let for_us = env.var(vars::LISTEN_PID).and_then(|p| p.parse::<u32>().ok()) == Some(env.pid());
    let n: i32 = env.var(vars::LISTEN_FDS).and_then(|v| v.parse().ok()).unwrap_or(0);
    if !for_us || n <= 0 {
        return Vec::new();
    }
    let names = env.var(vars::LISTEN_FDNAMES).unwrap_or_default();
    names.split(':').zip(3..3 + n).filter_map(|(name, fd)| Some((name.to_owned(), env.inherited_fd(fd)?))).collect()
}

/// Runs S; returns the process exit status.
pub(crate) fn run(args: CoordinatorArgs) -> i32 {
    let setup = match args.setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warden handoff-coordinator: {e}");
            return 2;
        }
    };
    if args.fresh {
        match std::fs::remove_file(setup.state_dir.join(journal::FILE)) {
            Ok(()) => tracing::info!("fresh start: the earlier journal was removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "fresh start: cannot remove the earlier journal"),
        }
    }
    let spawn = SpawnOptions {
        search_path: true,
        kill_with_parent: args.generations_die_with_coordinator,
        ..SpawnOptions::default()
    };
    let out = RealEnv::block_on(async move {
        let env = RealEnv::new();
        let held = passed_listeners(&env);
        tracing::info!(
            program = %setup.first.program,
            held = held.len(),
            admin = %setup.admin,
            "handoff coordinator starting"
        );
        coordinator::run_hosted(env, setup, CoordinatorHost { held, spawn }).await
    });
    out.unwrap_or_else(|e| {
        eprintln!("warden handoff-coordinator: {e}");
        1
    })
}
