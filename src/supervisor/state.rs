//! The node state machine: states x events as one exhaustive match.
//!
//! A node is NEW when its runnable starts, HEALTHY once it signals so, and
//! leaves both only when the runnable has returned: DONE (it had signalled
//! Done and returned cleanly), CANCELED (its context was cancelled) or DEAD
//! (it failed, panicked, or returned without signalling Done). Signalling
//! Done only sets a flag (seed 000): GC treats DONE as "returned", so
//! entering DONE early would let GC restart a parent under a runnable that
//! is still running.

use std::fmt;

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Its runnable is running and has not signalled Healthy yet.
    New,
    /// Its runnable is running and signalled Healthy.
    Healthy,
    /// Its runnable signalled Done and then returned cleanly.
    Done,
    /// Its runnable failed, panicked, or returned without signalling Done.
    Dead,
    /// Its runnable returned after its context was cancelled.
    Canceled,
}

impl NodeState {
    /// Every state, for per-state gauges.
    pub const ALL: [NodeState; 5] =
        [NodeState::New, NodeState::Healthy, NodeState::Done, NodeState::Dead, NodeState::Canceled];

    /// Whether the state says the runnable has returned (what GC trusts).
    pub fn has_returned(self) -> bool {
        match self {
            NodeState::New | NodeState::Healthy => false,
            NodeState::Done | NodeState::Dead | NodeState::Canceled => true,
        }
    }

    /// Lower-case name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::New => "new",
            NodeState::Healthy => "healthy",
            NodeState::Done => "done",
            NodeState::Dead => "dead",
            NodeState::Canceled => "canceled",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What can happen to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEvent {
    /// The runnable signalled Healthy.
    SignalHealthy,
    /// The runnable signalled Done.
    SignalDone,
    /// The runnable returned; `ok` if it returned no error and did not
    /// panic; `canceled` if its context was cancelled by then.
    Returned {
        /// No error, no panic.
        ok: bool,
        /// Its context was cancelled when it returned.
        canceled: bool,
    },
    /// The supervisor starts the runnable again.
    Restart,
}

/// A programming error or an event the state forbids; the node is left
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    /// Done was signalled before Healthy.
    #[error("signalled Done before Healthy")]
    DoneBeforeHealthy,
    /// Done was signalled a second time.
    #[error("signalled Done twice")]
    DoneTwice,
    /// Healthy was signalled when the node was not NEW.
    #[error("signalled Healthy while {0}")]
    HealthyTwice(NodeState),
    /// A signal arrived after the runnable returned.
    #[error("signalled after its runnable returned ({0})")]
    SignalAfterReturn(NodeState),
    /// A second return of one instance.
    #[error("returned twice ({0})")]
    ReturnedTwice(NodeState),
    /// A restart while the runnable still runs: two instances.
    #[error("restart while its runnable still runs ({0})")]
    RestartWhileRunning(NodeState),
    /// A node that finished its work is not restarted on its own.
    #[error("restart of a DONE node")]
    RestartDone,
}

/// A node's state machine: plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMachine {
    state: NodeState,
    /// Done was signalled by this instance.
    signaled_done: bool,
    /// The runnable of this instance has not returned.
    running: bool,
    /// Mutant `done-on-signal`: enter DONE at the signal (the seed-000 bug).
    done_on_signal: bool,
}

impl Default for NodeMachine {
    fn default() -> Self {
        NodeMachine::new()
    }
}

impl NodeMachine {
    /// A node whose runnable has just been started.
    pub fn new() -> Self {
        NodeMachine { state: NodeState::New, signaled_done: false, running: true, done_on_signal: false }
    }

    /// The same machine with seed 000's bug switched on or off: DONE at
    /// the Done signal, before the runnable returned. Only the mutant
    /// `done-on-signal` turns it on.
    pub fn with_done_on_signal(mut self, on: bool) -> Self {
        self.done_on_signal = on;
        self
    }

    /// The state.
    pub fn state(&self) -> NodeState {
        self.state
    }

    /// Whether the runnable signalled Done.
    pub fn signaled_done(&self) -> bool {
        self.signaled_done
    }

