//! Marks: what an event or a registration is ordered by, so the gate can
//! tell a straggler from a newer deletion.

use crate::env::Instant;

/// When an event happened, or when a registration took effect.
///
/// A registry with revisions fills in `revision`; the gate then orders by
/// it. Without one (or when either side lacks it) the gate falls back to
/// the seed's timestamp rule on `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// For an event: the registry revision at which the registration was
    /// deleted (its tombstone). For a registration: the revision it was
    /// applied at.
    pub revision: Option<u64>,
    /// For an event: when it entered recovery. For a registration: when
    /// its success was recorded (the seed's `lastCompletedAt`).
    pub at: Instant,
}

impl Mark {
    /// An event seen at registry revision `revision`, entering at `at`.
    pub fn revision(revision: u64, at: Instant) -> Self {
        Mark { revision: Some(revision), at }
    }

    /// An event or registration known only by its time (the seed's rule).
    pub fn time(at: Instant) -> Self {
        Mark { revision: None, at }
    }

    /// Whether the registration `success` already covers this event:
    /// revision at or below the success's, or (without revisions on both
    /// sides) entered at or before the success was recorded.
    pub fn covered_by(&self, success: &Mark) -> bool {
        match (self.revision, success.revision) {
            (Some(event), Some(applied)) => event <= applied,
            _ => self.at <= success.at,
        }
    }

    /// Two pending events merged into one follow-up: the highest revision
    /// either carries and the later time. A time-only mark (the sync loop's)
    /// merged with a revision mark keeps the revision; the sync loop fires
    /// again on its next tick while its key is still empty, so nothing it
    /// reported is lost.
    pub fn merge(self, other: Mark) -> Mark {
        let revision = match (self.revision, other.revision) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Mark { revision, at: self.at.max(other.at) }
    }
}
