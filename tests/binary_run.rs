//! `warden run` with real processes: the example config starts, a killed
//! service is restarted within its backoff, `never` and `on-failure` are
//! obeyed, dependencies start in order, a stop escalates to SIGKILL, no
//! process is left after SIGTERM, a second signal forces the exit, a
//! critical failure exits 1. Generous deadlines; order and outcome are
//! asserted, never tight timings.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;

use std::time::Duration;

use binary_support::{Warden, alive, free_port, wait_for};

const SECS_10: Duration = Duration::from_secs(10);

#[test]
fn the_example_config_starts_and_stops_cleanly() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/warden.toml")).unwrap();
    let port = free_port();
    let mut w = Warden::start("example", &example.replace("127.0.0.1:9100", &format!("127.0.0.1:{port}")));
    let pids: Vec<u32> = ["db", "worker", "stubborn"].iter().map(|s| w.pid_of(s, SECS_10)).collect();
    let migrate = wait_for(SECS_10, || w.service("migrate").filter(|s| s["state"] == "exited")).is_some();
    assert!(migrate, "the one-shot did not finish cleanly: {:?}", w.status());
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(Duration::from_secs(30)), 0, "log:\n{}", w.log_text());
    for p in pids {
        assert!(!alive(p), "pid {p} outlived warden");
    }
}

#[test]
fn a_killed_service_is_restarted_within_its_backoff() {
    let w = Warden::start(
        "kill9",
        "[[service]]\nname = \"a\"\ncommand = [\"sleep\", \"1000\"]\nbackoff = { initial = \"200ms\", max = \"1s\" }\n",
    );
    let first = w.pid_of("a", SECS_10);
    // SAFETY: kill(2) of the service's pid.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    let next = wait_for(Duration::from_secs(3), || {
        let s = w.service("a")?;
        s["pid"].as_u64().map(|p| p as u32).filter(|p| *p != first).map(|p| (p, s["restarts"].as_u64()))
    });
    let (pid, restarts) = next.unwrap_or_else(|| panic!("not restarted within 3 s; log:\n{}", w.log_text()));
    assert!(alive(pid));
    assert_eq!(restarts, Some(1));
}

#[test]
fn never_and_on_failure_are_obeyed() {
    let w = Warden::start(
        "policies",
        r#"
[[service]]
name = "never"
command = ["sh", "-c", "exit 3"]
restart = "never"

[[service]]
name = "clean"
command = ["sh", "-c", "exit 0"]
restart = "on-failure"

[[service]]
name = "failing"
command = ["sh", "-c", "sleep 0.2; exit 1"]
restart = "on-failure"
backoff = { initial = "100ms", max = "200ms" }
"#,
    );
    let restarted = wait_for(SECS_10, || w.service("failing").filter(|s| s["restarts"].as_u64() >= Some(2)));
    assert!(restarted.is_some(), "on-failure did not restart a failing service: {:?}", w.status());
    let status = w.status().unwrap();
    let get = |n: &str| status.iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!((get("never")["state"].as_str(), get("never")["restarts"].as_u64()), (Some("failed"), Some(0)));
    assert_eq!((get("clean")["state"].as_str(), get("clean")["restarts"].as_u64()), (Some("exited"), Some(0)));
    assert!(get("never")["pid"].is_null());
}

#[test]
fn dependencies_start_after_they_are_ready() {
    let w = Warden::start(
        "order",
        r#"
[[service]]
name = "web"
command = ["sh", "-c", "echo web >> order; exec sleep 1000"]
after = ["db"]

[[service]]
name = "db"
command = ["sh", "-c", "echo db >> order; sleep 1; touch db.ready; echo db-ready >> order; exec sleep 1000"]
ready = { exec = ["test", "-e", "db.ready"] }
"#,
    );
    w.pid_of("web", SECS_10);
    let order = std::fs::read_to_string(w.path("order")).unwrap();
    assert_eq!(order.lines().collect::<Vec<_>>(), ["db", "db-ready", "web"], "log:\n{}", w.log_text());
}

