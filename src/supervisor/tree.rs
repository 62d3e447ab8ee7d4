//! The runnable tree as a state machine (no I/O, no clock of its own).
//!
//! Call order, as in quinn-proto: feed inputs with `handle_*` (each takes
//! `now`), then drain [`Tree::poll_action`] until `None` (and
//! [`Tree::poll_state_change`] for observers), sleep until
//! [`Tree::poll_timeout`], then call [`Tree::handle_timeout`]. The driver
//! in `runner.rs` executes the actions through `Env`.
//!
//! GC (`gc.rs`): after every exit the tree looks for DEAD or CANCELED
//! nodes under a live parent whose whole subtree (and whole group) has
//! returned, and restarts them. Because DONE means "returned" (see
//! `state.rs`), a restart never runs beside an instance that is still
//! running. How a node restarts is decided when it returns:
//!
//! - a node that failed on its own waits out its backoff and is charged
//!   one restart against its parent's intensity;
//! - a group fails together: when a member fails, its running siblings are
//!   cancelled, and the group restarts once every member has returned. The
//!   group restart is charged once (OTP's `one_for_all`), however many
//!   members were cancelled or also failed meanwhile; the cancelled
//!   siblings restart at once, without a delay and without advancing their
//!   own backoff (Monogon restarts a cancelled node with no delay); only
//!   members that failed wait out their backoff.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::backoff::{Backoff, BackoffConfig};
use super::error::{SupervisorError, TreeError};
use super::intensity::{Intensity, IntensityWindow};
use super::metrics::Metrics;
use super::state::{NodeEvent, NodeMachine, NodeState};
use crate::env::Instant;

/// The root's hierarchical name.
pub const ROOT: &str = "root";

/// How the tree behaves.
#[derive(Debug, Clone, Copy)]
pub struct TreeConfig {
    /// Restart delays.
    pub backoff: BackoffConfig,
    /// Restarts allowed per parent (and for the root) per period.
    pub intensity: Intensity,
    /// Internal and programming errors end the run instead of being logged.
    pub test_mode: bool,
    /// After shutdown is asked for, how long runnables get to return
    /// before they are aborted and the run fails (every wait has a
    /// deadline: DESIGN rule 6).
    pub shutdown_grace: std::time::Duration,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            backoff: BackoffConfig::TREE,
            intensity: Intensity::DEFAULT,
            test_mode: false,
            shutdown_grace: std::time::Duration::from_secs(30),
        }
    }
}

/// Historical bugs the driver switches on from `env.mutant(..)`; all off
/// in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeBugs {
    /// `done-on-signal`: a node is DONE at its Done signal (seed 000).
    pub done_on_signal: bool,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the runnable registered at `dn` as `instance`, its context a
    /// child of its parent's current context.
    Start {
        /// Hierarchical name.
        dn: String,
        /// Instance id (unique per tree).
        instance: u64,
    },
    /// Cancel the context of `dn`'s current instance (and its subtree's).
    Cancel {
        /// Hierarchical name.
        dn: String,
    },
    /// `dn` left the tree: drop its runnable and context.
    Forget {
        /// Hierarchical name.
        dn: String,
    },
    /// The supervisor is finished.
    Finished(Result<(), SupervisorError>),
}

/// One node changed state (`None`: it entered or left the tree), for
/// observers that need every step, not only counts per state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// Hierarchical name.
    pub dn: String,
    /// The instance the change belongs to.
    pub instance: u64,
    /// The state before (`None`: the node was just added).
    pub from: Option<NodeState>,
    /// The state after (`None`: the node left the tree).
    pub to: Option<NodeState>,
}

/// A node that returned and will be started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRestart {
    /// Hierarchical name.
    pub dn: String,
    /// When its backoff ends; `None` while it waits for its subtree or its
    /// group to return.
    pub at: Option<Instant>,
}

/// How a returned node restarts; decided when it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restart {
    /// It failed on its own: backoff, and one restart charged.
    Charged,
    /// It failed while its group's restart was already charged: backoff
    /// only.
    Uncharged,
    /// The tree cancelled it because a group sibling failed: at once, no
    /// backoff, not charged.
    Innocent,
}

