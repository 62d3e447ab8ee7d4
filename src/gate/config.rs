//! The gate's timings and the historical bugs it can be switched into.

use std::time::Duration;

/// Timings of the gate (the seed's constants, and the retry policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// The seed's 30 s slot window. warden holds a key's slot while its
    /// register is in flight and frees it when the register completes
    /// (claims arriving meanwhile coalesce into one follow-up), so this
    /// only bounds the register deadline (which must be shorter) and is how
    /// long the historical bug `gate-slot-kept-on-success` keeps the slot
    /// after a success.
    pub coalesce_window: Duration,
    /// How long no claim is granted after a first failed register (the
    /// seed's 60 s); each further consecutive failure doubles it.
    pub failure_backoff: Duration,
    /// The cap of the failure backoff: however long the registry stays
    /// unreachable, a failing key is retried once per this interval while
    /// the daemon lives (bounded rate, no bounded count: a deletion whose
    /// heartbeat was already pruned has no other way back). By default the
    /// seed's 60 s too: the backoff does not grow unless asked to.
    pub failure_backoff_max: Duration,
    /// Deadline of one register attempt (25 s), shorter than the window so
    /// a holder always completes before the seed's slot would have expired.
    pub register_deadline: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            coalesce_window: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(60),
            failure_backoff_max: Duration::from_secs(60),
            register_deadline: Duration::from_secs(25),
        }
    }
}

impl GateConfig {
    /// How long claims are barred after `failures` consecutive failures
    /// (at least one): the failure backoff, doubled per further failure,
    /// capped at [`GateConfig::failure_backoff_max`].
    pub fn failure_backoff_after(&self, failures: u32) -> Duration {
        let cap = self.failure_backoff_max.max(self.failure_backoff);
        let doublings = failures.saturating_sub(1).min(31);
        self.failure_backoff.saturating_mul(1u32 << doublings).min(cap)
    }
}

/// A configuration that would let a slow register outlive the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("register deadline {deadline:?} must be shorter than the coalesce window {window:?}")]
pub struct DeadlineNotShorter {
    /// The register deadline asked for.
    pub deadline: Duration,
    /// The coalesce window asked for.
    pub window: Duration,
}

/// Historical bugs the driver switches on from `env.mutant(..)`; all off
/// in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateBugs {
    /// `gate-no-watermark`: no straggler check at all.
    pub no_watermark: bool,
    /// `gate-stamp-on-failure`: a failed register moves the watermark.
    pub stamp_on_failure: bool,
    /// `gate-slot-kept-on-success`: success leaves the slot until the end
    /// of the window, suppressing a distinct later deletion.
    pub slot_kept_on_success: bool,
    /// `gate-no-follow-up`: a claim coalesced behind a holder is dropped.
    /// Not a bug of the seed (whose gate has no follow-up at all): warden's
    /// own regression, the loss of the follow-up mark that warden added.
    pub no_follow_up: bool,
    /// `gate-gives-up`: after [`GIVE_UP_AFTER`] consecutive failures the
    /// key is no longer retried (the old bounded retry count).
    pub gives_up: bool,
    /// `gate-unconditional-register`: registers carry no condition, so a
    /// retry after a reply lost past the apply registers twice.
    pub unconditional_register: bool,
}

/// Consecutive failures after which `gate-gives-up` stops retrying (the
/// count the driver once had).
pub const GIVE_UP_AFTER: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backoff_doubles_to_its_cap() {
        let c = GateConfig::default();
        assert_eq!(c.failure_backoff_after(5), Duration::from_secs(60), "the seed's fixed backoff by default");
        let c = GateConfig { failure_backoff_max: Duration::from_secs(300), ..c };
        let secs: Vec<u64> = (1..=7).map(|n| c.failure_backoff_after(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 300, 300, 300, 300]);
        assert_eq!(c.failure_backoff_after(u32::MAX), c.failure_backoff_max);
        let flat = GateConfig { failure_backoff_max: Duration::from_secs(1), ..c };
        assert_eq!(flat.failure_backoff_after(3), c.failure_backoff, "a cap below the first backoff is the first");
    }
}
