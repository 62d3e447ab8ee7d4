//! `NetEnv` for `SimEnv`: Unix and TCP streams with fd passing, listeners
//! with Linux's backlog behaviour, UDP with loss, delay and reordering, and
//! partitions between hosts.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use warden::env::{Addr, Env, NetEnv};

use super::fd::{Desc, DescKind};
use super::handles::SimFd;
use super::stream::{Chunk, ListenerState, StreamEnd};
use crate::env::SimEnv;
use crate::rng::{Stream, below};
use crate::simulation::Simulation;

/// How long a TCP connect keeps retrying (SYN retries) before `TimedOut`.
pub(super) const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SYN_RETRY: Duration = Duration::from_millis(200);

fn err(kind: io::ErrorKind, msg: &str) -> io::Error {
    io::Error::new(kind, msg.to_owned())
}

fn not_a(what: &str) -> io::Error {
    err(io::ErrorKind::InvalidInput, &format!("fd is not a {what}"))
}

/// Resets every connection with an end on `host`.
pub(crate) fn reset_streams_of(sim: &Rc<Simulation>, host: u32) {
    let ends: Vec<Rc<StreamEnd>> = {
        let mut w = sim.world.borrow_mut();
        w.streams.retain(|s| s.strong_count() > 0);
        w.streams
            .iter()
            .filter_map(|s| s.upgrade())
            .filter(|s| s.route.local == host || s.route.remote == host)
            .collect()
    };
    for e in ends {
        e.reset();
    }
}

fn stream_of(fd: &SimFd) -> io::Result<Rc<StreamEnd>> {
    match &fd.desc().kind {
        DescKind::Stream(s) => Ok(s.clone()),
        _ => Err(not_a("stream")),
    }
}

fn new_pair(sim: &Rc<Simulation>, a_host: u32, b_host: u32, unix: bool) -> (Rc<Desc>, Rc<Desc>) {
    let (a, b) = StreamEnd::pair(a_host, b_host, unix);
    let (a, b) = (Rc::new(a), Rc::new(b));
    let mut w = sim.world.borrow_mut();
    w.streams.push(Rc::downgrade(&a));
    w.streams.push(Rc::downgrade(&b));
    (Desc::new(DescKind::Stream(a)), Desc::new(DescKind::Stream(b)))
}

/// Queues a completed connection on a listener and wakes its acceptor.
fn enqueue(l: &RefCell<ListenerState>, server: Rc<Desc>) {
    let mut ls = l.borrow_mut();
    ls.queue.push_back(server);
    if let Some(w) = ls.acceptor.take() {
        w.wake();
    }
}

impl SimEnv {
    /// A one-way latency to `remote` drawn from the network stream.
    fn latency_ns(&self, remote: u32) -> u64 {
        let (lo, hi) = self.sim.world.borrow().net.latency_range(remote == self.host);
        lo + below(self.sim.draw(Stream::Network), hi.saturating_sub(lo) + 1)
    }

    /// When bytes sent now from this host to `remote` become readable:
    /// after a partition between them heals, plus a latency.
    fn delivery_time(&self, remote: u32) -> u64 {
        let now = self.sim.now_ns();
        let healed = self.sim.world.borrow().partitioned(self.host, remote, now).unwrap_or(now);
        healed + self.latency_ns(remote)
    }

    async fn connect_tcp(self, to: SocketAddr) -> io::Result<SimFd> {
        let deadline = self.now() + TCP_CONNECT_TIMEOUT;
        loop {
            let remote = self.sim.world.borrow().host_by_ip(to.ip());
            let reachable = remote.filter(|r| {
                let w = self.sim.world.borrow();
                w.hosts[*r as usize].up && w.partitioned(self.host, *r, self.sim.now_ns()).is_none()
            });
            if let Some(remote) = reachable {
                // SYN out, SYN-ACK back.
                self.sleep(Duration::from_nanos(self.delivery_time(remote) - self.sim.now_ns())).await;
                let listener = self.sim.world.borrow().tcp.get(&to).cloned();
                let Some(l) = listener.filter(|l| l.borrow().open) else {
                    return Err(err(io::ErrorKind::ConnectionRefused, "connection refused"));
                };
                let room = {
                    let ls = l.borrow();
                    ls.queue.len() < ls.backlog
                };
                if room {
                    let (client, server) = new_pair(&self.sim, self.host, remote, false);
                    enqueue(&l, server);
                    self.sleep(Duration::from_nanos(self.latency_ns(remote))).await;
                    return Ok(SimFd::register(&self.sim, self.proc, client));
                }
            }
            if self.now() + SYN_RETRY > deadline {
                return Err(err(io::ErrorKind::TimedOut, "connect timed out"));
            }
            self.sleep(SYN_RETRY).await;
        }
    }