/// A run-group: children of one parent that fail together.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) members: BTreeSet<String>,
    /// A member failed and the group has not fully restarted yet: further
    /// failures belong to the same (already charged) group restart.
    pub(super) restarting: bool,
}

pub(super) struct Node {
    pub(super) machine: NodeMachine,
    pub(super) instance: u64,
    pub(super) children: BTreeSet<String>,
    /// The groups of its children.
    pub(super) groups: Vec<Group>,
    pub(super) backoff: Backoff,
    pub(super) restart_at: Option<Instant>,
    /// Restarts of this node's children (OTP intensity).
    pub(super) child_restarts: IntensityWindow,
    /// The tree cancelled this instance's context (its own failure, an
    /// ancestor's, a group sibling's, intensity, shutdown): its children
    /// are not restarted under it.
    pub(super) cancel_requested: bool,
    /// Cancelled because a group sibling failed, not by its own doing.
    pub(super) innocent: bool,
    /// How it restarts, once it returned DEAD or CANCELED.
    pub(super) restart: Option<Restart>,
}

/// The tree.
pub struct Tree {
    pub(super) config: TreeConfig,
    pub(super) bugs: TreeBugs,
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) actions: VecDeque<Action>,
    pub(super) changes: VecDeque<StateChange>,
    pub(super) next_instance: u64,
    pub(super) rng: u64,
    pub(super) shutting_down: bool,
    pub(super) finished: bool,
    /// Restarts of the root itself.
    pub(super) root_restarts: IntensityWindow,
    pub(super) metrics: Metrics,
}

pub(super) fn parent_of(dn: &str) -> Option<&str> {
    dn.rsplit_once('.').map(|(p, _)| p)
}

pub(super) fn is_under(dn: &str, ancestor: &str) -> bool {
    dn.len() > ancestor.len() && dn.starts_with(ancestor) && dn.as_bytes()[ancestor.len()] == b'.'
}

impl Tree {
    /// A tree whose root is about to start; `seed` drives backoff jitter.
    pub fn new(config: TreeConfig, seed: u64) -> Self {
        let mut t = Tree {
            config,
            bugs: TreeBugs::default(),
            nodes: BTreeMap::new(),
            actions: VecDeque::new(),
            changes: VecDeque::new(),
            next_instance: 1,
            rng: seed,
            shutting_down: false,
            finished: false,
            root_restarts: IntensityWindow::new(config.intensity),
            metrics: Metrics::default(),
        };
        t.add_node(ROOT.to_owned());
        t
    }

