//! The `warden` binary's edge: command line, logging, control socket,
//! admin HTTP, metrics, and the real-backend plumbing around the core
//! service manager (`warden::service`). Real-backend code: it may use
//! tokio and std directly.
// The binary's edge is exempt from the core bans (DESIGN.md rule 1), as
// src/env/real is: it is where the real OS is allowed to be reached.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::disallowed_macros)]

pub(crate) mod admin;
pub(crate) mod args;
pub(crate) mod check_env;
pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod coordinator;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod protocol;
pub(crate) mod registry;
pub(crate) mod run;
