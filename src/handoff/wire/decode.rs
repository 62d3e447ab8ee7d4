//! Decoding: one body at a time, every field checked against the bytes
//! left in its frame; [`FrameReader`] reassembles frames from a stream.

use super::{FRAME_MAX, Frame, HEADER, Hello, LIST_MAX, MAGIC, PROTO_MAX, PROTO_MIN, STRING_MAX, WireError, kind};
use crate::handoff::id::{HandoffId, PeerState, Role, Token};

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
