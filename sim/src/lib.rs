//! warden-sim: a seeded, single-threaded, deterministic simulator that runs
//! warden's protocol code unchanged, with virtual time, scheduling chosen
//! by a pluggable scheduler, injected faults and checked invariants.
//!
//! One seed reproduces one run bit for bit: every decision is drawn from a
//! per-concern stream derived from the seed, can be recorded and replayed,
//! and the run hash covers every event. See DESIGN.md, "The simulator".
#![deny(missing_docs, unreachable_pub)]

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod determinism;
pub mod env;
pub mod exec;
pub mod explore;
pub mod faults;
pub mod input;
pub mod models;
mod panic_hook;
pub mod plan;
pub mod record;
pub mod replay;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod sched;
pub mod shrink;
mod simulation;
mod switches;
pub mod testing;
pub mod trace;
pub mod watchdog;
pub mod world;

pub use check::{Checks, Failure, FailureClass};
pub use env::SimEnv;
pub use run::{RunOptions, RunReport};
pub use scenario::Scenario;
