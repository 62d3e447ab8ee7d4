//! Unix and TCP streams and listeners, and UDP sockets, of the real
//! backend.
//!
//! Stream sockets are raw fds registered with tokio's reactor
//! (`AsyncFd`), not `tokio::net` types: a fd must go back to a plain
//! descriptor infallibly (`listener_into_fd`, `stream_into_fd`), and the
//! same registration serves SCM_RIGHTS (see `scm`). Every socket is
//! non-blocking and close-on-exec. Reads and writes pass `MSG_DONTWAIT`
//! too, and accept runs only once poll(2) reports a queued connection,
//! because `O_NONBLOCK` belongs to the open file description, which a
//! passed listener or stream shares with another process.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrLike, SockaddrStorage, UnixAddr, sockopt,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::fds::{self, RealFd, need_runtime};
use crate::env::Addr;

/// Which protocol a stream socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Unix,
    Tcp,
}

/// A listening Unix or TCP socket.
#[derive(Debug)]
pub struct RealListener {
    io: AsyncFd<OwnedFd>,
    kind: Kind,
}

/// A connected Unix or TCP stream.
#[derive(Debug)]
pub struct RealStream {
    pub(super) io: AsyncFd<OwnedFd>,
    pub(super) kind: Kind,
}

/// A bound UDP socket.
#[derive(Debug)]
pub struct RealDatagram {
    io: tokio::net::UdpSocket,
}

impl RealListener {
    /// The address it listens on (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<Addr> {
        let fd = self.io.get_ref();
        match self.kind {
            Kind::Unix => {
                let a: UnixAddr = socket::getsockname(fd.as_raw_fd())?;
                let path = a.path().ok_or_else(|| io::Error::other("unnamed or abstract Unix socket"))?;
                Ok(Addr::Unix(path.to_path_buf()))
            }
            Kind::Tcp => {
                let a: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
                sockaddr_to_std(&a).map(Addr::Tcp)
            }
        }
    }
}

impl RealDatagram {
    /// The address it is bound to (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

fn sockaddr_to_std(a: &SockaddrStorage) -> io::Result<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Ok(SocketAddr::V4((*v4).into()))
    } else if let Some(v6) = a.as_sockaddr_in6() {
        Ok(SocketAddr::V6((*v6).into()))
    } else {
        Err(io::Error::other("not an IP socket address"))
    }
}

const STREAM_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);
const SOCK_FLAGS: SockFlag = SockFlag::SOCK_NONBLOCK.union(SockFlag::SOCK_CLOEXEC);

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The protocol of a stream socket, from its address family;
/// `InvalidInput` for anything that is not a Unix or IP stream socket.
fn stream_kind(fd: &OwnedFd) -> io::Result<Kind> {
    let not_socket = |e: Errno| {
        if e == Errno::ENOTSOCK { invalid("not a socket") } else { io::Error::from(e) }
    };
    let ty = socket::getsockopt(fd, sockopt::SockType).map_err(not_socket)?;
    if ty != SockType::Stream {
        return Err(invalid(format!("not a stream socket ({ty:?})")));
    }
    let addr: SockaddrStorage = socket::getsockname(fd.as_raw_fd()).map_err(not_socket)?;
    match addr.family() {
        Some(AddressFamily::Unix) => Ok(Kind::Unix),
        Some(AddressFamily::Inet | AddressFamily::Inet6) => Ok(Kind::Tcp),
        other => Err(invalid(format!("unsupported socket family {other:?}"))),
    }
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    fds::register(fd, STREAM_INTEREST)
}

pub(super) fn listen(addr: &Addr) -> io::Result<RealListener> {
    need_runtime()?;
    let (fd, kind) = match addr {
        // std binds with a backlog of 128 and, for TCP, SO_REUSEADDR; both
        // open close-on-exec.
        Addr::Unix(path) => (OwnedFd::from(std::os::unix::net::UnixListener::bind(path)?), Kind::Unix),
        Addr::Tcp(a) => (OwnedFd::from(std::net::TcpListener::bind(a)?), Kind::Tcp),
    };
    super::fds::set_nonblocking(fd.as_raw_fd(), true)?;
    Ok(RealListener { io: register(fd)?, kind })
}

