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

/// Reads fields of one body; every read is checked against what is left.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn id(&mut self) -> Result<HandoffId, WireError> {
        self.u64("handoff id").map(HandoffId)
    }
    fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Invalid(what)),
        }
    }
    fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        let n = usize::from(self.u16(what)?);
        if n > STRING_MAX {
            return Err(WireError::Invalid(what));
        }
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| WireError::Invalid(what))
    }
    /// A list count, checked so that `count * min_item` bytes are left:
    /// nothing is reserved for items that cannot be there.
    fn count(&mut self, min_item: usize, what: &'static str) -> Result<usize, WireError> {
        let n = usize::from(self.u16(what)?);
        if n > LIST_MAX {
            return Err(WireError::Invalid(what));
        }
        if n * min_item > self.0.len() {
            return Err(WireError::Truncated(what));
        }
        Ok(n)
    }
    fn strings(&mut self, what: &'static str) -> Result<Vec<String>, WireError> {
        let n = self.count(2, what)?;
        (0..n).map(|_| self.string(what)).collect()
    }
}

/// Parses one frame body (without the length prefix); returns its version.
pub fn decode_body(body: &[u8]) -> Result<(u16, Frame), WireError> {
    let mut i = In(body);
    let magic = i.u8("magic")?;
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    let version = i.u16("version")?;
    let k = i.u8("kind")?;
    if !matches!(k, kind::HELLO | kind::HELLO_ACK) && !(PROTO_MIN..=PROTO_MAX).contains(&version) {
        return Err(WireError::Version(version));
    }
    let frame = match k {
        kind::HELLO => {
            let role = match i.u8("role")? {
                1 => Role::Incumbent,
                2 => Role::Successor,
                _ => return Err(WireError::Invalid("role")),
            };
            let pid = i.u32("pid")?;
            let token = Token(i.u64("token")?);
            let proto_min = i.u16("proto_min")?;
            let proto_max = i.u16("proto_max")?;
            let state = PeerState::from_code(i.u8("state")?).ok_or(WireError::Invalid("state"))?;
            let handoff = i.id()?;
            let listeners = i.strings("listeners")?;
            Frame::Hello(Hello { role, pid, token, proto_min, proto_max, state, handoff, listeners })
        }
        kind::HELLO_ACK => Frame::HelloAck { id: i.id()?, version: i.u16("version")? },
        kind::PREPARE => Frame::PrepareHandoff {
            id: i.id()?,
            deadline_ms: i.u64("deadline_ms")?,
            drain_grace_ms: i.u64("drain_grace_ms")?,
        },
        kind::DRAINED => {
            Frame::Drained { id: i.id()?, open_conns: i.u32("open_conns")?, accept_closed: i.bool("accept_closed")? }
        }
        kind::SEAL_REQUEST => Frame::SealRequest { id: i.id()? },
        kind::SEAL_PROGRESS => Frame::SealProgress { id: i.id()?, done: i.u32("done")?, total: i.u32("total")? },
        kind::HEARTBEAT => Frame::Heartbeat { id: i.id()? },
        kind::SEAL_COMPLETE => Frame::SealComplete { id: i.id()? },
        kind::SEAL_FAILED => Frame::SealFailed { id: i.id()?, error: i.string("error")? },
        kind::BEGIN => Frame::Begin { id: i.id()? },
        kind::READY => {
            let id = i.id()?;
            let listening_on = i.strings("listening_on")?;
            let healthz_ok = i.bool("healthz_ok")?;
            let n = i.count(8, "revisions")?;
            let revisions = (0..n).map(|_| i.u64("revisions")).collect::<Result<_, _>>()?;
            Frame::Ready { id, listening_on, healthz_ok, revisions }
        }
        kind::COMMIT => Frame::Commit { id: i.id()? },
        kind::ABORT => Frame::Abort { id: i.id()?, reason: i.string("reason")? },
        kind::RESUME => Frame::ResumeAfterAbort { id: i.id()? },
        other => return Err(WireError::Kind(other)),
    };
    if !i.0.is_empty() {
        return Err(WireError::Trailing(i.0.len()));
    }
    Ok((version, frame))
}

/// Reassembles frames from a byte stream read in arbitrary pieces.
///
/// It holds at most one frame: a piece is consumed only up to the end of
/// the frame it completes, and a length prefix above [`FRAME_MAX`] is
/// rejected before any byte of the body is buffered. After an error the
/// reader stays failed (a stream cannot be resynchronised).
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Body length once the prefix is complete.
    want: Option<usize>,
    failed: Option<WireError>,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        FrameReader::default()
    }

    /// Bytes the reader has allocated (never above `HEADER + FRAME_MAX`).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether a frame is partly buffered (EOF now would tear it).
    pub fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Consumes bytes from the front of `input` until one frame is
    /// complete (returned with its version) or `input` is used up (`None`).
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<(u16, Frame)>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.feed_inner(input);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
        }
        r
    }

    fn feed_inner(&mut self, input: &mut &[u8]) -> Result<Option<(u16, Frame)>, WireError> {
        if self.want.is_none() {
            let need = HEADER - self.buf.len();
            let n = need.min(input.len());
            if self.buf.capacity() < HEADER {
                self.buf.reserve_exact(HEADER);
            }
            self.buf.extend_from_slice(&input[..n]);
            *input = &input[n..];
            if self.buf.len() < HEADER {
                return Ok(None);
            }
            let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            let body = len as usize;
            if !(4..=FRAME_MAX).contains(&body) {
                return Err(WireError::BadLength(len));
            }
            self.want = Some(body);
            self.buf.clear();
            self.buf.reserve_exact(body);
        }
        let body = self.want.unwrap_or(0);
        let n = (body - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..n]);
        *input = &input[n..];
        if self.buf.len() < body {
            return Ok(None);
        }
        self.want = None;
        let out = decode_body(&self.buf);
        self.buf.clear();
        out.map(Some)
    }
}
