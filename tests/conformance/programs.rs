//! Programs the conformance tests start as child processes: generic over
//! `Env`, registered by name with the simulator and run by the real
//! backend through the test binary itself (`--warden-program NAME`).

use std::time::Duration;

use warden::env::{Env, Signal};

/// Every program name.
pub const NAMES: &[&str] = &[
    "exit-with",
    "sleep-forever",
    "term-handler",
    "ticker",
    "accept-echo",
    "lock-holder",
    "count-fds",
    "notify-ready",
    "pid-var-is-mine",
    "fork-sleeper",
];

/// Exit code of a program that was misused (missing fd or argument).
pub const MISUSED: i32 = 70;

/// Writes `r` on the stream at fd 3: "I am ready".
async fn ready<E: Env>(env: &E) -> Option<E::Stream> {
    let s = env.fd_into_stream(env.inherited_fd(3)?).ok()?;
    env.write_all(&s, b"r").await.ok()?;
    Some(s)
}

/// Runs program `name`; its exit code.
pub async fn run<E: Env>(name: String, env: E, args: Vec<String>) -> i32 {
    match name.as_str() {
        "exit-with" => args.first().and_then(|a| a.parse().ok()).unwrap_or(MISUSED),
        "sleep-forever" => loop {
            env.sleep(Duration::from_secs(3600)).await;
        },
        "term-handler" => {
            let Ok(mut signals) = env.handle_signals(&[Signal::Term]) else {
                return MISUSED;
            };
            let Some(_s) = ready(&env).await else {
                return MISUSED;
            };
            match env.next_signal(&mut signals).await {
                Signal::Term => 42,
                _ => MISUSED,
            }
        }
        "ticker" => {
            let Some(s) = env.inherited_fd(3).and_then(|fd| env.fd_into_stream(fd).ok()) else {
                return MISUSED;
            };
            loop {
                if env.write_all(&s, b"t").await.is_err() {
                    return 0;
                }
                env.sleep(Duration::from_millis(10)).await;
            }
        }
        "accept-echo" => {
            let Some(l) = env.inherited_fd(3).and_then(|fd| env.fd_into_listener(fd).ok()) else {
                return MISUSED;
            };
            let Ok(s) = env.accept(&l).await else {
                return MISUSED;
            };
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                match env.read(&s, &mut buf[got..]).await {
                    Ok(0) | Err(_) => return MISUSED,
                    Ok(n) => got += n,
                }
            }
            if env.write_all(&s, &buf).await.is_err() {
                return MISUSED;
            }
            0
        }
        "lock-holder" => {
            let Some(dir) = args.first() else {
                return MISUSED;
            };
            let Ok(_lock) = env.lock_dir(std::path::Path::new(dir)) else {
                return MISUSED;
            };
            let Some(_s) = ready(&env).await else {
                return MISUSED;
            };
            loop {
                env.sleep(Duration::from_secs(3600)).await;
            }
        }
        "count-fds" => (3..64).filter(|n| env.inherited_fd(*n).is_some()).count() as i32,
        "notify-ready" => {
            if env.notify("READY=1").is_err() {
                return MISUSED;
            }
            loop {
                env.sleep(Duration::from_secs(3600)).await;
            }
        }
        "pid-var-is-mine" => match env.var("LISTEN_PID") {
            Some(p) if p == env.pid().to_string() => 0,
            _ => 1,
        },
        "fork-sleeper" => {
            // Starts a child in its own group (no options) and tells its pid on fd 3.
            let Some(s) = env.inherited_fd(3).and_then(|fd| env.fd_into_stream(fd).ok()) else {
                return MISUSED;
            };
            let Ok(child) = env.spawn_process(warden::env::ProcessSpec::new("sleep-forever")) else {
                return MISUSED;
            };
            let pid = env.child_pid(&child).to_string();
            if env.write_all(&s, format!("{pid:>10}").as_bytes()).await.is_err() {
                return MISUSED;
            }
            loop {
                env.sleep(Duration::from_secs(3600)).await;
            }
        }
        _ => MISUSED,
    }
}
