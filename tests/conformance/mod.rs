//! Shared parts of the conformance suites.

pub mod programs;
pub mod world;
