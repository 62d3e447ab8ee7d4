//! What the two application-side machines share: session bookkeeping
//! (which connection from the coordinator is current, whether it was
//! acknowledged) and the filter that drops frames of another handoff.

use super::id::HandoffId;
use super::wire::{Frame, PROTO_MAX, PROTO_MIN};

/// A connection from the coordinator, numbered by the driver.
pub type SessionId = u64;

/// What the handoff tells the application (for its logs and metrics; the
/// simulator's checkers read it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// The process started (`true`) or stopped (`false`) accepting.
    Accepting(bool),
    /// A frame of another handoff arrived and was ignored.
    StaleFrame {
        /// Its kind.
        frame: &'static str,
        /// The handoff it carried.
        id: HandoffId,
        /// The handoff this process is in.
        current: HandoffId,
    },
    /// The seal completed after the coordinator had given the handoff up.
    SealCompletedAfterAbort(HandoffId),
    /// O serves again after the handoff was given up.
    Resumed(HandoffId),
    /// Committed: O retires, N is the incumbent now.
    Committed(HandoffId),
    /// N was told to give the handoff up.
    Aborted(HandoffId),
    /// N began accepting.
    Begun(HandoffId),
    /// N reported Ready.
    Ready {
        /// The handoff.
        id: HandoffId,
        /// What its health check said.
        healthz_ok: bool,
    },
}

/// The current session and its acknowledgement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attach {
    current: Option<SessionId>,
    acked: bool,
    fresh_ack: bool,
}

impl Attach {
    /// A new session becomes current; returns the one it replaces.
    pub fn open(&mut self, s: SessionId) -> Option<SessionId> {
        let old = self.current.replace(s);
        self.acked = false;
        self.fresh_ack = false;
        old
    }

    /// Session `s` ended; whether it was the current one.
    pub fn close(&mut self, s: SessionId) -> bool {
        if self.current == Some(s) {
            self.current = None;
            self.acked = false;
            return true;
        }
        false
    }

    /// The current session, once the coordinator acknowledged it.
    pub fn current(&self) -> Option<SessionId> {
        self.current.filter(|_| self.acked)
    }

    /// Whether a HelloAck just arrived (reported once).
    pub fn take_fresh_ack(&mut self) -> bool {
        std::mem::take(&mut self.fresh_ack)
    }

    /// Session bookkeeping for one frame: frames of an old session, frames
    /// before HelloAck and HelloAck itself give `Ok(None)`; a frame of
    /// another handoff than `current` gives `Err` (ignored and logged by
    /// the caller) unless `accept_stale` (the mutant
    /// `handoff-stale-frame-accepted`). PrepareHandoff (it names the
    /// handoff it starts) and Heartbeat (echoed with its own id) pass.
    pub fn filter(
        &mut self,
        s: SessionId,
        frame: Frame,
        current: HandoffId,
        accept_stale: bool,
    ) -> Result<Option<Frame>, AppEvent> {
        if self.current != Some(s) {
            return Ok(None);
        }
        if let Frame::HelloAck { version, id } = frame {
            if !(PROTO_MIN..=PROTO_MAX).contains(&version) {
                tracing::warn!(version, "HelloAck chose a version we do not speak; session ignored");
                return Ok(None);
            }
            if !id.is_none() && !current.is_none() && id != current {
                tracing::warn!(coordinator = %id, ours = %current, "coordinator is in another handoff than ours");
            }
            self.acked = true;
            self.fresh_ack = true;
            return Ok(None);
        }
        if !self.acked {
            tracing::warn!(frame = frame.name(), "frame before HelloAck; ignored");
            return Ok(None);
        }
        let exempt = matches!(frame, Frame::PrepareHandoff { .. } | Frame::Heartbeat { .. } | Frame::Hello(_));
        match frame.id() {
            Some(id) if id != current && !exempt && !accept_stale => {
                tracing::warn!(frame = frame.name(), frame_handoff = %id, handoff = %current, "frame of another handoff ignored");
                Err(AppEvent::StaleFrame { frame: frame.name(), id, current })
            }
            _ => Ok(Some(frame)),
        }
    }
}
