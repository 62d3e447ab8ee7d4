//! Conformance of the world facets (processes, signals, sockets, fd
//! passing, disk) on both backends: each behaviour in
//! `conformance/world.rs` is written once against `Env` and runs as
//! `<name>_sim` (in the simulator, `SIM_SEEDS` seeds) and `<name>_real`
//! (on tokio and the OS, its child processes being this very binary
//! started with `--warden-program NAME`).
//!
//! It owns `main` (libtest-compatible through libtest-mimic) because a
//! real child must block the handled signals before any thread exists.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // the harness edge: temp dirs, current_exe, exit

mod conformance;

use std::path::PathBuf;
use std::time::Duration;

use conformance::{programs, service, world};
use libtest_mimic::{Arguments, Trial};
use warden::env::Env;
use warden::env::real::{RealEnv, block_handled_signals};

const PROGRAM_FLAG: &str = "--warden-program";

fn run_program(args: &[String]) -> ! {
    if let Err(e) = block_handled_signals() {
        eprintln!("cannot block signals: {e}");
        std::process::exit(programs::MISUSED);
    }
    let name = args.first().cloned().unwrap_or_default();
    let rest = args.get(1..).map(<[String]>::to_vec).unwrap_or_default();
    // Programs that start programs run them through this binary too.
    let env = match std::env::current_exe() {
        Ok(exe) => RealEnv::with_launcher(exe, vec![PROGRAM_FLAG.to_owned()]),
        Err(_) => RealEnv::new(),
    };
    let code = RealEnv::block_on(programs::run(name, env, rest)).unwrap_or(programs::MISUSED);
    std::process::exit(code);
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wc-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn real_trial<F, Fut>(name: &'static str, body: F) -> Trial
where
    F: Fn(RealEnv, PathBuf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Trial::test(format!("{name}_real"), move || {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let dir = scratch_dir(name);
        let env = RealEnv::with_launcher(exe, vec![PROGRAM_FLAG.to_owned()]);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            RealEnv::block_on(async {
                let env2 = env.clone();
                env.timeout(Duration::from_secs(120), body(env2, dir.clone())).await
            })
        }));
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(_))) => Err("did not finish within 120 s".into()),
            Ok(Err(e)) => Err(format!("runtime: {e}").into()),
            Err(p) => Err(warden::env::panic_message(&*p).into()),
        }
    })
}

fn sim_trial<F, Fut>(name: &'static str, body: F) -> Trial
where
    F: Fn(warden_sim::SimEnv, PathBuf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Trial::test(format!("{name}_sim"), move || {
        let test = format!("{name}_sim");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            warden_sim::testing::check_in_world(
                &test,
                Duration::from_secs(600),
                |world| {
                    for p in programs::NAMES {
                        world.register(p, move |env, args| programs::run((*p).to_owned(), env, args));
                    }
                },
                |env| body(env, PathBuf::from("/tmp/conformance").join(name)),
            );
        }));
        result.map_err(|p| warden::env::panic_message(&*p).into())
    })
}

macro_rules! trials {
    ($($module:ident::$name:ident),* $(,)?) => {
        vec![$(
            sim_trial(stringify!($name), $module::$name),
            real_trial(stringify!($name), $module::$name),
        )*]
    };
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PROGRAM_FLAG) {
        run_program(&argv[2..]);
    }
    let args = Arguments::from_args();
    let trials = trials!(
        world::exit_codes_and_signal_statuses,
        world::sigterm_handled_and_unhandled,
        world::sigstop_pauses_and_sigcont_resumes,
        world::unix_round_trip,
        world::listener_passed_to_child_while_parent_keeps_copy,
        world::connects_queue_while_nobody_accepts,
        world::refused_once_the_last_fd_closes,
        world::broken_pipe_on_a_unix_stream,
        world::no_such_process,
        world::rename_replaces_a_file_atomically,
        world::dir_lock_held_and_released_at_holder_death,
        world::unlisted_fds_are_not_inherited,
        world::tokio_io_adapter_reads_lines_and_writes,
        service::notify_reaches_the_parent,
        service::pid_var_is_the_childs_own_pid,
        service::signal_group_reaches_what_the_child_started,
    );
    libtest_mimic::run(&args, trials).exit();
}
