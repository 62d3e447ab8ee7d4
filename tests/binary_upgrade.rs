//! `warden upgrade` on the built binary: `warden run` supervises the demo
//! service `handoff-echo` (`handoff = true`) under its handoff
//! coordinator, a real load client keeps requesting, and `warden upgrade
//! web` hands the service over to a new process five times: no request
//! fails, and after each upgrade only the new process answers.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;
mod handoff_support;

use std::time::{Duration, Instant};

use binary_support::{Warden, alive, free_port, wait_for};
use handoff_support::load::{Load, LoadConfig};

fn get(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    handoff_support::load::parse_body(body).map(|(_, pid)| pid)
}

/// The pid in `web: handoff ID committed; pid PID serves`.
fn served_by(stdout: &str) -> Option<u32> {
    stdout.split("pid ").nth(1)?.split_whitespace().next()?.parse().ok()
}

#[test]
fn warden_upgrade_hands_the_demo_over_under_load_with_no_failed_request() {
    let started = Instant::now();
    let port = free_port();
    let toml = format!(
        r#"
[warden]
control = "warden.sock"
stop_timeout = "10s"

[[service]]
name = "web"
command = ["{echo}"]
handoff = true
listen = [{{ name = "http", addr = "127.0.0.1:{port}" }}]
ready = {{ http = "http://127.0.0.1:{port}/healthz" }}
stop_timeout = "3s"

[[service]]
name = "plain"
command = ["sleep", "600"]
"#,
        echo = handoff_support::echo_bin()
    );
    let mut w = Warden::start("upgrade", &toml);
    let coordinator = w.pid_of("web", Duration::from_secs(10));
    let first = wait_for(Duration::from_secs(10), || get(port))
        .unwrap_or_else(|| panic!("the demo does not answer on {port}; log:\n{}", w.log_text()));
    wait_for(Duration::from_secs(10), || w.service("web").filter(|s| s["ready"] == true))
        .unwrap_or_else(|| panic!("web never ready; log:\n{}", w.log_text()));

    // Only a handoff service can be upgraded.
    let out = w.client(&["upgrade", "plain"]);
    assert_eq!(out.status.code(), Some(1), "upgrade of a service without handoff: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("handoff = true"), "{out:?}");

    let load = Load::start(LoadConfig::new(([127, 0, 0, 1], port).into()));
    assert!(load.wait_more(200, Duration::from_secs(10)), "the load does not run");
    let mut pids = vec![first];
    let mut commits = Vec::new();
    for i in 1..=5 {
        let asked = Instant::now();
        let out = w.client(&["upgrade", "web"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "upgrade {i} failed: {out:?}\nlog:\n{}", w.log_text());
        let pid = served_by(&stdout).unwrap_or_else(|| panic!("upgrade {i} printed {stdout:?}"));
        assert!(!pids.contains(&pid), "upgrade {i}: pid {pid} served before");
        commits.push((asked, Instant::now(), pid));
        pids.push(pid);
        assert!(load.wait_more(100, Duration::from_secs(10)), "the load stalled after upgrade {i}");
    }
    let report = load.stop();
    let failures = report.failures(5);
    assert!(
        failures.is_empty() && report.answered() == report.sent() && report.sent() >= 500,
        "requests failed across `warden upgrade`: {}; first: {failures:#?}\nlog:\n{}",
        report.summary(),
        w.log_text()
    );
    eprintln!("load: {}", report.summary());
    for (i, (_, at, pid)) in commits.iter().enumerate() {
        let until = commits.get(i + 1).map_or_else(Instant::now, |c| c.0);
        let mut by: Vec<u32> = report.answered_between(*at, until).map(|(_, p)| p).collect();
        by.sort_unstable();
        by.dedup();
        assert!(by.is_empty() || by == [*pid], "after upgrade {}: answers from {by:?}, not only {pid}", i + 1);
    }
    // The coordinator is warden's service process throughout; the old
    // generations are gone.
    let web = w.service("web").expect("status of web");
    assert_eq!(web["pid"].as_u64(), Some(u64::from(coordinator)), "the coordinator was replaced: {web}");
    assert_eq!(web["restarts"].as_u64(), Some(0), "{web}");
    let last = *pids.last().unwrap_or(&0);
    wait_for(Duration::from_secs(10), || pids[..pids.len() - 1].iter().all(|p| !alive(*p)).then_some(()))
        .unwrap_or_else(|| panic!("a retired generation still runs: {pids:?}"));

    // A stop leaves nothing behind.
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(Duration::from_secs(20)), 0, "warden's exit after SIGTERM; log:\n{}", w.log_text());
    for p in [coordinator, last] {
        assert!(wait_for(Duration::from_secs(5), || (!alive(p)).then_some(())).is_some(), "pid {p} outlived warden");
    }
    let took = started.elapsed();
    eprintln!("took {:.1} s", took.as_secs_f64());
    assert!(took <= Duration::from_secs(60), "took {took:?}, over its budget of 60 s");
}
