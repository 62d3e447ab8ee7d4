//! S's view of one generation: its journal record, its session and how far
//! its identity was proven. The Hello check lives here: role, token, pid
//! and version, then (for a process S did not spawn) a handle taken on the
//! pid, then HelloAck and one frame back. A process that answers after S
//! took the handle was alive all along, so the handle names it and not a
//! process that reused its pid.

use crate::env::Pid;
use crate::handoff::id::{HandoffId, PeerState, Role, Token};
use crate::handoff::journal::GenRecord;
use crate::handoff::session::SessionId;
use crate::handoff::wire::{Frame, Hello, negotiate};

/// How far a generation is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Not yet reached (or being reached).
    Unknown,
    /// Hello, handle and the round trip are done: it is who the journal says.
    Attached,
    /// It exited, or nothing answers on its handoff socket.
    Gone,
}

/// One generation as S sees it.
#[derive(Debug, Clone)]
pub(super) struct Gen {
    pub(super) rec: GenRecord,
    pub(super) role: Role,
    /// S holds a handle (it spawned it, or adopted it after Hello).
    pub(super) handle: bool,
    pub(super) session: Option<SessionId>,
    pub(super) hello: Option<Hello>,
    /// HelloAck sent; the next frame completes the round trip.
    pub(super) acked: bool,
    pub(super) status: Status,
}

/// What a frame on a generation's session means for S's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// Nothing to act on.
    Nothing,
    /// Send this HelloAck now (S holds a handle).
    Ack(Frame),
    /// Take a handle on this pid, then ack.
    Adopt(Pid),
    /// Identity proven.
    Attached,
    /// The Hello did not match: the session is dropped.
    Refused(String),
    /// A protocol frame from an attached generation.
    Frame(Frame),
}

impl Gen {
    pub(super) fn new(rec: GenRecord, role: Role, handle: bool) -> Gen {
        Gen { rec, role, handle, session: None, hello: None, acked: false, status: Status::Unknown }
    }

    pub(super) fn token(&self) -> Token {
        self.rec.token
    }

    pub(super) fn attached(&self) -> bool {
        self.status == Status::Attached
    }

    pub(super) fn gone(&self) -> bool {
        self.status == Status::Gone
    }

    /// The state its last Hello reported.
    pub(super) fn state(&self) -> Option<PeerState> {
        self.hello.as_ref().map(|h| h.state)
    }

    /// A frame on session `s`; `current` is the HelloAck's handoff id.
    /// `strict_role`: a generation S spawned must say the role it was
    /// spawned for (after a restart a committed N says Incumbent).
    pub(super) fn on_frame(&mut self, s: SessionId, frame: Frame, current: HandoffId, strict_role: bool) -> Seen {
        if self.session != Some(s) {
            return Seen::Nothing;
        }
        match (self.status, frame) {
            (Status::Unknown, Frame::Hello(h)) if self.hello.is_none() => {
                let version = match negotiate(h.proto_min, h.proto_max) {
                    Ok(v) => v,
                    Err(e) => return Seen::Refused(e.to_string()),
                };
                if h.token != self.rec.token {
                    return Seen::Refused(format!("token {} is not {}", h.token, self.rec.token));
                }
                if strict_role && h.role != self.role {
                    return Seen::Refused(format!("role {:?}, expected {:?}", h.role, self.role));
                }
                if let Some(pid) = self.rec.pid
                    && pid != h.pid
                {
                    return Seen::Refused(format!("pid {} announced, {pid} expected", h.pid));
                }
                let pid = h.pid;
                self.rec.pid = Some(pid);
                self.hello = Some(h);
                if self.handle {
                    self.acked = true;
                    Seen::Ack(Frame::HelloAck { id: current, version })
                } else {
                    Seen::Adopt(pid)
                }
            }
            (Status::Unknown, _) if self.acked => {
                self.status = Status::Attached;
                Seen::Attached
            }
            (Status::Unknown, f) => Seen::Refused(format!("{} before the Hello round trip", f.name())),
            (Status::Attached, f) => Seen::Frame(f),
            (Status::Gone, _) => Seen::Nothing,
        }
    }

    /// After Adopt succeeded: the HelloAck to send.
    pub(super) fn adopted(&mut self, current: HandoffId) -> Option<Frame> {
        let h = self.hello.as_ref()?;
        let version = negotiate(h.proto_min, h.proto_max).ok()?;
        self.handle = true;
        self.acked = true;
        Some(Frame::HelloAck { id: current, version })
    }

    /// Its session ended or could not be opened; whether it was current.
    pub(super) fn session_down(&mut self, s: Option<SessionId>) -> bool {
        if s.is_some() && self.session != s {
            return false;
        }
        self.session = None;
        self.acked = false;
        if self.status != Status::Attached {
            self.status = Status::Gone;
        }
        true
    }

    /// A new session for a reconnect: the Hello round trip starts over.
    pub(super) fn reconnecting(&mut self) {
        self.session = None;
        self.hello = None;
        self.acked = false;
        self.status = Status::Unknown;
    }
}
