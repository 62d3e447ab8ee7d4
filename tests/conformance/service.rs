//! What a service manager asks of `ProcessEnv` (`spawn_with`), written
//! once against `Env`: the notification socket, the pid variable of socket
//! activation, signals to a whole process group.

use std::time::Duration;

use warden::env::{Env, ExitStatus, ProcessSpec, Signal, SpawnOptions};

const PATIENCE: Duration = Duration::from_secs(20);

pub async fn notify_reaches_the_parent<E: Env>(env: E, _dir: std::path::PathBuf) {
    let opts = SpawnOptions { notify: true, ..SpawnOptions::default() };
    let c = env.spawn_with(ProcessSpec::new("notify-ready"), opts).expect("spawn");
    let msg = env.timeout(PATIENCE, env.next_notification(&c)).await;
    env.signal_child(&c, Signal::Kill).expect("signal");
    let _ = env.timeout(PATIENCE, env.wait_child(&c)).await;
    assert_eq!(msg, Ok(Some("READY=1".to_owned())), "the message, without a trailing newline");
    let plain = env.spawn_process(ProcessSpec::new("exit-with").arg("0")).expect("spawn");
    assert_eq!(env.timeout(PATIENCE, env.next_notification(&plain)).await, Ok(None), "no socket, no message");
    let _ = env.timeout(PATIENCE, env.wait_child(&plain)).await;
}

pub async fn pid_var_is_the_childs_own_pid<E: Env>(env: E, _dir: std::path::PathBuf) {
    let opts = SpawnOptions { pid_var: Some("LISTEN_PID".into()), ..SpawnOptions::default() };
    let c = env.spawn_with(ProcessSpec::new("pid-var-is-mine").var("LISTEN_PID", "1"), opts).expect("spawn");
    assert_eq!(env.timeout(PATIENCE, env.wait_child(&c)).await, Ok(ExitStatus::Code(0)));
}

pub async fn signal_group_reaches_what_the_child_started<E: Env>(env: E, _dir: std::path::PathBuf) {
    let (a, b) = env.socketpair().expect("socketpair");
    let opts = SpawnOptions { new_process_group: true, ..SpawnOptions::default() };
    let c = env.spawn_with(ProcessSpec::new("fork-sleeper").fd(env.stream_into_fd(b), 3), opts).expect("spawn");
    let mut buf = [0u8; 10];
    let mut got = 0;
    while got < buf.len() {
        match env.timeout(PATIENCE, env.read(&a, &mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            other => {
                let _ = env.signal_group(&c, Signal::Kill);
                panic!("no pid from the child: {other:?}");
            }
        }
    }
    let grandchild: u32 = String::from_utf8_lossy(&buf).trim().parse().expect("a pid");
    let gone = env.watch(grandchild).expect("the grandchild runs");
    env.signal_group(&c, Signal::Kill).expect("signal the group");
    assert_eq!(env.timeout(PATIENCE, env.wait_child(&c)).await, Ok(ExitStatus::Signaled(Signal::Kill)));
    assert!(env.timeout(PATIENCE, gone).await.is_ok(), "the grandchild outlived the group's SIGKILL");
}