    fn connect_unix(&self, path: &std::path::Path) -> impl Future<Output = io::Result<SimFd>> + 'static {
        let env = self.clone();
        let key = (self.host, path.to_path_buf());
        std::future::poll_fn(move |cx| {
            let l = env.sim.world.borrow().unix.get(&key).cloned();
            let Some(l) = l else {
                return Poll::Ready(Err(err(io::ErrorKind::NotFound, "no such socket")));
            };
            let mut ls = l.borrow_mut();
            if !ls.open {
                return Poll::Ready(Err(err(io::ErrorKind::ConnectionRefused, "connection refused")));
            }
            if ls.queue.len() >= ls.backlog {
                // A blocking Unix connect waits for room in the backlog.
                ls.connectors.push(cx.waker().clone());
                return Poll::Pending;
            }
            drop(ls);
            let (client, server) = new_pair(&env.sim, env.host, env.host, true);
            enqueue(&l, server);
            Poll::Ready(Ok(SimFd::register(&env.sim, env.proc, client)))
        })
    }
}

impl NetEnv for SimEnv {
    type Listener = SimFd;
    type Stream = SimFd;
    type Datagram = SimFd;

    fn listen(&self, addr: &Addr) -> io::Result<SimFd> {
        let mut w = self.sim.world.borrow_mut();
        let state = match addr {
            Addr::Unix(path) => {
                let key = (self.host, path.clone());
                if w.unix.get(&key).is_some_and(|l| l.borrow().open) {
                    return Err(err(io::ErrorKind::AddrInUse, "address in use"));
                }
                let l = ListenerState::new(addr.clone(), self.host);
                w.unix.insert(key, l.clone());
                l
            }
            Addr::Tcp(sa) => {
                let ip = IpAddr::V4(w.hosts[self.host as usize].ip);
                let bound = if sa.ip().is_unspecified() { SocketAddr::new(ip, sa.port()) } else { *sa };
                if bound.ip() != ip {
                    return Err(err(io::ErrorKind::AddrNotAvailable, "address not on this host"));
                }
                if w.tcp.get(&bound).is_some_and(|l| l.borrow().open) {
                    return Err(err(io::ErrorKind::AddrInUse, "address in use"));
                }
                let l = ListenerState::new(Addr::Tcp(bound), self.host);
                w.tcp.insert(bound, l.clone());
                l
            }
        };
        drop(w);
        Ok(SimFd::register(&self.sim, self.proc, Desc::new(DescKind::Listener(state))))
    }

