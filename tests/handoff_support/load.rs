//! A real HTTP/1.1 load client (tokio, one thread): many concurrent
//! workers, some opening a new connection per request, some keeping one
//! alive across requests, each recording every attempt: accepted (the
//! connect succeeded), answered (and by whom), refused, reset, timed out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the load is shaped.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where the service listens.
    pub addr: SocketAddr,
    /// Workers that open a new connection for every request.
    pub fresh_workers: usize,
    /// Workers that keep a connection alive across requests.
    pub keepalive_workers: usize,
    /// Pause of each worker between two requests.
    pub pause: Duration,
    /// An attempt with no full answer within this is timed out.
    pub timeout: Duration,
}

impl LoadConfig {
    /// 8 + 8 workers, 2 ms apart, 10 s per attempt.
    pub fn new(addr: SocketAddr) -> LoadConfig {
        LoadConfig {
            addr,
            fresh_workers: 8,
            keepalive_workers: 8,
            pause: Duration::from_millis(2),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A whole answer: from this generation and pid.
    Answered { generation: String, pid: u32 },
    /// The connect was refused (nothing held the listener).
    Refused,
    /// The connection was reset or closed before the whole answer.
    Reset(String),
    /// No whole answer in time.
    TimedOut,
    /// Anything else (a bad answer, a local error).
    Failed(String),
}

/// One request.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it started (before the connect, or the write on a kept connection).
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
    /// Whether it went on a kept-alive connection opened earlier.
    pub reused: bool,
    /// Whether a new connection was accepted for it.
    pub connected: bool,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a load run saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every attempt, in no particular order.
    pub attempts: Vec<Attempt>,
}

impl Report {
    /// Attempts made.
    pub fn sent(&self) -> usize {
        self.attempts.len()
    }
    /// New connections accepted.
    pub fn accepted(&self) -> usize {
        self.count(|a| a.connected)
    }
    /// Attempts answered in full.
    pub fn answered(&self) -> usize {
        self.count(|a| matches!(a.outcome, Outcome::Answered { .. }))
    }
    /// Connects refused.
    pub fn refused(&self) -> usize {
        self.count(|a| a.outcome == Outcome::Refused)
    }
    /// Connections reset or cut before the answer.
    pub fn reset(&self) -> usize {
        self.count(|a| matches!(a.outcome, Outcome::Reset(_)))
    }
    /// Attempts with no answer in time.
    pub fn timed_out(&self) -> usize {
        self.count(|a| a.outcome == Outcome::TimedOut)
    }
    /// Attempts that failed otherwise.
    pub fn failed(&self) -> usize {
        self.count(|a| matches!(a.outcome, Outcome::Failed(_)))
    }
    fn count(&self, f: impl Fn(&Attempt) -> bool) -> usize {
        self.attempts.iter().filter(|a| f(a)).count()
    }
    /// One line: every count.
    pub fn summary(&self) -> String {
        format!(
            "{} sent, {} accepted, {} answered, {} refused, {} reset, {} timed out, {} failed",
            self.sent(),
            self.accepted(),
            self.answered(),
            self.refused(),
            self.reset(),
            self.timed_out(),
            self.failed()
        )
    }
    /// The first few attempts that were not answered.
    pub fn failures(&self, n: usize) -> Vec<&Attempt> {
        self.attempts.iter().filter(|a| !matches!(a.outcome, Outcome::Answered { .. })).take(n).collect()
    }
    /// Answered attempts that started in `[from, to)`.
    pub fn answered_between(&self, from: Instant, to: Instant) -> impl Iterator<Item = (&Attempt, u32)> {
        self.attempts.iter().filter(move |a| a.start >= from && a.start < to).filter_map(|a| match &a.outcome {
            Outcome::Answered { pid, .. } => Some((a, *pid)),
            _ => None,
        })
    }
}

/// A load running on its own thread until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Report>>,
}

