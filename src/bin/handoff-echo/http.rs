//! One HTTP/1.1 connection of the demo: requests in, `generation G pid P`
//! out, keep-alive until the client or a drain ends it.
//!
//! Closing is polite: shut the write side, then read (and drop) what the
//! client still sends until it closes, so a request that crossed our close
//! on the wire gets an EOF, never a reset (Linux resets a connection
//! closed with unread data).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{Either, select};
use warden::env::real::{RealEnv, RealStream};
use warden::env::{Env, NetEnv};

/// A keep-alive connection idle this long is closed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// While draining, an idle keep-alive connection gets this long to send
/// its next request (answered with `Connection: close`).
const DRAIN_IDLE: Duration = Duration::from_secs(1);
/// How long a polite close waits for the client's side to close.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest `/slow?ms=` accepted.
const MAX_SLOW_MS: u64 = 60_000;

/// Who answers.
pub(crate) struct Me {
    pub(crate) generation: String,
    pub(crate) pid: u32,
    pub(crate) unhealthy: bool,
}

/// Whether the process drains (stopped accepting), and a wake-up for idle
/// connections when that changes.
#[derive(Default)]
pub(crate) struct Drain {
    pub(crate) on: Cell<bool>,
    pub(crate) changed: tokio::sync::Notify,
}

/// One parsed request head.
struct Head {
    path: String,
    close: bool,
    body_len: usize,
}

/// Serves one connection until it closes.
pub(crate) async fn serve(env: RealEnv, conn: RealStream, me: Me, drain: Rc<Drain>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(end) = read_head(&env, &conn, &mut buf, &drain).await else { return };
        let head = match parse_head(&buf[..end]) {
            Ok(h) => h,
            Err(why) => {
                let _ = env.write_all(&conn, response(400, why, true, &me).as_bytes()).await;
                return polite_close(&env, &conn).await;
            }
        };
        buf.drain(..end);
        if !skip_body(&env, &conn, &mut buf, head.body_len).await {
            return;
        }
        let (status, body) = route(&env, &head.path, &me).await;
        let close = head.close || drain.on.get();
        if env.write_all(&conn, response(status, &body, close, &me).as_bytes()).await.is_err() {
            return;
        }
        if close {
            return polite_close(&env, &conn).await;
        }
    }
}

/// Reads until `buf` holds a whole head; its length, or `None` when the
/// connection is done (closed, failed, idle too long).
async fn read_head(env: &RealEnv, conn: &RealStream, buf: &mut Vec<u8>, drain: &Drain) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let idle = if drain.on.get() && buf.is_empty() { DRAIN_IDLE } else { KEEPALIVE_IDLE };
        let got = {
            let changed = std::pin::pin!(drain.changed.notified());
            let read = std::pin::pin!(env.timeout(idle, env.read(conn, &mut chunk)));
            match select(read, changed).await {
                Either::Left((r, _)) => Some(r),
                // The drain started or ended: wait again with the right idle time.
                Either::Right(((), _)) => None,
            }
        };
        match got {
            None => {}
            Some(Ok(Ok(0) | Err(_))) => return None,
            Some(Ok(Ok(n))) => buf.extend_from_slice(&chunk[..n]),
            Some(Err(_)) => {
                if buf.is_empty() {
                    polite_close(env, conn).await;
                }
                return None;
            }
        }
    }
}

fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let request = lines.next().ok_or("no request line")?;
    let mut parts = request.split(' ');
    let (_method, path, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), Some(v)) if !m.is_empty() && v.starts_with("HTTP/1.") => (m, p, v),
        _ => return Err("bad request line"),
    };
    let mut close = version == "HTTP/1.0";
    let mut body_len = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("bad header")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close") || (close && !value.eq_ignore_ascii_case("keep-alive"));
        } else if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().map_err(|_| "bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked bodies are not supported");
        }
    }
    Ok(Head { path: path.to_owned(), close, body_len })
}

/// Reads and drops a body of `len` bytes (some may be in `buf` already).
async fn skip_body(env: &RealEnv, conn: &RealStream, buf: &mut Vec<u8>, mut len: usize) -> bool {
    let have = len.min(buf.len());
    buf.drain(..have);
    len -= have;
    let mut chunk = [0u8; 4096];
    while len > 0 {
        match env.timeout(KEEPALIVE_IDLE, env.read(conn, &mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                let take = n.min(len);
                len -= take;
                buf.extend_from_slice(&chunk[take..n]);
            }
            _ => return false,
        }
    }
    true
}

/// `/` (or any path): who answers; `/slow?ms=N`: the same after N ms;
/// `/healthz`: 200, or 503 when told to be unhealthy.
async fn route(env: &RealEnv, path: &str, me: &Me) -> (u16, String) {
    let who = format!("generation {} pid {}\n", me.generation, me.pid);
    if path == "/healthz" {
        return if me.unhealthy { (503, "unhealthy\n".into()) } else { (200, who) };
    }
    if let Some(q) = path.strip_prefix("/slow?ms=") {
        let ms = q.parse::<u64>().unwrap_or(0).min(MAX_SLOW_MS);
        env.sleep(Duration::from_millis(ms)).await;
    }
    (200, who)
}

fn response(status: u16, body: &str, close: bool, me: &Me) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Service Unavailable",
    };
    let connection = if close { "close" } else { "keep-alive" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\
         X-Generation: {}\r\nX-Pid: {}\r\n\r\n{body}",
        body.len(),
        me.generation,
        me.pid
    )
}

/// Shuts our side, then drains what the client still sends until it closes
/// (bounded), so the close never turns into a reset.
async fn polite_close(env: &RealEnv, conn: &RealStream) {
    if env.shutdown_write(conn).is_err() {
        return;
    }
    let mut chunk = [0u8; 1024];
    let linger = async {
        while let Ok(n) = env.read(conn, &mut chunk).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = env.timeout(CLOSE_LINGER, linger).await;
}
