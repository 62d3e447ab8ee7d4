//! The production binary: warden built on the real backend only. `main`
//! stays thin; the edge modules are in `cli/`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use cli::protocol::Request;
use warden::env::real::RealEnv;

fn main() {
    // Before any thread exists, so every thread inherits the mask: handled
    // signals are then consumed only through a signalfd, and RealEnv::block_on
    // unblocks the ones nobody handles (see warden::env::real::block_handled_signals).
    if let Err(e) = warden::env::real::block_handled_signals() {
        eprintln!("cannot block the handled signals: {e}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    cli::logging::init(cli.log_format);
    // Its own error, not one of the runtime's: the message names the variable.
    if let Err(e) = warden::env::real::check_crash_target() {
        eprintln!("warden: {e}");
        std::process::exit(1);
    }
    let code = match cli.command {
        Command::Run(c) => cli::run::run(&c.config),
        Command::Check(c) => cli::run::check(&c.config),
        Command::Status { config, json } => client(|| cli::client::status(&config.config, json)),
        Command::Start(s) => client(|| cli::client::command(&s.config.config, Request::Start { service: s.service })),
        Command::Stop(s) => client(|| cli::client::command(&s.config.config, Request::Stop { service: s.service })),
        Command::Restart(s) => {
            client(|| cli::client::command(&s.config.config, Request::Restart { service: s.service }))
        }
        Command::Upgrade(s) => {
            client(|| cli::client::command(&s.config.config, Request::Upgrade { service: s.service }))
        }
        Command::HandoffCoordinator(a) => cli::coordinator::run(*a),
        Command::CheckEnv => client(|| cli::check_env::check_env(RealEnv::new())),
    };
    std::process::exit(code);
}

/// Runs a client command: 0, or 1 with the error on stderr.
fn client<F: Future<Output = anyhow::Result<()>>>(f: impl FnOnce() -> F) -> i32 {
    match RealEnv::block_on(f()) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("warden: {e:#}");
            1
        }
        Err(e) => {
            eprintln!("warden: cannot start the runtime: {e}");
            1
        }
    }
}
