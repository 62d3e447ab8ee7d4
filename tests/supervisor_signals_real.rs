//! The lifecycle controller's signal handling on the real backend: a real
//! SIGTERM stops the services in reverse order and the default disposition
//! is back afterwards; a second SIGTERM during a stop that hangs forces
//! the exit with status 128 + 15.
//!
//! Signal dispositions are process-wide, so the controller never runs in
//! this harness: each test starts this very binary as a child
//! (`--warden-program NAME`), which blocks the handled signals before any
//! thread exists, as `main` of the product does. The harness owns `main`
//! (libtest-compatible through libtest-mimic) for that reason.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // the harness edge: current_exe, exit

use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use warden::env::real::{RealEnv, block_handled_signals};
use warden::env::{CancellationToken, Env, ExitStatus, NetEnv, ProcessEnv, ProcessSpec, Signal};
use warden::supervisor::lifecycle::{Controller, ControllerOptions, Service, SignalMode};

const PROGRAM_FLAG: &str = "--warden-program";
/// Exit code of a child that could not run its program.
const MISUSED: i32 = 70;
/// Generous: real machines under load must not fail order checks.
const PATIENCE: Duration = Duration::from_secs(30);

/// The child: a controller with two services handling SIGTERM and SIGINT.
/// It writes `r` on fd 3 once handling is installed, then the order its
/// services stopped in and `d` once `wait` returned; then it idles, so a
/// later SIGTERM meets the default disposition. With `hang`, the second
/// service's stop ignores its deadline.
async fn controller_app(env: RealEnv, args: Vec<String>) -> i32 {
    let hang = args.first().is_some_and(|a| a == "hang");
    let Some(out) = env.inherited_fd(3).and_then(|fd| env.fd_into_stream(fd).ok()) else { return MISUSED };
    let options = ControllerOptions {
        signals: SignalMode::Os(vec![Signal::Term, Signal::Int]),
        stop_timeout: Duration::from_secs(20),
        ..ControllerOptions::default()
    };
    let ctrl = Controller::new(env.clone(), options);
    for (name, hangs) in [("db", false), ("http", hang)] {
        let svc = Service::new(name)
            .with_start(|_e: RealEnv, t: CancellationToken| async move {
                t.cancelled().await;
                Ok(())
            })
            .with_stop(move |_e: RealEnv, _deadline| async move {
                if hangs {
                    std::future::pending::<()>().await;
                }
                Ok(())
            });
        if ctrl.register(svc).is_err() {
            return MISUSED;
        }
    }
    if ctrl.start().is_err() || env.write_all(&out, b"r").await.is_err() {
        return MISUSED;
    }
    let report = ctrl.wait().await;
    if report.forced_by.is_some() {
        return report.code;
    }
    let line = format!("{}d", report.stopped.join(","));
    if env.write_all(&out, line.as_bytes()).await.is_err() {
        return MISUSED;
    }
    env.sleep(Duration::from_secs(60)).await;
    report.code + 100
}

fn run_program(args: &[String]) -> ! {
    if let Err(e) = block_handled_signals() {
        eprintln!("cannot block signals: {e}");
        std::process::exit(MISUSED);
    }
    let code = match args.first().map(String::as_str) {
        Some("controller-app") => {
            let rest = args.get(1..).map(<[String]>::to_vec).unwrap_or_default();
            RealEnv::block_on(controller_app(RealEnv::new(), rest)).unwrap_or(MISUSED)
        }
        _ => MISUSED,
    };
    std::process::exit(code);
}

/// Reads from `s` until `until` arrives; everything read.
async fn read_until(env: &RealEnv, s: &<RealEnv as NetEnv>::Stream, until: u8) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.contains(&until) {
        let n = env.timeout(PATIENCE, env.read(s, &mut buf)).await.expect("read in time").expect("read");
        assert!(n > 0, "the child closed its stream after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Starts the child app with `args`; returns it and its stream.
fn spawn_app(env: &RealEnv, args: &[&str]) -> (<RealEnv as ProcessEnv>::Child, <RealEnv as NetEnv>::Stream) {
    let (ours, theirs) = env.socketpair().expect("socketpair");
    let mut spec = ProcessSpec::new("controller-app").fd(env.stream_into_fd(theirs), 3);
    for a in args {
        spec = spec.arg(*a);
    }
    (env.spawn_process(spec).expect("spawn the child app"), ours)
}

async fn one_sigterm_stops_in_reverse_then_the_default_is_back(env: RealEnv) {
    let (child, s) = spawn_app(&env, &[]);
    assert_eq!(read_until(&env, &s, b'r').await, b"r", "signal handling installed");
    env.signal_child(&child, Signal::Term).expect("SIGTERM");
    let stopped = read_until(&env, &s, b'd').await;
    assert_eq!(String::from_utf8_lossy(&stopped), "http,dbd", "reverse start order");
    env.signal_child(&child, Signal::Term).expect("SIGTERM after the stop");
    let status = env.timeout(PATIENCE, env.wait_child(&child)).await.expect("exits in time");
    assert_eq!(status, ExitStatus::Signaled(Signal::Term), "handling ended with wait: default disposition");
}

async fn a_second_sigterm_during_the_stop_forces_the_exit(env: RealEnv) {
    let (child, s) = spawn_app(&env, &["hang"]);
    assert_eq!(read_until(&env, &s, b'r').await, b"r", "signal handling installed");
    env.signal_child(&child, Signal::Term).expect("SIGTERM");
    // The http service's stop hangs (20 s deadline); the second signal
    // comes while it does.
    env.sleep(Duration::from_millis(300)).await;
    env.signal_child(&child, Signal::Term).expect("second SIGTERM");
    let status = env.timeout(PATIENCE, env.wait_child(&child)).await.expect("exits in time");
    assert_eq!(status, ExitStatus::Code(128 + 15), "a second SIGTERM forces 128 + 15");
}

fn real_trial<F, Fut>(name: &'static str, body: F) -> Trial
where
    F: Fn(RealEnv) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Trial::test(name, move || {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let env = RealEnv::with_launcher(exe, vec![PROGRAM_FLAG.to_owned()]);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            RealEnv::block_on(async {
                let env2 = env.clone();
                env.timeout(Duration::from_secs(120), body(env2)).await
            })
        }));
        match out {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(_))) => Err("did not finish within 120 s".into()),
            Ok(Err(e)) => Err(format!("runtime: {e}").into()),
            Err(p) => Err(warden::env::panic_message(&*p).into()),
        }
    })
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PROGRAM_FLAG) {
        run_program(&argv[2..]);
    }
    let args = Arguments::from_args();
    let trials = vec![
        real_trial(
            "one_sigterm_stops_in_reverse_then_the_default_is_back",
            one_sigterm_stops_in_reverse_then_the_default_is_back,
        ),
        real_trial(
            "a_second_sigterm_during_the_stop_forces_the_exit",
            a_second_sigterm_during_the_stop_forces_the_exit,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
