//! The `warden` binary's edge: command line, logging, control socket,
//! admin HTTP, metrics, and the real-backend plumbing around the core
//! service manager (`warden::service`). Real-backend code: it may use
//! tokio and std directly.

pub(crate) mod admin;
pub(crate) mod args;
pub(crate) mod check_env;
pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod protocol;
pub(crate) mod run;
