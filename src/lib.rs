//! warden: a process and task supervisor whose protocols are written once
//! against [`env::Env`] and run unchanged on the real OS and in the
//! deterministic simulator `warden-sim`.
//!
//! Core code (everything except [`env::real`] and the binary) follows the
//! rules in `DESIGN.md`: no ambient time, randomness, threads or I/O; no
//! statics with interior mutability; protocols as state machines.
#![deny(missing_docs, unreachable_pub)]

pub mod env;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod gate;
pub mod handoff;
pub mod service;
pub mod supervisor;
