//! A simulated registry for the re-register gate: a program on its own
//! host, reached over simulated TCP with a small framed protocol, serving
//! register / recover-orphans / deregister / heartbeat with revisions and
//! gone replies. It can be slowed, made to fail and partitioned (scenario
//! faults); it deletes registrations in waves; it records every
//! registration it accepts, in revision order, for the checkers.
//!
//! Wire: each call is one TCP connection carrying one request frame and
//! one reply frame; a frame is a 4-byte big-endian length and UTF-8 text:
//!
//! ```text
//! register <key> <deadline_wall_ms>  ->  ok <rev|-> <id:provider,...|->  |  err <why>
//! orphans <key>                       ->  ok  |  err <why>
//! deregister <id,...|->               ->  ok
//! heartbeat <id>                      ->  ok <id>  |  gone <id> <rev|->
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use warden::env::{Addr, Env, Instant, NetEnv};
use warden::gate::{AckStatus, HeartbeatAck, Registered, Registry, RegistryError, Runtime};

use crate::check::Checks;
use crate::env::SimEnv;

/// The registry's TCP port.
pub(crate) const PORT: u16 = 7000;
/// A register is applied only if this much of its deadline is left, so
/// the reply (delayed by a partition of at most 5 s) arrives in time and
/// no registration is applied that the client counts as failed.
const APPLY_MARGIN: Duration = Duration::from_secs(6);
const FRAME_MAX: usize = 1 << 16;
/// The cap of two thirds of the stalls.
const SHORT_STALL: Duration = Duration::from_secs(2);

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

