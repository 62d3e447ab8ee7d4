//! The network facet: Unix and TCP streams and listeners, fd passing over
//! Unix streams, UDP datagrams.
//!
//! Streams deliver bytes in order or fail (reset, broken pipe); a read may
//! return any part of what was written, so framing is the caller's job.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a listener listens or a stream connects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    /// A Unix socket path on this host.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Sockets of the calling process.
pub trait NetEnv: super::ProcessEnv {
    /// A listening socket.
    type Listener: 'static;
    /// A connected stream socket.
    type Stream: 'static;
    /// A bound UDP socket.
    type Datagram: 'static;

    /// Listens on `addr` (a Unix path must not exist yet).
    fn listen(&self, addr: &Addr) -> io::Result<Self::Listener>;
    /// Accepts the next connection.
    fn accept<'a>(&self, l: &'a Self::Listener) -> impl Future<Output = io::Result<Self::Stream>> + 'a;
    /// Connects to `addr`: `ConnectionRefused` when nothing listens there.
    fn connect(&self, addr: &Addr) -> impl Future<Output = io::Result<Self::Stream>> + 'static;
    /// A connected pair of Unix streams.
    fn socketpair(&self) -> io::Result<(Self::Stream, Self::Stream)>;
    /// Reads some bytes; 0 means the peer closed its side.
    fn read<'a>(&self, s: &'a Self::Stream, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a;
    /// Writes every byte (`BrokenPipe` once the peer is gone).
    fn write_all<'a>(&self, s: &'a Self::Stream, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a;
    /// Writes `buf` with `fds` attached (Unix streams only, SCM_RIGHTS).
    fn send_with_fds<'a>(
        &self,
        s: &'a Self::Stream,
        buf: &'a [u8],
        fds: Vec<Self::Fd>,
    ) -> impl Future<Output = io::Result<()>> + 'a;
    /// Reads some bytes and the fds attached to them.
    fn recv_with_fds<'a>(
        &self,
        s: &'a Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, Vec<Self::Fd>)>> + 'a;
    /// Closes the writing half: the peer reads 0 after what was sent.
    fn shutdown_write(&self, s: &Self::Stream) -> io::Result<()>;
    /// Binds a UDP socket.
    fn bind_udp(&self, addr: std::net::SocketAddr) -> io::Result<Self::Datagram>;
    /// Sends one datagram (it may be lost, delayed or reordered).
    fn send_to<'a>(
        &self,
        d: &'a Self::Datagram,
        buf: &'a [u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + 'a;
    /// Receives one datagram.
    fn recv_from<'a>(
        &self,
        d: &'a Self::Datagram,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + 'a;
    /// The descriptor of a listener, to pass to another process.
    fn listener_into_fd(&self, l: Self::Listener) -> Self::Fd;
    /// A listener from a passed descriptor.
    fn fd_into_listener(&self, fd: Self::Fd) -> io::Result<Self::Listener>;
    /// The descriptor of a stream.
    fn stream_into_fd(&self, s: Self::Stream) -> Self::Fd;
    /// A stream from a passed descriptor.
    fn fd_into_stream(&self, fd: Self::Fd) -> io::Result<Self::Stream>;
    /// A second descriptor for the same open file description (dup).
    fn dup_fd(&self, fd: &Self::Fd) -> io::Result<Self::Fd>;
}
