//! The simulated registry's wire: each call is one TCP connection carrying
//! one request frame and one reply frame; a frame is a 4-byte big-endian
//! length and UTF-8 text:
//!
//! ```text
//! register <key> <since|-> <deadline_wall_ms>
//!     ->  ok <rev|-> applied|already <id:provider,...|->  |  err <why>
//! orphans <key>                       ->  ok  |  err <why>
//! deregister <id,...|->               ->  ok
//! heartbeat <id>                      ->  ok <id>  |  gone <id> <rev|->
//! ```
//!
//! `since` is the register's condition: apply only if nothing registered
//! for the key after that revision is still in place (`-`: in any case).
//! [`StreamRegistry`] is the client side, a [`Registry`] for any backend.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use warden::env::{Addr, Env, Instant};
use warden::gate::{AckStatus, Condition, HeartbeatAck, Registered, Registry, RegistryError, Runtime};

const FRAME_MAX: usize = 1 << 16;

/// Writes one frame.
pub(crate) async fn write_frame<E: Env>(env: &E, s: &E::Stream, text: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + text.len());
    buf.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
    buf.extend_from_slice(text.as_bytes());
    env.write_all(s, &buf).await
}

/// Reads one frame (reads may split it anywhere).
pub(crate) async fn read_frame<E: Env>(env: &E, s: &E::Stream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > FRAME_MAX {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too long"));
            }
            if buf.len() >= 4 + len {
                return String::from_utf8(buf[4..4 + len].to_vec())
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "frame not UTF-8"));
            }
        }
        let n = env.read(s, &mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed mid-frame"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The wall clock in milliseconds (deadlines travel as wall time).
pub(crate) fn wall_ms<E: Env>(env: &E) -> u64 {
    env.wall_clock().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A revision on the wire (`-`: none).
pub(crate) fn rev_word(r: Option<u64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| r.to_string())
}

/// A condition on the wire.
pub(crate) fn condition_word(c: Condition) -> String {
    match c {
        Condition::NotRegisteredSince(r) => r.to_string(),
        Condition::Always => "-".to_owned(),
    }
}

/// Reads a condition off the wire.
pub(crate) fn parse_condition(w: &str) -> Option<Condition> {
    match w {
        "-" => Some(Condition::Always),
        n => n.parse().ok().map(Condition::NotRegisteredSince),
    }
}

fn parse_rev(w: Option<&str>) -> Result<Option<u64>, RegistryError> {
    match w {
        Some("-") => Ok(None),
        Some(n) => n.parse().map(Some).map_err(|_| RegistryError(format!("bad revision {n:?}"))),
        None => Err(RegistryError("missing revision".into())),
    }
}

/// The client side: a [`Registry`] over streams, for any backend.
#[derive(Clone)]
pub(crate) struct StreamRegistry<E: Env> {
    env: E,
    addr: Addr,
}

impl<E: Env> StreamRegistry<E> {
    /// A client of the registry at `addr`.
    pub(crate) fn new(env: E, addr: SocketAddr) -> Self {
        StreamRegistry { env, addr: Addr::Tcp(addr) }
    }

    fn call(&self, request: String) -> impl std::future::Future<Output = Result<String, RegistryError>> + 'static {
        let (env, addr) = (self.env.clone(), self.addr.clone());
        async move {
            let io = |e: std::io::Error| RegistryError(e.to_string());
            let s = env.connect(&addr).await.map_err(io)?;
            write_frame(&env, &s, &request).await.map_err(io)?;
            read_frame(&env, &s).await.map_err(io)
        }
    }
}

fn parse_registered(reply: &str, key: &str) -> Result<Registered, RegistryError> {
    let mut w = reply.split(' ');
    if w.next() != Some("ok") {
        return Err(RegistryError(reply.to_owned()));
    }
    let revision = parse_rev(w.next())?;
    let applied = match w.next() {
        Some("applied") => true,
        Some("already") => false,
        other => return Err(RegistryError(format!("bad register outcome {other:?}"))),
    };
    let list = w.next().ok_or_else(|| RegistryError("missing runtimes".into()))?;
    let mut runtimes = Vec::new();
    for item in list.split(',').filter(|i| *i != "-") {
        let (id, provider) = item.split_once(':').ok_or_else(|| RegistryError(format!("bad runtime {item:?}")))?;
        runtimes.push(Runtime { id: id.to_owned(), key: key.to_owned(), provider: provider.to_owned() });
    }
    Ok(Registered { runtimes, revision, applied })
}

impl<E: Env> Registry for StreamRegistry<E> {
    fn register(
        &self,
        key: &str,
        condition: Condition,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Registered, RegistryError>> + 'static {
        let left = deadline.saturating_duration_since(self.env.now());
        let wall_deadline = wall_ms(&self.env) + left.as_millis() as u64;
        let request = format!("register {key} {} {wall_deadline}", condition_word(condition));
        let (call, key) = (self.call(request), key.to_owned());
        async move { parse_registered(&call.await?, &key) }
    }

    fn recover_orphans(&self, key: &str) -> impl std::future::Future<Output = Result<(), RegistryError>> + 'static {
        let call = self.call(format!("orphans {key}"));
        async move {
            let reply = call.await?;
            if reply == "ok" { Ok(()) } else { Err(RegistryError(reply)) }
        }
    }

    fn deregister(&self, ids: &[String]) -> impl std::future::Future<Output = Result<(), RegistryError>> + 'static {
        let list = if ids.is_empty() { "-".to_owned() } else { ids.join(",") };
        let call = self.call(format!("deregister {list}"));
        async move {
            let reply = call.await?;
            if reply == "ok" { Ok(()) } else { Err(RegistryError(reply)) }
        }
    }

    fn heartbeat(&self, id: &str) -> impl std::future::Future<Output = Result<HeartbeatAck, RegistryError>> + 'static {
        let call = self.call(format!("heartbeat {id}"));
        async move {
            let reply = call.await?;
            let mut w = reply.split(' ');
            match (w.next(), w.next()) {
                (Some("ok"), Some(id)) => Ok(HeartbeatAck { runtime_id: id.to_owned(), status: AckStatus::Ok }),
                (Some("gone"), Some(id)) => {
                    let revision = parse_rev(w.next())?;
                    Ok(HeartbeatAck { runtime_id: id.to_owned(), status: AckStatus::Gone { revision } })
                }
                _ => Err(RegistryError(reply)),
            }
        }
    }
}
