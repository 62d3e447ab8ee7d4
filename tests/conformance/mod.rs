//! Shared parts of the conformance suites.

pub mod programs;
pub mod service;
pub mod world;