    /// Whether the runnable of this instance is still running.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Applies `event`; returns the new state if it changed. An illegal
    /// event leaves the machine as it was.
    pub fn step(&mut self, event: NodeEvent) -> Result<Option<NodeState>, IllegalTransition> {
        use NodeEvent as E;
        use NodeState as S;
        let before = self.state;
        match (self.state, event) {
            (S::New, E::SignalHealthy) => self.state = S::Healthy,
            (S::Healthy, E::SignalHealthy) => return Err(IllegalTransition::HealthyTwice(S::Healthy)),
            (S::Done, E::SignalHealthy) if self.running => return Err(IllegalTransition::HealthyTwice(S::Done)),
            (S::Done | S::Dead | S::Canceled, E::SignalHealthy) => {
                return Err(IllegalTransition::SignalAfterReturn(self.state));
            }
            (S::New, E::SignalDone) => return Err(IllegalTransition::DoneBeforeHealthy),
            (S::Healthy, E::SignalDone) if self.signaled_done => return Err(IllegalTransition::DoneTwice),
            (S::Healthy, E::SignalDone) => {
                self.signaled_done = true;
                if self.done_on_signal {
                    self.state = S::Done;
                }
            }
            (S::Done, E::SignalDone) if self.running => return Err(IllegalTransition::DoneTwice),
            (S::Done | S::Dead | S::Canceled, E::SignalDone) => {
                return Err(IllegalTransition::SignalAfterReturn(self.state));
            }
            (S::New | S::Healthy, E::Returned { ok, canceled }) => {
                self.running = false;
                self.state = returned_state(self.signaled_done, ok, canceled);
            }
            // Only under `done-on-signal`: DONE while still running.
            (S::Done, E::Returned { ok, canceled }) if self.running => {
                self.running = false;
                self.state = returned_state(self.signaled_done, ok, canceled);
            }
            (S::Done | S::Dead | S::Canceled, E::Returned { .. }) => {
                return Err(IllegalTransition::ReturnedTwice(self.state));
            }
            (S::New | S::Healthy, E::Restart) => return Err(IllegalTransition::RestartWhileRunning(self.state)),
            (S::Done, E::Restart) if self.running => return Err(IllegalTransition::RestartWhileRunning(S::Done)),
            (S::Done, E::Restart) => return Err(IllegalTransition::RestartDone),
            (S::Dead | S::Canceled, E::Restart) => {
                *self = NodeMachine::new().with_done_on_signal(self.done_on_signal);
            }
        }
        Ok((self.state != before).then_some(self.state))
    }

    /// Checks the machine's own invariants; an error names the broken one.
    pub fn check(&self) -> Result<(), String> {
        let running_state = !self.state.has_returned();
        if !self.done_on_signal && running_state != self.running {
            return Err(format!("state {} but running={}", self.state, self.running));
        }
        if self.state == NodeState::Done && !self.signaled_done {
            return Err("DONE without a Done signal".into());
        }
        if self.signaled_done && self.state == NodeState::New {
            return Err("Done signalled while NEW".into());
        }
        Ok(())
    }
}

/// The state a returning runnable leaves its node in (Monogon's order):
/// Done and clean is DONE; else a cancelled context is CANCELED; else DEAD.
fn returned_state(signaled_done: bool, ok: bool, canceled: bool) -> NodeState {
    if signaled_done && ok {
        NodeState::Done
    } else if canceled {
        NodeState::Canceled
    } else {
        NodeState::Dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_only_after_return() {
        let mut m = NodeMachine::new();
        assert_eq!(m.step(NodeEvent::SignalHealthy), Ok(Some(NodeState::Healthy)));
        assert_eq!(m.step(NodeEvent::SignalDone), Ok(None), "Done only sets the flag");
        assert!(m.signaled_done() && m.running());
        assert_eq!(m.step(NodeEvent::Returned { ok: true, canceled: true }), Ok(Some(NodeState::Done)));
        assert_eq!(m.step(NodeEvent::Restart), Err(IllegalTransition::RestartDone));
    }

    #[test]
    fn programming_errors_are_named_and_change_nothing() {
        let mut m = NodeMachine::new();
        assert_eq!(m.step(NodeEvent::SignalDone), Err(IllegalTransition::DoneBeforeHealthy));
        assert_eq!(m.state(), NodeState::New);
        m.step(NodeEvent::SignalHealthy).unwrap();
        m.step(NodeEvent::SignalDone).unwrap();
        assert_eq!(m.step(NodeEvent::SignalDone), Err(IllegalTransition::DoneTwice));
        assert_eq!(m.step(NodeEvent::Restart), Err(IllegalTransition::RestartWhileRunning(NodeState::Healthy)));
    }

    #[test]
    fn returns_classified_and_restart_clears_the_flag() {
        let mut m = NodeMachine::new();
        m.step(NodeEvent::SignalHealthy).unwrap();
        m.step(NodeEvent::SignalDone).unwrap();
        assert_eq!(m.step(NodeEvent::Returned { ok: false, canceled: false }), Ok(Some(NodeState::Dead)));
        assert_eq!(m.step(NodeEvent::Restart), Ok(Some(NodeState::New)));
        assert!(!m.signaled_done() && m.running());
        assert_eq!(m.step(NodeEvent::Returned { ok: true, canceled: false }), Ok(Some(NodeState::Dead)));
        m.step(NodeEvent::Restart).unwrap();
        assert_eq!(m.step(NodeEvent::Returned { ok: true, canceled: true }), Ok(Some(NodeState::Canceled)));
    }
}