#[test]
fn stop_escalates_to_sigkill_and_leaves_no_process() {
    let mut w = Warden::start(
        "escalate",
        r#"
[warden]
stop_timeout = "20s"

[[service]]
name = "deaf"
command = ["sh", "-c", "trap '' TERM; sleep 1000 & echo $! > child.pid; setsid sleep 1000 & echo $! > escaped.pid; wait"]
stop_timeout = "1s"
"#,
    );
    let leader = w.pid_of("deaf", SECS_10);
    let read_pid = |f: &str| wait_for(SECS_10, || std::fs::read_to_string(w.path(f)).ok()?.trim().parse::<u32>().ok());
    let (child, escaped) = (read_pid("child.pid").unwrap(), read_pid("escaped.pid").unwrap());
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(Duration::from_secs(15)), 0, "log:\n{}", w.log_text());
    assert!(w.log_text().contains("SIGKILL"), "no SIGKILL escalation in the log:\n{}", w.log_text());
    for p in [leader, child, escaped] {
        assert!(!alive(p), "pid {p} outlived warden");
    }
}

#[test]
fn a_second_signal_forces_the_exit_with_128_plus_n() {
    let mut w = Warden::start(
        "force",
        "[[service]]\nname = \"deaf\"\ncommand = [\"sh\", \"-c\", \"trap '' TERM INT; exec sleep 1000\"]\nstop_timeout = \"60s\"\n",
    );
    let pid = w.pid_of("deaf", SECS_10);
    std::thread::sleep(Duration::from_millis(300));
    w.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(SECS_10), 128 + libc::SIGINT, "log:\n{}", w.log_text());
    assert!(!alive(pid), "pid {pid} outlived warden");
}

#[test]
fn a_failed_critical_service_stops_warden_with_status_1() {
    let mut w = Warden::start(
        "critical",
        r#"
[[service]]
name = "other"
command = ["sleep", "1000"]

[[service]]
name = "core"
command = ["sh", "-c", "sleep 0.3; exit 1"]
critical = true
backoff = { initial = "50ms", max = "100ms" }
intensity = { restarts = 2, within = "1m" }
"#,
    );
    let other = w.pid_of("other", SECS_10);
    assert_eq!(w.wait_exit(Duration::from_secs(20)), 1, "log:\n{}", w.log_text());
    assert!(!alive(other), "pid {other} outlived warden");
}

#[test]
fn notify_readiness_and_socket_activation() {
    if std::process::Command::new("python3").arg("-V").output().is_err() {
        panic!("this test needs python3 (a service that speaks sd_notify and takes LISTEN_FDS)");
    }
    let port = free_port();
    let w = Warden::start(
        "notify",
        &format!(
            r#"
[[service]]
name = "web"
command = ["python3", "-c", "import os, socket, time\nassert os.environ['LISTEN_PID'] == str(os.getpid())\nassert os.environ['LISTEN_FDNAMES'] == 'http'\ns = socket.socket(fileno=3)\nn = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nn.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\nc, _ = s.accept()\nc.sendall(b'hello')\ntime.sleep(1000)"]
ready = {{ notify = true }}
listen = [{{ name = "http", addr = "127.0.0.1:{port}" }}]
"#
        ),
    );
    let ready = wait_for(SECS_10, || w.service("web").filter(|s| s["ready"] == true));
    assert!(ready.is_some(), "READY=1 never seen; log:\n{}", w.log_text());
    let mut buf = [0u8; 5];
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("warden's listener refuses");
    conn.set_read_timeout(Some(SECS_10)).unwrap();
    std::io::Read::read_exact(&mut conn, &mut buf).expect("no greeting from the activated service");
    assert_eq!(&buf, b"hello");
    assert!(w.log_text().contains("service=\"web\""), "no log line tagged with the service:\n{}", w.log_text());
}
