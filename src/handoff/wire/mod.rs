//! The handoff's wire format: length-prefixed, versioned frames.
//!
//! ```text
//! frame   = length:u32be body            (length = body bytes, 4..=FRAME_MAX)
//! body    = magic:u8 version:u16be kind:u8 fields...
//! string  = len:u16be utf-8 bytes        (at most STRING_MAX)
//! list    = count:u16be items...         (at most LIST_MAX)
//! ```
//!
//! Hello and HelloAck keep their layout in every version, so two peers can
//! negotiate a version from them; every other frame must carry a version
//! both sides support. Every frame after Hello carries the handoff id.
//!
//! [`FrameReader`] never panics and never holds more than one frame
//! (`4 + FRAME_MAX` bytes) whatever it is fed; a length above the limit is
//! an error before anything is allocated, and every string or list inside
//! is checked against the bytes actually left in its frame.

mod decode;

pub use decode::{FrameReader, decode_body};

use super::id::{HandoffId, PeerState, Role, Token};

/// Oldest protocol version this build speaks.
pub const PROTO_MIN: u16 = 1;
/// Newest protocol version this build speaks.
pub const PROTO_MAX: u16 = 1;
/// Largest frame body accepted or produced.
pub const FRAME_MAX: usize = 16 * 1024;
/// Longest string field.
pub const STRING_MAX: usize = 1024;
/// Most items in a list field.
pub const LIST_MAX: usize = 64;
/// Bytes of the length prefix.
pub const HEADER: usize = 4;

const MAGIC: u8 = 0xA7;

/// What a service process says first on every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Its role.
    pub role: Role,
    /// Its pid, as it sees it.
    pub pid: u32,
    /// The token it was spawned with.
    pub token: Token,
    /// Oldest version it speaks.
    pub proto_min: u16,
    /// Newest version it speaks.
    pub proto_max: u16,
    /// Where it is in a handoff.
    pub state: PeerState,
    /// The handoff it is in ([`HandoffId::NONE`] when serving).
    pub handoff: HandoffId,
    /// Names of the listeners it holds, in the order of the fds attached
    /// to this frame.
    pub listeners: Vec<String>,
}

/// One message of the handoff protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Service process to coordinator, first on a session.
    Hello(Hello),
    /// Coordinator's answer: the chosen version and its current handoff.
    HelloAck {
        /// The coordinator's handoff with this peer, or NONE.
        id: HandoffId,
        /// The version both sides speak from now on.
        version: u16,
    },
    /// S to O: stop accepting and drain, within `drain_grace_ms`.
    PrepareHandoff {
        /// The handoff.
        id: HandoffId,
        /// Milliseconds left until S gives the whole handoff up.
        deadline_ms: u64,
        /// Milliseconds O may wait for its open connections.
        drain_grace_ms: u64,
    },
    /// O to S: it no longer accepts.
    Drained {
        /// The handoff.
        id: HandoffId,
        /// Connections still open when the grace ended.
        open_conns: u32,
        /// Whether O stopped accepting.
        accept_closed: bool,
    },
    /// S to O: release what N needs exclusively.
    SealRequest {
        /// The handoff.
        id: HandoffId,
    },
    /// O to S: the seal goes on.
    SealProgress {
        /// The handoff.
        id: HandoffId,
        /// Steps done.
        done: u32,
        /// Steps in all.
        total: u32,
    },
    /// Either way: liveness; a peer echoes one it receives.
    Heartbeat {
        /// The handoff.
        id: HandoffId,
    },
    /// O to S: sealed.
    SealComplete {
        /// The handoff.
        id: HandoffId,
    },
    /// O to S: the seal failed; O is not sealed.
    SealFailed {
        /// The handoff.
        id: HandoffId,
        /// Why.
        error: String,
    },
    /// S to N: accept connections and report readiness.
    Begin {
        /// The handoff.
        id: HandoffId,
    },
    /// N to S: it accepts, and how healthy it is.
    Ready {
        /// The handoff.
        id: HandoffId,
        /// Listener names it accepts on.
        listening_on: Vec<String>,
        /// Its health check passed.
        healthz_ok: bool,
        /// Application-defined revisions it serves (one per shard).
        revisions: Vec<u64>,
    },
    /// S to N and O: N is the incumbent now.
    Commit {
        /// The handoff.
        id: HandoffId,
    },
    /// S to N (or O to S, refusing a handoff): give the handoff up.
    Abort {
        /// The handoff.
        id: HandoffId,
        /// Why.
        reason: String,
    },
    /// S to O: the handoff was given up; serve again.
    ResumeAfterAbort {
        /// The handoff.
        id: HandoffId,
    },
}

