//! Transition tests of the three machines, driven by hand.

mod coordinator;
mod incumbent;
mod successor;
mod wire;

use std::time::Duration;

use crate::env::Instant;

pub(super) fn at(ms: u64) -> Instant {
    Instant::BOOT + Duration::from_millis(ms)
}
