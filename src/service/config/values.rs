//! Parsers for the config's scalar values: durations, signals, addresses,
//! readiness URLs. Each returns a message; the caller adds the position.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::env::Signal;

/// `"1s"`, `"250ms"`, `"1m 30s"` (humantime), never zero-length text.
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("bad duration {text:?}: {e} (examples: \"500ms\", \"5s\", \"1m\")"))
}

/// The signals a service may be stopped with.
const STOP_SIGNALS: [Signal; 5] = [Signal::Term, Signal::Int, Signal::Hup, Signal::Usr1, Signal::Kill];

/// `"SIGTERM"` or `"TERM"` (any case).
pub(super) fn signal(text: &str) -> Result<Signal, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    STOP_SIGNALS.into_iter().find(|s| s.to_string().strip_prefix("SIG") == Some(name)).ok_or_else(|| {
        let names: Vec<String> = STOP_SIGNALS.iter().map(ToString::to_string).collect();
        format!("bad signal {text:?}: expected one of {}", names.join(", "))
    })
}

/// `"127.0.0.1:8080"`, `"[::1]:8080"`, `"localhost:8080"`.
pub(super) fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("bad address {text:?}: the port is not a number in 0-65535"));
    }
    text.parse().map_err(|_| format!("bad address {text:?}: expected IP:PORT, e.g. \"127.0.0.1:8080\""))
}

/// Where an HTTP readiness check connects and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The server's address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request path (with query), starting with '/'.
    pub path: String,
}

/// `"http://127.0.0.1:8080/health"`: plain HTTP to an IP or localhost (no
/// DNS: a readiness check must not depend on a resolver).
pub(super) fn http_url(text: &str) -> Result<HttpTarget, String> {
    let rest = text
        .trim()
        .strip_prefix("http://")
        .ok_or_else(|| format!("bad readiness URL {text:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_owned()
    };
    let addr = socket_addr(&with_port).map_err(|e| format!("bad readiness URL {text:?}: {e}"))?;
    Ok(HttpTarget { addr, host: authority.to_owned(), path: path.to_owned() })
}

/// A service or listener name: letters, digits, `-`, `_`, `.`, `@`; it
/// appears in metric labels, logs and `LISTEN_FDNAMES`.
pub(super) fn name(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if let Some(c) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.@".contains(*c))) {
        return Err(format!("{what} {text:?} contains {c:?}: use letters, digits, '-', '_', '.', '@'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_reject() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(duration("soon").is_err());
        assert_eq!(signal("SIGTERM"), Ok(Signal::Term));
        assert_eq!(signal("int"), Ok(Signal::Int));
        assert!(signal("SIGFOO").is_err());
        assert_eq!(socket_addr("localhost:80").map(|a| a.port()), Ok(80));
        assert!(socket_addr("127.0.0.1").is_err());
        let t = http_url("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (8080, "/health?x=1"));
        assert_eq!(http_url("http://localhost").unwrap().addr.port(), 80);
        assert!(http_url("https://127.0.0.1/").is_err());
        assert!(name("web-1", "name").is_ok());
        assert!(name("a b", "name").is_err());
    }
}
