//! Counters the binary exports: restarts, panics, GC passes, errors, and a
//! gauge of nodes per state.

use std::collections::BTreeMap;

use super::state::NodeState;

/// A copy of the tree's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Restarts of any node.
    pub restarts: u64,
    /// Runnables that panicked.
    pub panics: u64,
    /// GC passes.
    pub gc_runs: u64,
    /// Internal errors (e.g. an exit from a node no longer in the tree).
    pub internal_errors: u64,
    /// Runnables that broke the signalling protocol.
    pub programming_errors: u64,
    /// Nodes per state now.
    pub nodes_by_state: BTreeMap<NodeState, u64>,
}

impl Metrics {
    /// Moves one node's gauge from `from` to `to` (`None`: added/removed).
    pub(crate) fn gauge(&mut self, from: Option<NodeState>, to: Option<NodeState>) {
        if let Some(f) = from
            && let Some(n) = self.nodes_by_state.get_mut(&f)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(t) = to {
            *self.nodes_by_state.entry(t).or_default() += 1;
        }
    }

    /// Nodes in `state` now.
    pub fn nodes_in(&self, state: NodeState) -> u64 {
        self.nodes_by_state.get(&state).copied().unwrap_or(0)
    }
}
