//! The control socket: mode 0600, `status`, `stop`, `start`, `restart`,
//! `upgrade` (refused when it cannot be done), and SO_PEERCRED refusing a peer
//! with another uid even when the socket's mode would let it in.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use binary_support::{Warden, alive, wait_for, warden_bin};

const SECS_10: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;

const CONFIG: &str = r#"
[warden]
control = "run/ctl.sock"

[[service]]
name = "a"
command = ["sleep", "1000"]

[[service]]
name = "b"
command = ["sleep", "1000"]
handoff = true
"#;

#[test]
fn commands_stop_start_restart_and_status() {
    let w = Warden::start("control", CONFIG);
    let first = w.pid_of("a", SECS_10);
    let sock = w.path("run/ctl.sock");
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);

    assert!(w.client(&["stop", "a"]).status.success());
    let stopped = wait_for(SECS_10, || w.service("a").filter(|s| s["state"] == "stopped" && s["pid"].is_null()));
    assert!(stopped.is_some(), "a not stopped: {:?}", w.status());
    assert!(!alive(first));

    assert!(w.client(&["start", "a"]).status.success());
    let second = w.pid_of("a", SECS_10);
    assert!(w.client(&["restart", "a"]).status.success());
    let third = wait_for(SECS_10, || w.service("a")?["pid"].as_u64().map(|p| p as u32).filter(|p| *p != second));
    assert!(third.is_some(), "restart did not replace the process: {:?}", w.status());

    let table = w.client(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("NAME") && text.contains("\na ") && text.contains("\nb "), "{text}");

    let unknown = w.client(&["stop", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no service named"));
}

#[test]
fn upgrade_is_refused_unless_the_service_speaks_the_handoff() {
    let w = Warden::start("upgrade", CONFIG);
    w.pid_of("b", SECS_10);
    // b declares `handoff = true` but `sleep` never says Hello to its
    // coordinator: no incumbent, so no handoff (tests/binary_upgrade.rs
    // upgrades a service that speaks it).
    let out = w.client(&["upgrade", "b"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("upgrade refused"), "{err}");
    let out = w.client(&["upgrade", "a"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not declare handoff = true"));
    let out = w.client(&["upgrade", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service named"));
}

#[test]
fn the_control_socket_refuses_another_uid() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test switches a child to uid {NOBODY}: it must run as root");
    let w = Warden::start("peercred", CONFIG);
    w.pid_of("a", SECS_10);
    // Open the way the mode 0600 guards, so that only SO_PEERCRED is left.
    for p in [w.dir.0.clone(), w.path("run"), w.path("run/ctl.sock")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // A copy uid nobody can reach: the build's own may sit under a
    // private directory (a clone in a 0700 home or temp dir).
    let bin = w.path("warden-as-nobody");
    std::fs::copy(warden_bin(), &bin).expect("cannot copy the warden binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&bin)
        .args(["status", "--json", "-c"])
        .arg(&w.config)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("cannot run warden as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "uid {NOBODY} got an answer: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("permission denied"), "{err}");
    let logged = wait_for(SECS_10, || w.log_text().contains("refused a peer with another uid").then_some(()));
    assert!(logged.is_some(), "no log line for the refused peer:\n{}", w.log_text());
    assert!(w.status().is_some(), "root is still served");
}