fn wall_ms<E: Env>(env: &E) -> u64 {
    env.wall_clock().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn rev_word(r: Option<u64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| r.to_string())
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

impl<E: Env> Registry for StreamRegistry<E> {
    fn register(
        &self,
        key: &str,
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Registered, RegistryError>> + 'static {
        let left = deadline.saturating_duration_since(self.env.now());
        let wall_deadline = wall_ms(&self.env) + left.as_millis() as u64;
        let (call, key) = (self.call(format!("register {key} {wall_deadline}")), key.to_owned());
        async move {
            let reply = call.await?;
            let mut w = reply.split(' ');
            match w.next() {
                Some("ok") => {}
                _ => return Err(RegistryError(reply)),
            }
            let revision = parse_rev(w.next())?;
            let list = w.next().ok_or_else(|| RegistryError("missing runtimes".into()))?;
            let mut runtimes = Vec::new();
            for item in list.split(',').filter(|i| *i != "-") {
                let (id, provider) =
                    item.split_once(':').ok_or_else(|| RegistryError(format!("bad runtime {item:?}")))?;
                runtimes.push(Runtime { id: id.to_owned(), key: key.clone(), provider: provider.to_owned() });
            }
            Ok(Registered { runtimes, revision })
        }
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

/// What the registry knows and has done, shared with the checkers.
pub(crate) struct Book {
    checks: Checks,
    revisions: bool,
    revision: u64,
    next_id: u64,
    /// key -> provider -> current id (None once deleted).
    keys: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// id -> (key, provider, deleted at).
    ids: BTreeMap<String, (String, String, Option<u64>)>,
    /// key -> revision of the first deletion not yet followed by a
    /// registration.
    unrecovered: BTreeMap<String, u64>,
    /// key -> whether it was ever registered.
    registered: BTreeSet<String>,
    /// Every accepted registration, in revision order: (revision, key).
    pub registrations: Vec<(u64, String)>,
    /// Every deletion, in revision order: (revision, key, id).
    pub deletions: Vec<(u64, String, String)>,
    /// When the outage (if the scenario has one) began.
    outage_since: Option<Instant>,
}

impl Book {
    /// A registry for `keys` keys with `providers` providers each.
    pub(crate) fn new(checks: Checks, keys: u64, providers: u64, revisions: bool) -> Self {
        let keys =
            (0..keys).map(|k| (format!("ws{k}"), (0..providers).map(|p| (format!("p{p}"), None)).collect())).collect();
        Book {
            checks,
            revisions,
            revision: 0,
            next_id: 1,
            keys,
            ids: BTreeMap::new(),
            unrecovered: BTreeMap::new(),
            registered: BTreeSet::new(),
            registrations: Vec::new(),
            deletions: Vec::new(),
            outage_since: None,
        }
    }

    /// The configured keys.
    pub(crate) fn key_names(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// The live ids of `key`, sorted.
    pub(crate) fn alive(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self.keys.get(key).into_iter().flat_map(|p| p.values().flatten().cloned()).collect();
        v.sort();
        v
    }

    /// Keys with a deletion not followed by a registration, and its revision.
    pub(crate) fn unrecovered(&self) -> &BTreeMap<String, u64> {
        &self.unrecovered
    }

    /// Upserts every provider of `key`; checks one registration per deletion.
    fn register(&mut self, key: &str) -> Option<(u64, Vec<(String, String)>)> {
        let providers = self.keys.get_mut(key)?;
        self.revision += 1;
        let rev = self.revision;
        let mut out = Vec::new();
        for (provider, id) in providers.iter_mut() {
            let id = id.get_or_insert_with(|| {
                let id = format!("rt{}", self.next_id);
                self.next_id += 1;
                self.ids.insert(id.clone(), (key.to_owned(), provider.clone(), None));
                id
            });
            out.push((id.clone(), provider.clone()));
        }
        if self.registered.contains(key) && !self.unrecovered.contains_key(key) {
            let last = self.registrations.iter().rev().find(|(_, k)| k == key).map_or(0, |(r, _)| *r);
            self.checks.fail(
                "one-registration-per-deletion",
                format!("{key} registered at revision {last} and again at {rev} with no deletion between"),
            );
        }
        self.registered.insert(key.to_owned());
        self.unrecovered.remove(key);
        self.registrations.push((rev, key.to_owned()));
        Some((rev, out))
    }

    /// Deletes runtime `id` (a wave); returns whether it was alive.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        let Some((key, provider, deleted)) = self.ids.get_mut(id) else { return false };
        if deleted.is_some() {
            return false;
        }
        self.revision += 1;
        *deleted = Some(self.revision);
        if let Some(slot) = self.keys.get_mut(key.as_str()).and_then(|p| p.get_mut(provider.as_str())) {
            *slot = None;
        }
        self.unrecovered.entry(key.clone()).or_insert(self.revision);
        self.deletions.push((self.revision, key.clone(), id.to_owned()));
        true
    }

    /// Deregistration asked by the daemon itself: removes, no deletion.
    fn deregister(&mut self, id: &str) {
        if let Some((key, provider, deleted)) = self.ids.get_mut(id)
            && deleted.is_none()
        {
            self.revision += 1;
            *deleted = Some(self.revision);
            if let Some(slot) = self.keys.get_mut(key.as_str()).and_then(|p| p.get_mut(provider.as_str())) {
                *slot = None;
            }
        }
    }

    fn heartbeat(&self, id: &str) -> String {
        match self.ids.get(id) {
            Some((_, _, None)) => format!("ok {id}"),
            Some((_, _, Some(at))) => format!("gone {id} {}", rev_word(self.revisions.then_some(*at))),
            None => format!("gone {id} {}", rev_word(self.revisions.then_some(0))),
        }
    }
}

/// Fault knobs of the registry (from the scenario's parameters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    /// Percent of register / recover-orphans calls refused unapplied.
    pub fail_percent: u64,
    /// Percent of calls that stall.
    pub slow_percent: u64,
    /// Longest stall of a slow call.
    pub stall_max: Duration,
    /// The first register after `.0` (a recovery) takes the registry down
    /// for `.1`: every call fails meanwhile.
    pub outage: Option<(Duration, Duration)>,
}

/// Whether the registry is down now (starting the outage at the first
/// register past its start time).
fn down(env: &SimEnv, book: &SharedBook, knobs: Knobs, request: &str) -> bool {
    let Some((after, length)) = knobs.outage.filter(|_| faulty(env)) else { return false };
    let now = env.now();
    let mut b = book.borrow_mut();
    if b.outage_since.is_none() && request.starts_with("register ") && now >= Instant::BOOT + after {
        b.outage_since = Some(now);
    }
    b.outage_since.is_some_and(|since| now < since + length)
}

/// The shared registry state.
pub(crate) type SharedBook = Rc<RefCell<Book>>;

/// The registry program: serves calls until its process ends.
pub(crate) async fn serve(env: SimEnv, book: SharedBook, knobs: Knobs) -> i32 {
    let Ok(listener) = env.listen(&Addr::Tcp(SocketAddr::from(([0, 0, 0, 0], PORT)))) else { return 2 };
    loop {
        let Ok(s) = env.accept(&listener).await else { return 3 };
        let (env2, book) = (env.clone(), book.clone());
        drop(env.spawn("registry.conn", async move {
            if let Ok(request) = read_frame(&env2, &s).await {
                let reply = handle(&env2, &book, knobs, &request).await;
                // The client may have given up; nothing to do then.
                let _ = write_frame(&env2, &s, &reply).await;
            }
        }));
    }
}

/// Faults apply only in the phase with faults.
fn faulty(env: &SimEnv) -> bool {
    env.faults_allowed()
}

async fn stall(env: &SimEnv, knobs: Knobs, max: Duration) {
    if faulty(env) && env.random_below(100) < knobs.slow_percent {
        // Mostly short stalls, a third of them up to the longest.
        let cap = if env.random_below(3) == 0 { knobs.stall_max } else { knobs.stall_max.min(SHORT_STALL) };
        env.sleep(env.random_duration(max.min(cap))).await;
    }
}

async fn handle(env: &SimEnv, book: &SharedBook, knobs: Knobs, request: &str) -> String {
    if down(env, book, knobs, request) {
        return "err registry unavailable".into();
    }
    let mut w = request.split(' ');
    match (w.next(), w.next(), w.next()) {
        (Some("register"), Some(key), Some(deadline)) => {
            let Ok(deadline_ms) = deadline.parse::<u64>() else { return "err bad deadline".into() };
            stall(env, knobs, knobs.stall_max).await;
            if faulty(env) && env.random_below(100) < knobs.fail_percent {
                return "err injected failure".into();
            }
            let left = Duration::from_millis(deadline_ms.saturating_sub(wall_ms(env)));
            if left <= APPLY_MARGIN {
                return "err deadline exceeded".into();
            }
            let Some((rev, runtimes)) = book.borrow_mut().register(key) else { return "err unknown key".into() };
            // A slow reply after applying, never past what the client waits.
            stall(env, knobs, left - APPLY_MARGIN).await;
            let list: Vec<String> = runtimes.iter().map(|(id, p)| format!("{id}:{p}")).collect();
            let revisions = book.borrow().revisions;
            format!("ok {} {}", rev_word(revisions.then_some(rev)), list.join(","))
        }
        (Some("orphans"), Some(_), None) => {
            stall(env, knobs, Duration::from_secs(2)).await;
            if faulty(env) && env.random_below(100) < knobs.fail_percent {
                "err injected failure".into()
            } else {
                "ok".into()
            }
        }
        (Some("deregister"), Some(list), None) => {
            for id in list.split(',').filter(|i| *i != "-") {
                book.borrow_mut().deregister(id);
            }
            "ok".into()
        }
        (Some("heartbeat"), Some(id), None) => {
            stall(env, knobs, Duration::from_secs(2)).await;
            book.borrow().heartbeat(id)
        }
        _ => format!("err unknown request {request:?}"),
    }
}
