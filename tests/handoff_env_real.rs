//! The two `Env` additions the handoff needs, on the real OS:
//! `ProcessSpec::pid_var` (systemd's `LISTEN_PID`, known only once the
//! child exists) and `ProcessEnv::open_process` (a handle on a process S did
//! not spawn, as after its own restart). The simulator's side runs in the
//! handoff scenarios, where a restarted S adopts the generations it finds.

use std::time::Duration;

use warden::env::real::RealEnv;
use warden::env::{Env, ExitStatus, ProcessEnv, ProcessSpec, Signal};

#[test]
fn pid_var_holds_the_childs_own_pid() {
    RealEnv::block_on(async {
        let env = RealEnv::new();
        let script = r#"test "$LISTEN_PID" = "$$" && test "$OTHER" = "x y""#;
        let spec = ProcessSpec::new("/bin/sh").arg("-c").arg(script).pid_var("LISTEN_PID").var("OTHER", "x y");
        let child = env.spawn_process(spec).expect("spawn /bin/sh");
        let status = env.timeout(Duration::from_secs(30), env.wait_child(&child)).await;
        assert_eq!(status, Ok(ExitStatus::Code(0)), "LISTEN_PID is not the child's pid, or OTHER was lost");
    })
    .expect("runtime");
}

#[test]
fn open_process_signals_and_watches_a_process_it_did_not_spawn() {
    RealEnv::block_on(async {
        let env = RealEnv::new();
        let child = env.spawn_process(ProcessSpec::new("/bin/sleep").arg("60")).expect("spawn /bin/sleep");
        let pid = env.child_pid(&child);
        let other = env.open_process(pid).expect("pidfd_open");
        env.signal_child(&other, Signal::Kill).expect("signal through the adopted handle");
        let seen = env.timeout(Duration::from_secs(30), env.wait_child(&other)).await;
        assert_eq!(seen, Ok(ExitStatus::Code(-1)), "an adopted handle sees the exit, not the status");
        let reaped = env.timeout(Duration::from_secs(30), env.wait_child(&child)).await;
        assert_eq!(reaped, Ok(ExitStatus::Signaled(Signal::Kill)), "the parent still learns the status");
        assert_eq!(
            env.signal_child(&other, Signal::Kill).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::NotFound),
            "an exited process is never signalled again"
        );
    })
    .expect("runtime");
}