/// Accepts the next connection. The listener's `O_NONBLOCK` belongs to
/// its open file description, which a passed listener shares with other
/// processes: one that clears it (a successor setting up its copy) must
/// not turn this accept into a blocking call that stalls the whole
/// runtime. So accept4 runs only when poll(2) says a connection is
/// queued; only one generation accepts at a time, so none takes it in
/// between.
pub(super) async fn accept(l: &RealListener) -> io::Result<RealStream> {
    loop {
        let r =
            l.io.async_io(Interest::READABLE, |fd| {
                if !poll_readable(fd.as_raw_fd())? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(socket::accept4(fd.as_raw_fd(), SOCK_FLAGS)?)
            })
            .await;
        match r {
            // SAFETY: accept4 returned a new fd that nobody else owns.
            Ok(raw) => {
                return Ok(RealStream { io: register(unsafe { OwnedFd::from_raw_fd(raw) })?, kind: l.kind });
            }
            // A connection reset before we took it is the peer's business,
            // not the listener's: take the next one.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether `fd` polls readable right now (a listener: a connection is queued).
fn poll_readable(fd: std::os::fd::RawFd) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc >= 0 {
            return Ok(rc > 0 && pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(super) fn connect(addr: &Addr) -> impl Future<Output = io::Result<RealStream>> + 'static {
    let addr = addr.clone();
    async move {
        match addr {
            Addr::Unix(path) => connect_unix(&path).await,
            Addr::Tcp(a) => connect_tcp(a).await,
        }
    }
}

/// Connects to a Unix socket. A missing path is `ConnectionRefused`, as
/// for a path nobody listens on any more: nothing listens there either
/// way. A full backlog (`EAGAIN` on a non-blocking Unix connect) is
/// retried with a growing pause, as a blocking connect would wait; the
/// caller's deadline bounds it.
async fn connect_unix(path: &Path) -> io::Result<RealStream> {
    let ua = UnixAddr::new(path).map_err(io::Error::from)?;
    let mut pause = Duration::from_millis(1);
    loop {
        let fd = socket::socket(AddressFamily::Unix, SockType::Stream, SOCK_FLAGS, None)?;
        match socket::connect(fd.as_raw_fd(), &ua) {
            Ok(()) => {
                return Ok(RealStream { io: register(fd)?, kind: Kind::Unix });
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(Errno::ENOENT) => return Err(refused_unix(path)),
            Err(e) => return Err(e.into()),
        }
    }
}

fn refused_unix(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("connection refused: no socket at {}", PathBuf::from(path).display()),
    )
}

async fn connect_tcp(a: SocketAddr) -> io::Result<RealStream> {
    let family = if a.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket::socket(family, SockType::Stream, SOCK_FLAGS, None)?;
    let sa = SockaddrStorage::from(a);
    match socket::connect(fd.as_raw_fd(), &sa) {
        Ok(()) => {
            return Ok(RealStream { io: register(fd)?, kind: Kind::Tcp });
        }
        Err(Errno::EINPROGRESS | Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    let io = register(fd)?;
    loop {
        let mut guard = io.writable().await?;
        match socket::getsockopt(io.get_ref(), sockopt::SocketError)? {
            0 => break,
            // Spurious wake-up: not connected, no error yet.
            libc::EINPROGRESS | libc::EALREADY => guard.clear_ready(),
            err => return Err(io::Error::from_raw_os_error(err)),
        }
    }
    Ok(RealStream { io, kind: Kind::Tcp })
}

pub(super) fn socketpair() -> io::Result<(RealStream, RealStream)> {
    need_runtime()?;
    let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SOCK_FLAGS)?;
    Ok((RealStream { io: register(a)?, kind: Kind::Unix }, RealStream { io: register(b)?, kind: Kind::Unix }))
}

pub(super) async fn read(s: &RealStream, buf: &mut [u8]) -> io::Result<usize> {
    s.io.async_io(Interest::READABLE, |fd| Ok(socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)).await
}

pub(super) async fn write_all(s: &RealStream, mut buf: &[u8]) -> io::Result<()> {
    // MSG_NOSIGNAL: a closed peer is EPIPE (BrokenPipe), never SIGPIPE.
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    while !buf.is_empty() {
        let n = s.io.async_io(Interest::WRITABLE, |fd| Ok(socket::send(fd.as_raw_fd(), buf, flags)?)).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        buf = &buf[n..];
    }
    Ok(())
}

pub(super) fn shutdown_write(s: &RealStream) -> io::Result<()> {
    Ok(socket::shutdown(s.io.get_ref().as_raw_fd(), socket::Shutdown::Write)?)
}

pub(super) fn bind_udp(addr: SocketAddr) -> io::Result<RealDatagram> {
    need_runtime()?;
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(RealDatagram { io: tokio::net::UdpSocket::from_std(s)? })
}

pub(super) async fn send_to(d: &RealDatagram, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    let n = d.io.send_to(buf, to).await?;
    if n != buf.len() {
        return Err(io::Error::other(format!("datagram truncated to {n} of {} bytes", buf.len())));
    }
    Ok(())
}

pub(super) async fn recv_from(d: &RealDatagram, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    d.io.recv_from(buf).await
}

pub(super) fn listener_into_fd(l: RealListener) -> RealFd {
    RealFd::new(l.io.into_inner())
}

pub(super) fn stream_into_fd(s: RealStream) -> RealFd {
    RealFd::new(s.io.into_inner())
}

/// A listener from a descriptor: `InvalidInput` unless it is a listening
/// Unix or TCP socket.
pub(super) fn fd_into_listener(fd: RealFd) -> io::Result<RealListener> {
    let fd = fd.into_owned();
    let kind = stream_kind(&fd)?;
    if !socket::getsockopt(&fd, sockopt::AcceptConn)? {
        return Err(invalid("not a listening socket"));
    }
    super::fds::set_nonblocking(fd.as_raw_fd(), true)?;
    Ok(RealListener { io: register(fd)?, kind })
}

/// A stream from a descriptor: `InvalidInput` unless it is a Unix or TCP
/// stream socket that is not listening.
pub(super) fn fd_into_stream(fd: RealFd) -> io::Result<RealStream> {
    let fd = fd.into_owned();
    let kind = stream_kind(&fd)?;
    if socket::getsockopt(&fd, sockopt::AcceptConn)? {
        return Err(invalid("a listening socket is not a stream"));
    }
    super::fds::set_nonblocking(fd.as_raw_fd(), true)?;
    Ok(RealStream { io: register(fd)?, kind })
}

/// A second descriptor for the same open file description.
pub(super) fn dup_fd(fd: &RealFd) -> io::Result<RealFd> {
    Ok(RealFd::new(fd.as_owned().try_clone()?))
}
