//! `warden run` and `warden check`: the config read at the edge, the core
//! service manager on the real backend, and everything around it that
//! only a real process has (control socket, admin HTTP, sd_notify
//! watchdog, orphan reaping, the last sweep of children).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use warden::env::real::{RealEnv, kill_all_children, reap_orphans};
use warden::env::{Env, ProcessEnv};
use warden::service::{Config, CoordinatorProgram, RunOptions};

use super::registry::{self, Registrations};
use super::{admin, control};

/// Variables of warden's environment every service inherits (before its
/// own `env`); the rest of warden's environment is not passed on.
const PASSED_VARS: [&str; 11] =
    ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM"];
/// How long the last sweep waits for killed children to be reaped.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads and validates the config at `path`.
pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let config = Config::parse(path, &text)?;
    registry::check_supported(path, &text, &config)?;
    Ok(config)
}

/// `warden check -c FILE`: 0, or 2 with the error on stderr.
pub(crate) fn check(path: &Path) -> i32 {
    match load(path) {
        Ok(c) => {
            println!("{}: ok ({} services)", path.display(), c.services.len());
            0
        }
        Err(e) => {
            eprintln!("{e:#}");
            2
        }
    }
}

/// `warden run -c FILE`: the process exit status.
pub(crate) fn run(path: &Path) -> i32 {
    // Absolute, so every path derived from the file's directory means the
    // same to a service started in another working directory (a handoff
    // coordinator finds its state there).
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let config = match load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            tracing::error!("invalid config: nothing started");
            return 1;
        }
    };
    let outcome = std::panic::catch_unwind(|| RealEnv::block_on(supervise(config)));
    let code = match outcome {
        Ok(Ok(Ok(code))) => code,
        Ok(Ok(Err(e))) => {
            tracing::error!("{e:#}");
            1
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot start the runtime");
            1
        }
        Err(_) => {
            tracing::error!("warden panicked");
            1
        }
    };
    // Every exit path ends here: nothing warden started outlives it.
    match kill_all_children(SWEEP_TIMEOUT) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(children = n, "killed children left at exit"),
        Err(e) => tracing::error!(error = %e, "cannot list children at exit"),
    }
    code
}

async fn supervise(config: Config) -> anyhow::Result<i32> {
    let env = RealEnv::new();
    env.set_child_subreaper().context("cannot become the subreaper of the services")?;
    let control = control::bind(&config.warden.control).await?;
    let admin = match config.warden.admin {
        Some(a) => Some(admin::bind(a).await?),
        None => None,
    };
    let mut usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
    let base_vars = PASSED_VARS.iter().filter_map(|k| env.var(k).map(|v| ((*k).to_owned(), v))).collect();
    let names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
    // Services with `handoff = true` run under this very binary as their
    // handoff coordinator (`warden handoff-coordinator`).
    let exe = std::env::current_exe().context("cannot find warden's own executable")?;
    let coordinator =
        Some(CoordinatorProgram { program: exe.display().to_string(), args: vec!["handoff-coordinator".to_owned()] });
    let opts = RunOptions { base_vars, watchdog };
    let registrations = Registrations::from_config(&env, &config);
    let (handle, supervision) = warden::service::start_with(env.clone(), config, opts, coordinator)?;
    tracing::info!(services = ?names, "warden running");
    let mut edges = vec![tokio::task::spawn_local(control::serve(control, handle.clone()))];
    if let Some(l) = admin {
        edges.push(tokio::task::spawn_local(admin::serve(l, handle.clone())));
    }
    let reaper_env = env.clone();
    edges.push(tokio::task::spawn_local(async move {
        loop {
            reaper_env.sleep(Duration::from_secs(1)).await;
            if let Err(e) = reap_orphans() {
                tracing::warn!(error = %e, "cannot reap orphans");
            }
        }
    }));
    if let Some(r) = &registrations {
        edges.push(tokio::task::spawn_local(r.clone().run(handle.clone())));
    }
    let code = supervision.await;
    if let Some(r) = &registrations {
        r.shutdown().await;
    }
    for e in edges {
        e.abort();
    }
    Ok(code)
}