/// Frame kinds on the wire.
mod kind {
    pub(super) const HELLO: u8 = 1;
    pub(super) const HELLO_ACK: u8 = 2;
    pub(super) const PREPARE: u8 = 3;
    pub(super) const DRAINED: u8 = 4;
    pub(super) const SEAL_REQUEST: u8 = 5;
    pub(super) const SEAL_PROGRESS: u8 = 6;
    pub(super) const HEARTBEAT: u8 = 7;
    pub(super) const SEAL_COMPLETE: u8 = 8;
    pub(super) const SEAL_FAILED: u8 = 9;
    pub(super) const BEGIN: u8 = 10;
    pub(super) const READY: u8 = 11;
    pub(super) const COMMIT: u8 = 12;
    pub(super) const ABORT: u8 = 13;
    pub(super) const RESUME: u8 = 14;
}

impl Frame {
    /// The handoff the frame belongs to; `None` for Hello (which names the
    /// peer's own handoff in its body).
    pub fn id(&self) -> Option<HandoffId> {
        match self {
            Frame::Hello(_) => None,
            Frame::HelloAck { id, .. }
            | Frame::PrepareHandoff { id, .. }
            | Frame::Drained { id, .. }
            | Frame::SealRequest { id }
            | Frame::SealProgress { id, .. }
            | Frame::Heartbeat { id }
            | Frame::SealComplete { id }
            | Frame::SealFailed { id, .. }
            | Frame::Begin { id }
            | Frame::Ready { id, .. }
            | Frame::Commit { id }
            | Frame::Abort { id, .. }
            | Frame::ResumeAfterAbort { id } => Some(*id),
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::HelloAck { .. } => "HelloAck",
            Frame::PrepareHandoff { .. } => "PrepareHandoff",
            Frame::Drained { .. } => "Drained",
            Frame::SealRequest { .. } => "SealRequest",
            Frame::SealProgress { .. } => "SealProgress",
            Frame::Heartbeat { .. } => "Heartbeat",
            Frame::SealComplete { .. } => "SealComplete",
            Frame::SealFailed { .. } => "SealFailed",
            Frame::Begin { .. } => "Begin",
            Frame::Ready { .. } => "Ready",
            Frame::Commit { .. } => "Commit",
            Frame::Abort { .. } => "Abort",
            Frame::ResumeAfterAbort { .. } => "ResumeAfterAbort",
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Frame::Hello(_) => kind::HELLO,
            Frame::HelloAck { .. } => kind::HELLO_ACK,
            Frame::PrepareHandoff { .. } => kind::PREPARE,
            Frame::Drained { .. } => kind::DRAINED,
            Frame::SealRequest { .. } => kind::SEAL_REQUEST,
            Frame::SealProgress { .. } => kind::SEAL_PROGRESS,
            Frame::Heartbeat { .. } => kind::HEARTBEAT,
            Frame::SealComplete { .. } => kind::SEAL_COMPLETE,
            Frame::SealFailed { .. } => kind::SEAL_FAILED,
            Frame::Begin { .. } => kind::BEGIN,
            Frame::Ready { .. } => kind::READY,
            Frame::Commit { .. } => kind::COMMIT,
            Frame::Abort { .. } => kind::ABORT,
            Frame::ResumeAfterAbort { .. } => kind::RESUME,
        }
    }
}

