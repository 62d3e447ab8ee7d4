//! The run hash: a fast 64-bit streaming hash of every event of a run.
//!
//! Fields are fed in as words and bytes without allocating; `fmt::Write`
//! lets `Debug` values stream straight into it.

use std::fmt;

/// FxHash-style mixing with a final avalanche: not cryptographic, but
/// stable across builds, platforms and Rust versions (std's hashers are not
/// guaranteed to be).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl RunHasher {
    /// The hash of nothing.
    pub const EMPTY: RunHasher = RunHasher(0xcbf2_9ce4_8422_2325);
}

impl Default for RunHasher {
    fn default() -> Self {
        RunHasher::EMPTY
    }
}

impl RunHasher {
    /// Mixes one word.
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }

    /// Mixes bytes, length-prefixed so that ("ab","c") and ("a","bc") differ.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w));
        }
    }

    /// The hash so far, avalanched (splitmix64 finaliser).
    pub fn finish(&self) -> u64 {
        warden::env::mix64(self.0)
    }
}

/// Streams formatted text into a hasher: `write!(HashWriter(&mut h), ..)`.
/// Splits of the text across `write_str` calls do not matter for equality
/// because formatting the same value always splits it the same way.
pub struct HashWriter<'a>(pub &'a mut RunHasher);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn distinguishes_order_and_boundaries() {
        let h = |parts: &[&str]| {
            let mut x = RunHasher::default();
            for p in parts {
                x.bytes(p.as_bytes());
            }
            x.finish()
        };
        assert_ne!(h(&["ab", "c"]), h(&["a", "bc"]));
        assert_ne!(h(&["a", "b"]), h(&["b", "a"]));
        let mut w = RunHasher::default();
        write!(HashWriter(&mut w), "{:?}", (1, "x")).unwrap();
        let mut w2 = RunHasher::default();
        write!(HashWriter(&mut w2), "{:?}", (1, "x")).unwrap();
        assert_eq!(w, w2);
    }
}