impl Load {
    /// Starts the workers.
    pub fn start(cfg: LoadConfig) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (stop2, done2) = (stop.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("load runtime");
                rt.block_on(run(cfg, stop2, done2))
            })
            .expect("cannot start the load thread");
        Load { stop, done, thread: Some(thread) }
    }

    /// Attempts finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` more attempts finished (or `timeout`).
    pub fn wait_more(&self, n: u64, timeout: Duration) -> bool {
        let target = self.done() + n;
        let end = Instant::now() + timeout;
        while self.done() < target {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stops the workers (each finishes its attempt) and returns the report.
    pub fn stop(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().map(|t| t.join().expect("the load thread panicked")).unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

async fn run(cfg: LoadConfig, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> Report {
    let mut tasks = Vec::new();
    for i in 0..cfg.fresh_workers + cfg.keepalive_workers {
        let (cfg, stop, done) = (cfg.clone(), stop.clone(), done.clone());
        let keepalive = i >= cfg.fresh_workers;
        tasks.push(tokio::task::spawn(worker(cfg, keepalive, stop, done)));
    }
    let mut report = Report::default();
    for t in tasks {
        report.attempts.extend(t.await.expect("a load worker panicked"));
    }
    report
}

async fn worker(cfg: LoadConfig, keepalive: bool, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> Vec<Attempt> {
    let mut out = Vec::new();
    let mut conn: Option<TcpStream> = None;
    while !stop.load(Ordering::SeqCst) {
        let start = Instant::now();
        let reused = conn.is_some();
        let mut connected = false;
        let work = async {
            let mut s = match conn.take() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(cfg.addr).await.map_err(connect_error)?;
                    connected = true;
                    s
                }
            };
            let (generation, pid, close) = exchange(&mut s, keepalive).await?;
            if keepalive && !close {
                conn = Some(s);
            }
            Ok::<_, Outcome>(Outcome::Answered { generation, pid })
        };
        let outcome = match tokio::time::timeout(cfg.timeout, work).await {
            Ok(Ok(o) | Err(o)) => o,
            Err(_) => Outcome::TimedOut,
        };
        if !matches!(outcome, Outcome::Answered { .. }) {
            conn = None;
        }
        out.push(Attempt { start, end: Instant::now(), reused, connected, outcome });
        done.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(cfg.pause).await;
    }
    out
}

fn connect_error(e: std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
        std::io::ErrorKind::ConnectionReset => Outcome::Reset(format!("connect: {e}")),
        _ => Outcome::Failed(format!("connect: {e}")),
    }
}

fn io_error(what: &str, e: std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::UnexpectedEof => Outcome::Reset(format!("{what}: {e}")),
        _ => Outcome::Failed(format!("{what}: {e}")),
    }
}

/// One request and its whole answer: (generation, pid, whether the server closes).
async fn exchange(s: &mut TcpStream, keepalive: bool) -> Result<(String, u32, bool), Outcome> {
    let connection = if keepalive { "keep-alive" } else { "close" };
    let req = format!("GET / HTTP/1.1\r\nHost: load\r\nConnection: {connection}\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| io_error("write", e))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.map_err(|e| io_error("read", e))?;
        if n == 0 {
            return Err(Outcome::Reset(format!("closed after {} bytes of the answer", buf.len())));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(Outcome::Failed(format!("answer: {}", head.lines().next().unwrap_or_default())));
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let len: usize =
        header("content-length").and_then(|v| v.parse().ok()).ok_or(Outcome::Failed("no length".into()))?;
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.map_err(|e| io_error("read body", e))?;
        if n == 0 {
            return Err(Outcome::Reset("closed in the body".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    parse_body(&body).map(|(g, p)| (g, p, close)).ok_or_else(|| Outcome::Failed(format!("body {body:?}")))
}

/// `generation G pid P`.
pub fn parse_body(body: &str) -> Option<(String, u32)> {
    let mut w = body.split_whitespace();
    match (w.next(), w.next(), w.next(), w.next()) {
        (Some("generation"), Some(g), Some("pid"), Some(p)) => Some((g.to_owned(), p.parse().ok()?)),
        _ => None,
    }
}
