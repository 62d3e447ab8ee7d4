//! Fd passing over Unix streams (SCM_RIGHTS), driven by the stream's
//! reactor registration.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use tokio::io::Interest;

use super::fds::RealFd;
use super::net::{self, Kind, RealStream};

/// The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD).
const MAX_FDS: usize = 253;

fn unix_only(s: &RealStream) -> io::Result<()> {
    if s.kind == Kind::Unix {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "fds can only be passed over Unix streams"))
    }
}

/// Writes `buf` with `fds` attached to its first byte(s), then closes our
/// copies of `fds` (the receiver gets its own).
///
/// `buf` must not be empty when `fds` is not: a stream socket carries
/// ancillary data only along with at least one byte.
pub(super) async fn send_with_fds(s: &RealStream, buf: &[u8], fds: Vec<RealFd>) -> io::Result<()> {
    unix_only(s)?;
    if fds.is_empty() {
        return net::write_all(s, buf).await;
    }
    if buf.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "fds need at least one byte of data"));
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("at most {MAX_FDS} fds per message")));
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    let n =
        s.io.async_io(Interest::WRITABLE, |fd| {
            let iov = [IoSlice::new(buf)];
            let cmsg = [ControlMessage::ScmRights(&raw)];
            Ok(socket::sendmsg::<UnixAddr>(fd.as_raw_fd(), &iov, &cmsg, flags, None)?)
        })
        .await?;
    // The fds went with the first chunk; our copies can go.
    drop(fds);
    net::write_all(s, &buf[n..]).await
}

/// Reads some bytes and the fds attached to them (received close-on-exec).
pub(super) async fn recv_with_fds(s: &RealStream, buf: &mut [u8]) -> io::Result<(usize, Vec<RealFd>)> {
    unix_only(s)?;
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
    s.io.async_io(Interest::READABLE, |fd| {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = socket::recvmsg::<UnixAddr>(fd.as_raw_fd(), &mut iov, Some(&mut space), flags)?;
        let mut fds = Vec::new();
        // ENOBUFS here means the control data was truncated: impossible
        // with room for SCM_MAX_FD fds, and an error if it ever happens.
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel installed these fds in our table for
                // this message; nobody else owns them.
                fds.extend(raw.into_iter().map(|r| RealFd::new(unsafe { OwnedFd::from_raw_fd(r) })));
            }
        }
        Ok((msg.bytes, fds))
    })
    .await
}
