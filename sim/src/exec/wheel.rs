//! A timing wheel of packed timer keys, suited to the simulator's workload:
//! many short timers (network delays of microseconds to milliseconds,
//! sleeps of up to a few hundred milliseconds) and a few long ones.
//!
//! Keys are `u128`s ordered by (deadline, sequence), so equal deadlines
//! pop in registration order. A key whose deadline falls within
//! [`SPAN_NS`] of the cursor goes into the bucket of its deadline (a push
//! onto a vector); later ones wait in a binary heap and move into the
//! wheel as the cursor approaches. Only the bucket under the cursor is
//! kept sorted, so a pop is a `Vec::pop`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// log2 of a bucket's width in nanoseconds (about 1 ms).
const BUCKET_BITS: u32 = 20;
const BUCKETS: usize = 256;
/// How far ahead of the cursor the wheel holds keys (about 268 ms).
#[cfg(test)]
const SPAN_NS: u64 = (BUCKETS as u64) << BUCKET_BITS;

#[inline]
fn bucket_of(key: u128) -> u64 {
    ((key >> 64) as u64) >> BUCKET_BITS
}

/// Timer keys in deadline order.
pub(crate) struct Wheel {
    /// The absolute bucket number under the cursor.
    cursor: u64,
    buckets: Vec<Vec<u128>>,
    occupied: [u64; BUCKETS / 64],
    /// The bucket under the cursor is sorted (descending: the least last).
    sorted: bool,
    far: BinaryHeap<Reverse<u128>>,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel {
            cursor: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; BUCKETS / 64],
            sorted: false,
            far: BinaryHeap::new(),
        }
    }
}

impl Wheel {
    /// Adds a key.
    #[inline]
    pub(crate) fn push(&mut self, key: u128) {
        // A key before the cursor (a timer due now, after the cursor moved
        // ahead to peek) joins the cursor's bucket: it is searched first.
        let b = bucket_of(key).max(self.cursor);
        if b - self.cursor >= BUCKETS as u64 {
            self.far.push(Reverse(key));
            return;
        }
        let i = (b % BUCKETS as u64) as usize;
        let v = &mut self.buckets[i];
        if b == self.cursor && self.sorted {
            let at = v.partition_point(|k| *k > key);
            v.insert(at, key);
        } else {
            v.push(key);
        }
        self.occupied[i / 64] |= 1 << (i % 64);
    }

    /// The least key, without removing it.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u128> {
        if !self.settle() {
            return None;
        }
        self.buckets[(self.cursor % BUCKETS as u64) as usize].last().copied()
    }

    /// Removes the least key.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<u128> {
        if !self.settle() {
            return None;
        }
        let i = (self.cursor % BUCKETS as u64) as usize;
        let key = self.buckets[i].pop();
        if self.buckets[i].is_empty() {
            self.occupied[i / 64] &= !(1 << (i % 64));
        }
        key
    }

    /// Moves the cursor to the first non-empty bucket and sorts it;
    /// whether there is any key.
    #[inline]
    fn settle(&mut self) -> bool {
        let i = (self.cursor % BUCKETS as u64) as usize;
        if self.occupied[i / 64] & (1 << (i % 64)) != 0 {
            if !self.sorted {
                self.buckets[i].sort_unstable_by(|a, b| b.cmp(a));
                self.sorted = true;
            }
            return true;
        }
        let next = match self.next_occupied(i) {
            Some(d) => self.cursor + d,
            None => match self.far.peek() {
                Some(Reverse(k)) => bucket_of(*k),
                None => return false,
            },
        };
        self.advance(next);
        let j = (self.cursor % BUCKETS as u64) as usize;
        self.buckets[j].sort_unstable_by(|a, b| b.cmp(a));
        self.sorted = true;
        true
    }

    /// Distance from bucket `i` (empty) to the next occupied one, if any.
    fn next_occupied(&self, i: usize) -> Option<u64> {
        const WORDS: usize = BUCKETS / 64;
        let (w0, b0) = (i / 64, i % 64);
        let after = if b0 == 63 { 0 } else { self.occupied[w0] & (!0u64 << (b0 + 1)) };
        if after != 0 {
            return Some((w0 * 64 + after.trailing_zeros() as usize - i) as u64);
        }
        // The other words, then w0 again (only bits before b0 can be set).
        for k in 1..=WORDS {
            let w = (w0 + k) % WORDS;
            let bits = self.occupied[w];
            if bits != 0 {
                let j = w * 64 + bits.trailing_zeros() as usize;
                return Some(((j + BUCKETS - i) % BUCKETS) as u64);
            }
        }
        None
    }

    /// Moves the cursor to absolute bucket `to` and pulls far keys that
    /// now fall within the span into the wheel.
    fn advance(&mut self, to: u64) {
        self.cursor = to;
        self.sorted = false;
        while let Some(Reverse(k)) = self.far.peek().copied() {
            if bucket_of(k) - self.cursor >= BUCKETS as u64 {
                break;
            }
            self.far.pop();
            self.push(k);
        }
    }

    /// Every key left (the order is not meaningful).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum::<usize>() + self.far.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(deadline: u64, seq: u64) -> u128 {
        (u128::from(deadline) << 64) | u128::from(seq)
    }

    proptest! {
        /// Whatever the deadlines and however pushes and pops interleave
        /// (never pushing before the last popped deadline, as time only
        /// moves forward), keys come out in order.
        #[test]
        fn pops_in_key_order(
            ops in proptest::collection::vec((0u64..3 * SPAN_NS, any::<bool>()), 1..200),
        ) {
            let mut w = Wheel::default();
            let mut model = std::collections::BTreeSet::new();
            let mut now = 0u64;
            for (seq, (delay, pop)) in ops.iter().enumerate() {
                if *pop {
                    let want = model.iter().next().copied();
                    prop_assert_eq!(w.peek(), want);
                    let got = w.pop();
                    prop_assert_eq!(got, want);
                    if let Some(k) = got {
                        model.remove(&k);
                        now = now.max((k >> 64) as u64);
                    }
                } else {
                    let k = key(now + delay % (SPAN_NS * 2), seq as u64);
                    w.push(k);
                    model.insert(k);
                }
            }
            let rest: Vec<u128> = std::iter::from_fn(|| w.pop()).collect();
            prop_assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(w.len(), 0);
        }
    }

    #[test]
    fn a_key_before_the_cursor_comes_first() {
        let mut w = Wheel::default();
        w.push(key(5 * SPAN_NS, 1));
        assert_eq!(w.peek(), Some(key(5 * SPAN_NS, 1)), "the cursor moved ahead to peek");
        w.push(key(10, 2));
        assert_eq!(w.pop(), Some(key(10, 2)));
        assert_eq!(w.pop(), Some(key(5 * SPAN_NS, 1)));
        assert_eq!(w.pop(), None);
    }
}