    fn accept<'a>(&self, l: &'a SimFd) -> impl Future<Output = io::Result<SimFd>> + 'a {
        let sim = self.sim.clone();
        let proc = self.proc;
        std::future::poll_fn(move |cx| {
            let DescKind::Listener(state) = &l.desc().kind else {
                return Poll::Ready(Err(not_a("listener")));
            };
            let mut ls = state.borrow_mut();
            if !ls.open {
                return Poll::Ready(Err(err(io::ErrorKind::InvalidInput, "listener is closed")));
            }
            match ls.queue.pop_front() {
                Some(server) => {
                    for w in std::mem::take(&mut ls.connectors) {
                        w.wake();
                    }
                    drop(ls);
                    Poll::Ready(Ok(SimFd::register(&sim, proc, server)))
                }
                None => {
                    ls.acceptor = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    fn connect(&self, addr: &Addr) -> impl Future<Output = io::Result<SimFd>> + 'static {
        let env = self.clone();
        let addr = addr.clone();
        async move {
            match addr {
                Addr::Unix(path) => env.connect_unix(&path).await,
                Addr::Tcp(sa) => env.connect_tcp(sa).await,
            }
        }
    }

    fn socketpair(&self) -> io::Result<(SimFd, SimFd)> {
        let (a, b) = new_pair(&self.sim, self.host, self.host, true);
        Ok((SimFd::register(&self.sim, self.proc, a), SimFd::register(&self.sim, self.proc, b)))
    }

    fn read<'a>(&self, s: &'a SimFd, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        let env = self.clone();
        async move {
            env.recv_with_fds(s, buf).await.map(|(n, fds)| {
                // Fds sent to a plain read are closed, as the sim does.
                drop(fds);
                n
            })
        }
    }

    fn write_all<'a>(&self, s: &'a SimFd, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        self.send_with_fds(s, buf, Vec::new())
    }

    fn send_with_fds<'a>(
        &self,
        s: &'a SimFd,
        buf: &'a [u8],
        fds: Vec<SimFd>,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        let env = self.clone();
        async move {
            let end = stream_of(s)?;
            if !fds.is_empty() && !end.route.unix {
                return Err(err(io::ErrorKind::InvalidInput, "fds can only be passed over Unix sockets"));
            }
            if env.sim.exec.is_dead(env.proc) {
                return Ok(());
            }
            let ready_at = env.delivery_time(end.route.remote);
            let mut tx = end.tx.borrow_mut();
            if tx.reset {
                return Err(err(io::ErrorKind::ConnectionReset, "connection reset"));
            }
            if tx.read_closed || tx.write_closed {
                return Err(err(io::ErrorKind::BrokenPipe, "broken pipe"));
            }
            let ready_at = ready_at.max(tx.last_ready_at);
            tx.last_ready_at = ready_at;
            let fds: Vec<Rc<Desc>> = fds.into_iter().filter_map(SimFd::transfer).collect();
            let what = if end.route.unix { "unix" } else { "tcp" };
            let flow = crate::trace::with_export(|t, now, proc| t.send(proc, what, now)).unwrap_or(0);
            tx.chunks.push_back(Chunk { data: buf.to_vec(), pos: 0, fds, ready_at, flow });
            tx.wake_reader();
            Ok(())
        }
    }

    fn recv_with_fds<'a>(
        &self,
        s: &'a SimFd,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, Vec<SimFd>)>> + 'a {
        let env = self.clone();
        std::future::poll_fn(move |cx| {
            let end = match stream_of(s) {
                Ok(e) => e,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if buf.is_empty() {
                return Poll::Ready(Ok((0, Vec::new())));
            }
            let now = env.sim.now_ns();
            let mut rx = end.rx.borrow_mut();
            if rx.reset {
                return Poll::Ready(Err(err(io::ErrorKind::ConnectionReset, "connection reset")));
            }
            // Bytes readable now, up to (not past) the next chunk with fds.
            let mut avail = 0usize;
            for (i, c) in rx.chunks.iter().enumerate() {
                if c.ready_at > now || (i > 0 && !c.fds.is_empty()) {
                    break;
                }
                avail += c.data.len() - c.pos;
            }
            if avail == 0 {
                if let Some(front) = rx.chunks.front() {
                    let at = front.ready_at;
                    rx.reader = Some(cx.waker().clone());
                    drop(rx);
                    // Stale once read or dropped: a wake of nothing.
                    let _ = env.sim.exec.add_timer(at, cx.waker());
                    return Poll::Pending;
                }
                if rx.write_closed {
                    return Poll::Ready(Ok((0, Vec::new())));
                }
                rx.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // An arbitrary split of what is there: framing bugs surface.
            let max = avail.min(buf.len()) as u64;
            let n = 1 + below(env.sim.draw(Stream::Network), max) as usize;
            let mut got = 0;
            let mut fds = Vec::new();
            while got < n {
                let Some(c) = rx.chunks.front_mut() else {
                    break;
                };
                fds.append(&mut c.fds);
                if c.flow != 0 {
                    let (flow, what, proc) = (c.flow, if end.route.unix { "unix" } else { "tcp" }, env.proc);
                    crate::trace::with_export(|t, now, _| t.receive(flow, proc, what, now, true));
                    c.flow = 0;
                }
                let take = (n - got).min(c.data.len() - c.pos);
                buf[got..got + take].copy_from_slice(&c.data[c.pos..c.pos + take]);
                c.pos += take;
                got += take;
                if c.pos == c.data.len() {
                    rx.chunks.pop_front();
                }
            }
            drop(rx);
            let fds = fds.into_iter().map(|d| SimFd::register(&env.sim, env.proc, d)).collect();
            Poll::Ready(Ok((got, fds)))
        })
    }

    fn shutdown_write(&self, s: &SimFd) -> io::Result<()> {
        let end = stream_of(s)?;
        let mut tx = end.tx.borrow_mut();
        tx.write_closed = true;
        tx.wake_reader();
        Ok(())
    }

    fn bind_udp(&self, addr: SocketAddr) -> io::Result<SimFd> {
        self.udp_bind(addr)
    }

    fn send_to<'a>(&self, d: &'a SimFd, buf: &'a [u8], to: SocketAddr) -> impl Future<Output = io::Result<()>> + 'a {
        std::future::ready(self.udp_send_to(d, buf, to))
    }

    fn recv_from<'a>(
        &self,
        d: &'a SimFd,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a {
        std::future::poll_fn(move |cx| SimEnv::udp_recv_from(d, buf, cx.waker()))
    }

    fn listener_into_fd(&self, l: SimFd) -> SimFd {
        l
    }

    fn fd_into_listener(&self, fd: SimFd) -> io::Result<SimFd> {
        match fd.desc().kind {
            DescKind::Listener(_) => Ok(fd),
            _ => Err(not_a("listener")),
        }
    }

    fn stream_into_fd(&self, s: SimFd) -> SimFd {
        s
    }

    fn fd_into_stream(&self, fd: SimFd) -> io::Result<SimFd> {
        match fd.desc().kind {
            DescKind::Stream(_) => Ok(fd),
            _ => Err(not_a("stream")),
        }
    }

    fn dup_fd(&self, fd: &SimFd) -> io::Result<SimFd> {
        fd.desc().acquire();
        Ok(SimFd::register(&self.sim, self.proc, fd.desc().clone()))
    }
}