    /// Switches historical bugs on (the driver passes `env.mutant(..)`);
    /// call before feeding any input.
    pub fn with_bugs(mut self, bugs: TreeBugs) -> Self {
        self.bugs = bugs;
        for n in self.nodes.values_mut() {
            n.machine = n.machine.with_done_on_signal(bugs.done_on_signal);
        }
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    pub(super) fn add_node(&mut self, dn: String) {
        let instance = self.next_instance;
        self.next_instance += 1;
        let node = Node {
            machine: NodeMachine::new().with_done_on_signal(self.bugs.done_on_signal),
            instance,
            children: BTreeSet::new(),
            groups: Vec::new(),
            backoff: Backoff::new(self.config.backoff),
            restart_at: None,
            child_restarts: IntensityWindow::new(self.config.intensity),
            cancel_requested: false,
            innocent: false,
            restart: None,
        };
        self.note(&dn, instance, None, Some(NodeState::New));
        tracing::info!(node = dn.as_str(), instance, to = "new", "node started");
        self.actions.push_back(Action::Start { dn: dn.clone(), instance });
        self.nodes.insert(dn, node);
    }

    /// Records a state change: gauge and observers.
    pub(super) fn note(&mut self, dn: &str, instance: u64, from: Option<NodeState>, to: Option<NodeState>) {
        self.metrics.gauge(from, to);
        self.changes.push_back(StateChange { dn: dn.to_owned(), instance, from, to });
    }

    /// The state of `dn`, if it is in the tree.
    pub fn state_of(&self, dn: &str) -> Option<NodeState> {
        self.nodes.get(dn).map(|n| n.machine.state())
    }

    /// The current instance of `dn`.
    pub fn instance_of(&self, dn: &str) -> Option<u64> {
        self.nodes.get(dn).map(|n| n.instance)
    }

    /// Every node and its state now.
    pub fn node_states(&self) -> BTreeMap<String, NodeState> {
        self.nodes.iter().map(|(k, n)| (k.clone(), n.machine.state())).collect()
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Whether [`Action::Finished`] was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether nothing is about to change on its own: the run finished, or
    /// every node is HEALTHY or DONE (none starting, none waiting to
    /// restart) and no shutdown is under way.
    pub fn is_settled(&self) -> bool {
        self.finished
            || (!self.shutting_down
                && self.nodes.values().all(|n| matches!(n.machine.state(), NodeState::Healthy | NodeState::Done)))
    }

    /// Nodes that returned and will be started again, and when.
    pub fn pending_restarts(&self) -> Vec<PendingRestart> {
        if self.shutting_down || self.finished {
            return Vec::new();
        }
        self.nodes
            .iter()
            .filter(|(dn, n)| {
                matches!(n.machine.state(), NodeState::Dead | NodeState::Canceled) && self.parent_alive(dn)
            })
            .map(|(dn, n)| PendingRestart { dn: dn.clone(), at: n.restart_at })
            .collect()
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next state change, for observers (the driver drains them).
    pub fn poll_state_change(&mut self) -> Option<StateChange> {
        self.changes.pop_front()
    }

    /// The earliest pending restart.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.nodes.values().filter_map(|n| n.restart_at).min()
    }

    /// `Ok` if `dn` is in the tree at `instance`.
    fn current(&self, dn: &str, instance: u64) -> bool {
        self.nodes.get(dn).is_some_and(|n| n.instance == instance)
    }

    /// Records an internal or programming error: logged and counted; in
    /// test mode it ends the run.
    pub(super) fn report(&mut self, e: &TreeError) {
        match e {
            TreeError::Programming { .. } | TreeError::StaleContext { .. } => self.metrics.programming_errors += 1,
            TreeError::NodeNotFound { .. }
            | TreeError::DuplicateName { .. }
            | TreeError::InvalidName(_)
            | TreeError::ParentNotRunning(_) => self.metrics.internal_errors += 1,
        }
        tracing::error!(error = %e, "supervisor error");
        if self.config.test_mode {
            self.finish(Err(SupervisorError::Internal(e.clone())));
        }
    }

    pub(super) fn finish(&mut self, result: Result<(), SupervisorError>) {
        if !self.finished {
            self.finished = true;
            tracing::info!(ok = result.is_ok(), "supervisor finished");
            self.request_cancel(ROOT);
            self.actions.push_back(Action::Finished(result));
        }
    }

    /// Cancels the context of `dn` and, through it, of its subtree.
    pub(super) fn request_cancel(&mut self, dn: &str) {
        for (_, n) in self.nodes.range_mut(dn.to_owned()..).take_while(|(k, _)| *k == dn || is_under(k, dn)) {
            n.cancel_requested = true;
        }
        self.actions.push_back(Action::Cancel { dn: dn.to_owned() });
    }

    /// The runnable at `parent` (instance `instance`) starts children
    /// `names`; as a group when `group` (they fail together).
    pub fn handle_run(&mut self, parent: &str, instance: u64, names: &[&str], group: bool) -> Result<(), TreeError> {
        if !self.current(parent, instance) {
            let e = TreeError::StaleContext { dn: parent.to_owned(), instance };
            self.report(&e);
            return Err(e);
        }
        let p = &self.nodes[parent];
        if !p.machine.running() {
            return Err(TreeError::ParentNotRunning(parent.to_owned()));
        }
        let mut seen = BTreeSet::new();
        for name in names {
            if name.is_empty() || name.contains('.') {
                return Err(TreeError::InvalidName((*name).to_owned()));
            }
            if p.children.contains(*name) || !seen.insert(*name) {
                return Err(TreeError::DuplicateName { parent: parent.to_owned(), name: (*name).to_owned() });
            }
        }
        let cancelled = p.cancel_requested;
        let p = self.nodes.get_mut(parent).expect("looked up");
        p.children.extend(names.iter().map(|n| (*n).to_owned()));
        if group {
            p.groups.push(Group { members: names.iter().map(|n| (*n).to_owned()).collect(), restarting: false });
        }
        for name in names {
            let dn = format!("{parent}.{name}");
            self.add_node(dn.clone());
            if cancelled {
                // Started under a cancelled context: the driver starts it
                // cancelled, and it is not restarted under this parent.
                if let Some(n) = self.nodes.get_mut(&dn) {
                    n.cancel_requested = true;
                }
            }
        }
        Ok(())
    }

    /// The runnable at `dn` signalled Healthy (`done == false`) or Done.
    pub fn handle_signal(&mut self, _now: Instant, dn: &str, instance: u64, done: bool) -> Result<(), TreeError> {
        if !self.current(dn, instance) {
            let e = TreeError::StaleContext { dn: dn.to_owned(), instance };
            self.report(&e);
            return Err(e);
        }
        let event = if done { NodeEvent::SignalDone } else { NodeEvent::SignalHealthy };
        let node = self.nodes.get_mut(dn).expect("looked up");
        let before = node.machine.state();
        match node.machine.step(event) {
            Ok(changed) => {
                // Healthy and Done both prove the runnable works.
                node.backoff.reset();
                if let Some(to) = changed {
                    self.note(dn, instance, Some(before), Some(to));
                    tracing::info!(node = dn, from = before.name(), to = to.name(), "node state");
                } else {
                    tracing::info!(node = dn, state = before.name(), "node signalled done");
                }
                Ok(())
            }
            Err(error) => {
                let e = TreeError::Programming { dn: dn.to_owned(), error };
                self.report(&e);
                Err(e)
            }
        }
    }

    /// The runnable at `dn` (instance `instance`) returned: `error` is
    /// `None` on a clean return; `panicked` if it panicked; `canceled` if
    /// its context was cancelled by then.
    pub fn handle_exit(
        &mut self,
        now: Instant,
        dn: &str,
        instance: u64,
        error: Option<&str>,
        panicked: bool,
        canceled: bool,
    ) -> Result<(), TreeError> {
        if !self.current(dn, instance) {
            let e = TreeError::NodeNotFound { dn: dn.to_owned(), instance };
            self.report(&e);
            return Err(e);
        }
        if panicked {
            self.metrics.panics += 1;
        }
        let node = self.nodes.get_mut(dn).expect("looked up");
        let before = node.machine.state();
        let stepped = node.machine.step(NodeEvent::Returned { ok: error.is_none(), canceled });
        let after = node.machine.state();
        if let Err(error) = stepped {
            let e = TreeError::Programming { dn: dn.to_owned(), error };
            self.report(&e);
            return Err(e);
        }
        self.note(dn, instance, Some(before), Some(after));
        tracing::info!(
            node = dn,
            from = before.name(),
            to = after.name(),
            error = error.unwrap_or(""),
            panicked,
            "node returned"
        );
        self.decide_restart(dn, after);
        if after == NodeState::Dead {
            // Its children's contexts derive from its own.
            self.request_cancel(dn);
            self.cancel_group_siblings(dn);
        }
        self.gc(now);
        Ok(())
    }

    /// Stop everything: cancel the root's context; no more restarts.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if !self.shutting_down {
            self.shutting_down = true;
            tracing::info!("supervisor shutting down");
            for n in self.nodes.values_mut() {
                n.restart_at = None;
            }
            self.request_cancel(ROOT);
            self.gc(now);
        }
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
