//! The admin HTTP endpoints: `/livez`, `/readyz` (503 with reasons until
//! every service with a check is ready: fails closed), `/status`,
//! `/metrics` in the Prometheus text format.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use binary_support::{Warden, free_port, wait_for};

const SECS_10: Duration = Duration::from_secs(10);

/// `GET path` → (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(SECS_10)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((code, body))
}

#[test]
fn admin_endpoints_answer() {
    let port = free_port();
    let w = Warden::start(
        "admin",
        &format!(
            r#"
[warden]
admin = "127.0.0.1:{port}"

[[service]]
name = "up"
command = ["sleep", "1000"]
ready = {{ exec = ["true"] }}

[[service]]
name = "late"
command = ["sh", "-c", "sleep 1; touch ok; exec sleep 1000"]
ready = {{ exec = ["test", "-e", "ok"] }}
"#
        ),
    );
    let live = wait_for(SECS_10, || get(port, "/livez").filter(|(c, _)| *c == 200));
    assert!(live.is_some(), "/livez not 200; log:\n{}", w.log_text());
    let (code, body) = get(port, "/readyz").unwrap();
    assert_eq!(code, 503, "/readyz before late is ready: {body}");
    assert!(body.contains("late"), "/readyz gives no reason naming late: {body}");
    let ready = wait_for(SECS_10, || get(port, "/readyz").filter(|(c, _)| *c == 200));
    assert!(ready.is_some(), "/readyz never 200: {:?}", get(port, "/readyz"));
    let (code, body) = get(port, "/status").unwrap();
    assert_eq!(code, 200);
    let status: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(status.len(), 2);
    assert!(status.iter().all(|s| s["pid"].as_u64().is_some() && s["restarts"] == 0 && s["ready"] == true));
    let (code, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for line in [
        "warden_service_up{service=\"up\"} 1",
        "warden_service_ready{service=\"late\"} 1",
        "warden_service_restarts_total{service=\"up\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "/metrics lacks {line}:\n{metrics}");
    }
    assert_eq!(get(port, "/nope").map(|(c, _)| c), Some(404));
}
