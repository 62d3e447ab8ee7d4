//! The re-register gate (seed 001): a stampede of "registration gone"
//! reports triggers exactly one re-registration per deletion.
//!
//! A registry reports registrations gone through many paths at once (HTTP
//! heartbeat replies, websocket acks, the sync loop). [`Gate`] is the pure
//! state machine that decides which report registers; [`Recovery`] is the
//! driver (the seed's `handleRuntimeGone`) that executes it through
//! [`Env`](crate::env::Env) and a [`Registry`].
//!
//! # Invariants
//!
//! - **One in flight per key**: a key's slot has at most one holder; claims
//!   behind it coalesce. The slot is owned (a completion with another
//!   ticket is `Stale`) and held until its holder completes.
//! - **One registration per deletion**: a claim is granted only for an
//!   event the last successful registration does not cover.
//! - **Straggler suppression**: an event at or below the last success's
//!   revision bails ([`Claim::Covered`]).
//! - **Failure moves no watermark**: a failed register only bars claims
//!   for the failure backoff.
//! - **Bounded rate, no bounded count**: after a failure no claim is
//!   granted for the failure backoff, which doubles per consecutive
//!   failure up to [`GateConfig::failure_backoff_max`]; the gate always
//!   answers a failure with [`Completion::RetryAt`], so a key is retried
//!   while the daemon lives. A partial deletion has no other way back: its
//!   heartbeat is pruned and the sync loop only sees keys whose set has
//!   drained.
//! - **Per-key isolation**: slots, watermarks and backoffs are per key.
//! - **No lost wakeup**: a claim coalesced behind a holder marks a
//!   follow-up; at completion exactly one follow-up runs if the marked
//!   event is newer than the registration completed.
//! - **Cancellation independence**: recovery runs under the driver's root
//!   token, not the reporting caller's (whose heartbeat is torn down by
//!   the very pruning), and stops at shutdown.
//! - The runtime set is replaced by the register response, never appended
//!   to; pruning touches gone runtimes only; a key's state object is
//!   updated in place.
//!
//! # Where this departs from the seed
//!
//! - **Watermarks by revision.** The seed's straggler rule compares the
//!   caller's entry time with the last success's completion time. That
//!   hides a deletion landing during a slow registration (after the
//!   registry applied it, before the daemon recorded it): its report
//!   entered before the completion stamp. A start-time stamp would instead
//!   re-admit stragglers. Here a gone report carries the revision at which
//!   the registration was deleted and a successful register the revision
//!   it was applied at; an event is covered iff its revision is at or
//!   below the last success's. Registries without revisions (or events
//!   without one, such as the sync loop's) keep the seed's timestamp rule
//!   ([`Mark::covered_by`]).
//! - **Follow-up mark.** The seed drops a coalesced claim; here it is
//!   remembered and run once after the holder, if still uncovered.
//! - **Slot held until completion.** The seed's slot expired after the
//!   coalesce window even with the holder still running; here it is held
//!   until the holder completes, and the register deadline (25 s) is
//!   required to be shorter than the window (30 s), so a well-behaved
//!   holder never outlives it.
//! - **A claim refused during a failure backoff** is folded into the
//!   holder's retry instead of being forgotten.
//! - **Retries never stop.** The seed leaves a failed key to later events;
//!   here the gate keeps retrying it at a capped backoff.
//! - **Conditional registration.** The seed's register is unconditional
//!   and trusts its reply: a timeout after the server applied it is a
//!   failure, and the retry registers again. Here the register is
//!   conditional on the revision the gate saw. Without revisions (the
//!   timestamp mode) only a key's first registration can be conditional
//!   ("if never registered"); after it a lost reply can still double a
//!   registration, so that mode promises one registration per deletion
//!   only over a registry whose replies are not lost after it applied.
//!
//! # Mutants
//!
//! `gate-no-watermark`, `gate-stamp-on-failure`,
//! `gate-recovery-uses-caller-cancel`, `gate-slot-kept-on-success` and
//! `gate-append-runtimes` re-introduce bugs the seed fixed or names.
//! `gate-unconditional-register` drops the register's condition (what
//! every real registry punishes: a retry after a lost reply registers
//! twice). `gate-no-follow-up` and `gate-gives-up` are warden's own regressions:
//! the seed's gate has no follow-up mark (it drops a coalesced claim) and
//! leaves a failed key to later events, so losing either is a bug only
//! against warden's stronger guarantees.
//! - **No resurrection.** A runtime pruned while a register was in flight
//!   is kept out of that register's response (which predates its
//!   deletion). The seed would re-add it and rediscover the deletion by
//!   heartbeat; here the follow-up owns that deletion, with no extra round.

mod config;
mod driver;
mod heartbeat;
mod local;
mod machine;
mod mark;
mod registry;

pub use config::{DeadlineNotShorter, GIVE_UP_AFTER, GateBugs, GateConfig};
pub use driver::{Recovery, RecoveryConfig};
pub use local::{KeyHandle, KeyState, LocalState};
pub use machine::{Claim, Completion, Gate, GateStats, Outcome, Ticket};
pub use mark::Mark;
pub use registry::{AckStatus, Condition, HeartbeatAck, Registered, Registry, RegistryError, Runtime};
