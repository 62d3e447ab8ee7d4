//! The kinds of events the simulator itself hashes, one tag each.

/// A simulator event's kind; its number is what the run hash mixes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Kind {
    /// A task was spawned: (task key, process).
    Spawn = 1,
    /// A task is polled: (task key, 0).
    Poll = 2,
    /// A buggify site was decided for the run: (enabled, 0).
    Buggify = 3,
    /// A process started: (process, host).
    Start = 4,
    /// A process exited: (process, status word).
    Exit = 5,
    /// A signal was delivered: (process, signal number).
    Signal = 6,
    /// A host lost power: (host, 0).
    HostCrash = 7,
    /// A host booted: (host, 0).
    HostBoot = 8,
    /// A crash point was hit: (process, whether it crashed there).
    CrashPoint = 9,
    /// A network partition began: (host a, host b).
    Partition = 10,
    /// A process sent a notification (sd_notify): (process, its length).
    Notify = 11,
}
