//! Crash points of the real backend: with the cargo feature
//! `crash-points`, `WARDEN_CRASH_AT=name[:k]` makes the process SIGKILL
//! itself at the k-th hit of that point (DESIGN.md "Real backend");
//! without it, a crash point is nothing.
// The real backend is exempt from the core bans (DESIGN.md rule 1).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io;

/// Checks `WARDEN_CRASH_AT` (an invalid value is an `InvalidInput` error
/// naming it); always `Ok` without the `crash-points` feature.
pub fn check_crash_target() -> io::Result<()> {
    #[cfg(feature = "crash-points")]
    if let Err(msg) = imp::target() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg.clone()));
    }
    Ok(())
}

/// Counts a hit of `name` and SIGKILLs this process at the target hit.
#[inline]
pub(super) fn hit(name: &'static str) {
    #[cfg(feature = "crash-points")]
    imp::hit(name);
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

#[cfg(feature = "crash-points")]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::env::crash::parse_target;

    /// `WARDEN_CRASH_AT`, parsed once. `static`s because the variable and
    /// the hit count belong to the OS process, which is what the crash
    /// kills (exempt from DESIGN.md rule 2).
    static TARGET: OnceLock<Result<Option<(String, u64)>, String>> = OnceLock::new();
    /// Hits of the target point so far (other points need no count).
    static HITS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn target() -> &'static Result<Option<(String, u64)>, String> {
        TARGET.get_or_init(|| match std::env::var("WARDEN_CRASH_AT") {
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(v)) => Err(format!("WARDEN_CRASH_AT={v:?} is not UTF-8")),
            Ok(v) if v.is_empty() => Ok(None),
            Ok(v) => parse_target(&v).map(Some),
        })
    }

    pub(super) fn hit(name: &'static str) {
        match target() {
            Ok(Some((point, k))) if point == name => {
                if HITS.fetch_add(1, Ordering::SeqCst) + 1 == *k {
                    tracing::warn!(point = name, hit = *k, "crash point: SIGKILL self");
                    // SAFETY: kill(2) on our own pid. SIGKILL is delivered
                    // before the call returns to user space.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                    // Unreachable unless the kill failed; die anyway.
                    std::process::abort();
                }
            }
            Ok(_) => {}
            // Only reached when no RealEnv::block_on checked it first: a
            // panic would be caught by the task wrapper and the crash test
            // would silently not crash.
            Err(msg) => {
                eprintln!("warden: {msg}");
                std::process::exit(2);
            }
        }
    }
}
