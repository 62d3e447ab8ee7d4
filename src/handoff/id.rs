//! Names in a handoff: the handoff's id, a generation's token, the roles
//! and the phases a peer reports.

use std::fmt;

/// One handoff attempt; every frame after Hello carries it, so frames of an
/// earlier attempt are recognised and ignored.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HandoffId(pub u64);

impl HandoffId {
    /// "No handoff": what a serving peer reports and a coordinator with no
    /// attempt running acknowledges.
    pub const NONE: HandoffId = HandoffId(0);

    /// Whether this is [`HandoffId::NONE`].
    pub fn is_none(self) -> bool {
        self == HandoffId::NONE
    }
}

impl fmt::Display for HandoffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for HandoffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandoffId({self})")
    }
}

/// A secret given to one generation (one spawned process) at spawn: with
/// its pid it proves, over the handoff socket, that a process found after
/// a coordinator restart is the one the journal names (a pid alone may
/// have been reused).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Token(pub u64);

impl Token {
    /// Parses the 16 hex digits [`Token`]'s `Display` writes.
    pub fn parse(s: &str) -> Option<Token> {
        (s.len() == 16).then(|| u64::from_str_radix(s, 16).ok()).flatten().map(Token)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

/// Which side of a handoff a service process is on.
#[derive(Debug, Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// O: the generation serving now.
    Incumbent,
    /// N: the generation taking over.
    Successor,
}

impl Role {
    /// The value of `WARDEN_HANDOFF_ROLE`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Incumbent => "incumbent",
            Role::Successor => "successor",
        }
    }

    /// The role named `s` (as [`Role::name`] writes it).
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Incumbent, Role::Successor].into_iter().find(|r| r.name() == s)
    }
}

/// Where a service process is in a handoff, as it reports itself in Hello
/// (a restarted coordinator decides from it).
#[derive(Debug, Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerState {
    /// O accepts connections; no handoff.
    Serving,
    /// O stopped accepting and waits for its open connections.
    Draining,
    /// O reported Drained.
    Drained,
    /// O runs its seal.
    Sealing,
    /// O sealed: it can serve again only after ResumeAfterAbort.
    Sealed,
    /// O runs its resume after an abort.
    Resuming,
    /// N holds the listeners but does not accept; it waits for Begin.
    Waiting,
    /// N accepts and runs its readiness check.
    Begun,
    /// N reported Ready with `healthz_ok = true`.
    Ready,
    /// N reported Ready with `healthz_ok = false`.
    ReadyUnhealthy,
    /// The process finishes its last connections and exits.
    Exiting,
}

impl PeerState {
    /// Every state, in wire order.
    pub const ALL: [PeerState; 11] = [
        PeerState::Serving,
        PeerState::Draining,
        PeerState::Drained,
        PeerState::Sealing,
        PeerState::Sealed,
        PeerState::Resuming,
        PeerState::Waiting,
        PeerState::Begun,
        PeerState::Ready,
        PeerState::ReadyUnhealthy,
        PeerState::Exiting,
    ];

    /// Its byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            PeerState::Serving => 1,
            PeerState::Draining => 2,
            PeerState::Drained => 3,
            PeerState::Sealing => 4,
            PeerState::Sealed => 5,
            PeerState::Resuming => 6,
            PeerState::Waiting => 7,
            PeerState::Begun => 8,
            PeerState::Ready => 9,
            PeerState::ReadyUnhealthy => 10,
            PeerState::Exiting => 11,
        }
    }

    /// The state with wire byte `c`.
    pub fn from_code(c: u8) -> Option<PeerState> {
        PeerState::ALL.into_iter().find(|s| s.code() == c)
    }
}