/// A malformed frame or one this build cannot speak; the session that
/// carried it cannot be resynchronised and is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix is below the smallest body or above [`FRAME_MAX`].
    #[error("frame length {0} outside 4..={FRAME_MAX}")]
    BadLength(u32),
    /// The body does not start with the protocol's magic byte.
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    /// A version outside [`PROTO_MIN`]..=[`PROTO_MAX`] on a frame other
    /// than Hello/HelloAck.
    #[error("unsupported protocol version {0}")]
    Version(u16),
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// A field runs past the end of its frame.
    #[error("frame truncated inside {0}")]
    Truncated(&'static str),
    /// Bytes left after the last field.
    #[error("{0} trailing bytes after the last field")]
    Trailing(usize),
    /// A field has a value no encoder produces.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// An encoder was given more than the limits allow.
    #[error("{0} exceeds the wire limits")]
    TooLarge(&'static str),
    /// No version in common.
    #[error("no common protocol version: ours {PROTO_MIN}..={PROTO_MAX}, theirs {0}..={1}")]
    NoCommonVersion(u16, u16),
}

/// The highest version in both ranges.
pub fn negotiate(their_min: u16, their_max: u16) -> Result<u16, WireError> {
    let hi = PROTO_MAX.min(their_max);
    if their_min > their_max || hi < PROTO_MIN.max(their_min) {
        return Err(WireError::NoCommonVersion(their_min, their_max));
    }
    Ok(hi)
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn id(&mut self, id: HandoffId) {
        self.u64(id.0);
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// A name: longer than [`STRING_MAX`] is an error.
    fn name(&mut self, s: &str) -> Result<(), WireError> {
        if s.len() > STRING_MAX {
            return Err(WireError::TooLarge("string"));
        }
        self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    /// Free text (reasons, errors): cut at [`STRING_MAX`] on a char boundary.
    fn text(&mut self, s: &str) {
        let mut end = s.len().min(STRING_MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self.name(&s[..end]);
    }
    fn count(&mut self, n: usize) -> Result<(), WireError> {
        if n > LIST_MAX {
            return Err(WireError::TooLarge("list"));
        }
        self.u16(n as u16);
        Ok(())
    }
}

/// The bytes of `frame` (prefix included) in protocol `version`.
pub fn encode(version: u16, frame: &Frame) -> Result<Vec<u8>, WireError> {
    let mut o = Out(Vec::with_capacity(32));
    o.u32(0);
    o.u8(MAGIC);
    o.u16(version);
    o.u8(frame.kind());
    match frame {
        Frame::Hello(h) => {
            o.u8(match h.role {
                Role::Incumbent => 1,
                Role::Successor => 2,
            });
            o.u32(h.pid);
            o.u64(h.token.0);
            o.u16(h.proto_min);
            o.u16(h.proto_max);
            o.u8(h.state.code());
            o.id(h.handoff);
            o.count(h.listeners.len())?;
            for l in &h.listeners {
                o.name(l)?;
            }
        }
        Frame::HelloAck { id, version } => {
            o.id(*id);
            o.u16(*version);
        }
        Frame::PrepareHandoff { id, deadline_ms, drain_grace_ms } => {
            o.id(*id);
            o.u64(*deadline_ms);
            o.u64(*drain_grace_ms);
        }
        Frame::Drained { id, open_conns, accept_closed } => {
            o.id(*id);
            o.u32(*open_conns);
            o.bool(*accept_closed);
        }
        Frame::SealProgress { id, done, total } => {
            o.id(*id);
            o.u32(*done);
            o.u32(*total);
        }
        Frame::SealFailed { id, error: text } | Frame::Abort { id, reason: text } => {
            o.id(*id);
            o.text(text);
        }
        Frame::Ready { id, listening_on, healthz_ok, revisions } => {
            o.id(*id);
            o.count(listening_on.len())?;
            for l in listening_on {
                o.name(l)?;
            }
            o.bool(*healthz_ok);
            o.count(revisions.len())?;
            for r in revisions {
                o.u64(*r);
            }
        }
        Frame::SealRequest { id }
        | Frame::Heartbeat { id }
        | Frame::SealComplete { id }
        | Frame::Begin { id }
        | Frame::Commit { id }
        | Frame::ResumeAfterAbort { id } => o.id(*id),
    }
    let body = o.0.len() - HEADER;
    if body > FRAME_MAX {
        return Err(WireError::TooLarge("frame"));
    }
    o.0[..HEADER].copy_from_slice(&(body as u32).to_be_bytes());
    Ok(o.0)
}
