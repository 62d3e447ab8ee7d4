//! The watchdog: a thread that catches a single poll that never returns (a
//! loop with no `.await`), which no in-run check can see. It prints the
//! contract's last line for the stuck run's seed and exits the process
//! with the livelock code.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use crate::check::FailureClass;

/// One running simulation, as the watchdog sees it.
pub struct WatchSlot {
    seed: u64,
    replay_hint: String,
    polls: AtomicU64,
    in_poll: AtomicBool,
    hash: AtomicU64,
}

impl WatchSlot {
    /// Poll number `n` of the run starts (plain stores: the watchdog only
    /// needs to see the count move).
    #[inline]
    pub fn enter_poll(&self, n: u64) {
        self.polls.store(n, Ordering::Relaxed);
        self.in_poll.store(true, Ordering::Relaxed);
    }

    /// A poll returned.
    #[inline]
    pub fn exit_poll(&self) {
        self.in_poll.store(false, Ordering::Relaxed);
    }

    /// The run hash as of a recent poll, for the report.
    pub fn set_hash(&self, hash: u64) {
        self.hash.store(hash, Ordering::Relaxed);
    }
}

static SLOTS: Mutex<Vec<Arc<WatchSlot>>> = Mutex::new(Vec::new());
static LIMIT_SECS: AtomicU64 = AtomicU64::new(30);

/// Sets how long one poll may run before the process is failed.
pub fn set_limit(secs: u64) {
    LIMIT_SECS.store(secs.max(1), Ordering::Relaxed);
}

/// Watches a run until the returned guard is dropped.
pub fn watch(seed: u64, replay_hint: String) -> WatchGuard {
    start();
    let slot = Arc::new(WatchSlot {
        seed,
        replay_hint,
        polls: AtomicU64::new(0),
        in_poll: AtomicBool::new(false),
        hash: AtomicU64::new(0),
    });
    SLOTS.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
    WatchGuard(slot)
}

/// Unregisters its run on drop.
pub struct WatchGuard(Arc<WatchSlot>);

impl WatchGuard {
    /// The slot the executor updates.
    pub fn slot(&self) -> Arc<WatchSlot> {
        self.0.clone()
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        SLOTS.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

fn start() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[allow(clippy::disallowed_types)] // the watchdog is an OS thread by design
        let spawned = std::thread::Builder::new().name("warden-sim-watchdog".into()).spawn(run);
        if let Err(e) = spawned {
            eprintln!("warden-sim: cannot start the watchdog thread: {e}");
        }
    });
}

fn run() {
    let tick = Duration::from_millis(250);
    // (slot, polls seen, ticks stuck)
    let mut seen: Vec<(Arc<WatchSlot>, u64, u64)> = Vec::new();
    loop {
        #[allow(clippy::disallowed_methods)] // wall-clock polling is the point
        std::thread::sleep(tick);
        let slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.retain(|(s, _, _)| slots.iter().any(|x| Arc::ptr_eq(x, s)));
        let limit_ticks = LIMIT_SECS.load(Ordering::Relaxed) * 4;
        for slot in slots {
            let polls = slot.polls.load(Ordering::Relaxed);
            let in_poll = slot.in_poll.load(Ordering::Relaxed);
            match seen.iter_mut().find(|(s, _, _)| Arc::ptr_eq(s, &slot)) {
                Some(entry) => {
                    if in_poll && entry.1 == polls {
                        entry.2 += 1;
                        if entry.2 >= limit_ticks {
                            report(&slot);
                        }
                    } else {
                        entry.1 = polls;
                        entry.2 = 0;
                    }
                }
                None => seen.push((slot.clone(), polls, 0)),
            }
        }
    }
}

fn report(slot: &WatchSlot) -> ! {
    let secs = LIMIT_SECS.load(Ordering::Relaxed);
    let class = FailureClass::Livelock;
    println!(
        "livelock failure: invariant no-stuck-poll failed: a single poll ran for more than {secs} s of wall time (a loop with no .await)"
    );
    println!("replay: {}", slot.replay_hint);
    // The hash as of the last checkpoint before the stuck poll.
    println!("seed={} hash={:016x} result=fail", slot.seed, slot.hash.load(Ordering::Relaxed));
    #[allow(clippy::disallowed_methods)] // the stuck poll cannot be unwound: end the process
    std::process::exit(class.exit_code());
}
