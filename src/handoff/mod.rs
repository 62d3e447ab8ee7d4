//! Zero-downtime handoff (seed 004): a running service, the incumbent O, is
//! replaced by a successor N under the coordinator S, with no refused and
//! no dropped connection, through a journaled, versioned protocol that
//! survives a crash of any of the three at any step.
//!
//! # Parts
//!
//! - [`wire`]: length-prefixed, versioned frames; a decoder that never
//!   panics and never holds more than one frame.
//! - [`coordinator`]: S as a state machine, its async driver, the fd store
//!   and the operator's admin socket.
//! - [`incumbent`], [`successor`]: O and N as state machines; [`app`] runs
//!   them inside any Rust service.
//! - [`journal`]: S's one-record journal, replaced atomically per phase.
//!
//! # Call order of each machine
//!
//! All three follow quinn-proto's shape: feed inputs with
//! `handle_event(now, ..)`, drain `poll_action()` until `None`, sleep until
//! `poll_timeout()` and call `handle_timeout(now)`. S additionally answers
//! every `WriteJournal` with `JournalWritten` before anything else (it holds
//! other events until then). O starts Serving (it asks to start accepting);
//! N starts Waiting (it holds the listeners but does not accept) and, once
//! committed, hands its session to a fresh O machine.
//!
//! # Invariants
//!
//! 1. **Listeners never close.** S holds a copy of every listener for its
//!    whole life (refilled after a restart from the copies a generation
//!    attaches to its Hello); O stops *accepting* but keeps its fds; N gets
//!    copies at spawn. A client connecting at any instant waits in the
//!    backlog until someone accepts it.
//! 2. **At most one generation accepts at a time.** N accepts only after
//!    O's SealComplete; after an abort O resumes only once N has exited
//!    (or was killed); a committed O never accepts again.
//! 3. **Write-ahead journal.** Every decision (lease, Prepared, Sealed,
//!    Committing, Aborting, Idle) is durable before any peer hears of it;
//!    a restarted S converges from the record (see `coordinator/recover.rs`)
//!    so that exactly one generation serves.
//! 4. **Identity is proven, never assumed from a pid.** A generation found
//!    after a restart proves its token and pid over its handoff socket; S
//!    then takes a pidfd-style handle and completes one round trip, so the
//!    handle cannot name a process that reused the pid.
//! 5. **One handoff at a time, across restarts.** The journal is the
//!    lease: while it holds an unfinished handoff, a request gets
//!    [`coordinator::HandoffError::InProgress`] naming its id and phase.
//! 6. **Frames of another handoff are ignored and logged**, never acted on.
//! 7. **Every wait has a deadline**: hello, drain, seal (absolute deadline
//!    and liveness), ready, N's exit after Abort, a retired O's exit after
//!    Commit; on the application side, N's wait for Begin and O's wait for
//!    a coordinator that went away.
//!
//! # Where warden departs from the seed
//!
//! - A seal timeout or SealFailed sends ResumeAfterAbort to O (the seed
//!   returned without it, leaving O sealed and nobody serving).
//! - Ready with `healthz_ok = false` is never committed (the seed committed).
//! - O dying during the handoff is watched: before its seal the handoff
//!   aborts and O's program is started again; after it, N may still commit.
//! - The journal is written before each step (the seed wrote Committed
//!   after sending Commit) and read back after a crash and acted on (the
//!   seed's `resume_from_journal` only deleted it).
//! - The one-handoff rule is the journal, not an in-process mutex, so it
//!   holds across restarts; the refusal names the handoff and its phase.
//! - O's session is kept between handoffs; each handoff starts with a
//!   Heartbeat probe of O (the seed's per-handoff O Hello) before N is
//!   spawned. Each generation owns a handoff socket that S creates and
//!   passes at spawn (the seed passed N a socketpair and connected to O's
//!   path), so S can reach every generation after its own restart.
//! - After an abort, O resumes only after N exited, so two generations
//!   never accept at once.
//! - Crash points are named `handoff.<role>.<step>` and declared in
//!   `env::crash::HANDOFF`, for all three roles and S's recovery.

pub mod app;
pub mod coordinator;
pub mod id;
pub mod incumbent;
pub mod journal;
pub mod session;
pub mod successor;
pub mod wire;

#[cfg(test)]
mod tests;
