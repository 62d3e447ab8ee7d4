//! Readiness checks of one service instance, over `Env`: `READY=1` on the
//! notification socket, an HTTP GET that answers 2xx/3xx, or a command
//! that exits 0. Each completes once the check passed; the driver aborts
//! it when the instance exits. Every wait has a deadline.

use std::time::Duration;

use super::config::{HttpTarget, Readiness, ServiceConfig};
use crate::env::{Addr, Env, ExitStatus, ProcessSpec, Signal, SpawnOptions};

/// The first pause between failed checks; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long one HTTP check may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one exec check may run before it is killed and counted failed.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes once `child` (an instance of `svc`) is ready.
pub(crate) async fn wait_ready<E: Env>(env: E, svc: ServiceConfig, child: &E::Child, vars: Vec<(String, String)>) {
    let mut pause = FIRST_PAUSE;
    loop {
        let passed = match &svc.ready {
            Readiness::None => true,
            Readiness::Notify => match env.next_notification(child).await {
                Some(msg) => msg.lines().any(|l| l.trim() == "READY=1"),
                // No socket: the process can never say it is ready.
                None => std::future::pending().await,
            },
            Readiness::Http(target) => match env.timeout(HTTP_TIMEOUT, http_status(&env, target)).await {
                Ok(Ok(code)) => (200..400).contains(&code),
                Ok(Err(e)) => {
                    tracing::debug!(service = svc.name.as_str(), error = %e, "readiness GET failed");
                    false
                }
                Err(_) => false,
            },
            Readiness::Exec(cmd) => exec_passes(&env, &svc, cmd, &vars).await,
        };
        if passed {
            return;
        }
        if !matches!(svc.ready, Readiness::Notify) {
            env.sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// The status code of `GET target` (HTTP/1.0, `Connection: close`).
async fn http_status<E: Env>(env: &E, target: &HttpTarget) -> std::io::Result<u16> {
    let stream = env.connect(&Addr::Tcp(target.addr)).await?;
    let request = format!("GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", target.path, target.host);
    env.write_all(&stream, request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = env.read(&stream, &mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP status line")),
    }
}

/// Runs the check command once: exit 0 within [`EXEC_TIMEOUT`] passes.
async fn exec_passes<E: Env>(env: &E, svc: &ServiceConfig, cmd: &[String], vars: &[(String, String)]) -> bool {
    let mut spec = ProcessSpec::new(cmd[0].clone());
    spec.args = cmd[1..].to_vec();
    spec.vars = vars.to_vec();
    let opts = SpawnOptions {
        working_dir: Some(svc.working_dir.clone()),
        new_process_group: true,
        search_path: true,
        kill_with_parent: true,
        ..SpawnOptions::default()
    };
    let child = match env.spawn_with(spec, opts) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(service = svc.name.as_str(), error = %e, "cannot run readiness command");
            return false;
        }
    };
    let status = match env.timeout(EXEC_TIMEOUT, env.wait_child(&child)).await {
        Ok(s) => s,
        Err(_) => {
            let _ = env.signal_group(&child, Signal::Kill);
            let _ = env.timeout(EXEC_TIMEOUT, env.wait_child(&child)).await;
            return false;
        }
    };
    // Whatever the check left behind in its group goes with it.
    let _ = env.signal_group(&child, Signal::Kill);
    status == ExitStatus::Code(0)
}
