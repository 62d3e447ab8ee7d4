//! The runnable tree as a state machine (no I/O, no clock of its own).
//!
//! Call order, as in quinn-proto: feed inputs with `handle_*` (each takes
//! `now`), then drain [`Tree::poll_action`] until `None` and sleep until
//! [`Tree::poll_timeout`], then call [`Tree::handle_timeout`]. The driver in
//! `runner.rs` executes the actions through `Env`.
//!
//! GC: after every exit the tree looks for DEAD or CANCELED nodes under a
//! live parent whose whole subtree has returned, and schedules their
//! restart after a backoff. A restart clears the node's children, groups
//! and Done flag; removing the children cancels their pending restarts.
//! Because DONE means "returned" (see `state.rs`), a restart never runs
//! beside an instance that is still running.

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
    /// Mutant `done-on-signal` (seed 000's bug).
    pub done_on_signal: bool,
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
            done_on_signal: false,
            shutdown_grace: std::time::Duration::from_secs(30),
        }
    }
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

struct Node {
    machine: NodeMachine,
    instance: u64,
    children: BTreeSet<String>,
    groups: Vec<BTreeSet<String>>,
    backoff: Backoff,
    restart_at: Option<Instant>,
    /// Restarts of this node's children (OTP intensity).
    child_restarts: IntensityWindow,
}

/// The tree.
pub struct Tree {
    config: TreeConfig,
    nodes: BTreeMap<String, Node>,
    actions: VecDeque<Action>,
    next_instance: u64,
    rng: u64,
    shutting_down: bool,
    finished: bool,
    /// Restarts of the root itself.
    root_restarts: IntensityWindow,
    metrics: Metrics,
}

fn parent_of(dn: &str) -> Option<&str> {
    dn.rsplit_once('.').map(|(p, _)| p)
}

fn is_under(dn: &str, ancestor: &str) -> bool {
    dn.len() > ancestor.len() && dn.starts_with(ancestor) && dn.as_bytes()[ancestor.len()] == b'.'
}

impl Tree {
    /// Its configuration.
    pub fn config(&self) -> &TreeConfig {
        &self.config
    }

    /// A tree whose root is about to start; `seed` drives backoff jitter.
    pub fn new(config: TreeConfig, seed: u64) -> Self {
        let mut t = Tree {
            config,
            nodes: BTreeMap::new(),
            actions: VecDeque::new(),
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

    fn add_node(&mut self, dn: String) {
        let instance = self.next_instance;
        self.next_instance += 1;
        let node = Node {
            machine: NodeMachine::new(self.config.done_on_signal),
            instance,
            children: BTreeSet::new(),
            groups: Vec::new(),
            backoff: Backoff::new(self.config.backoff),
            restart_at: None,
            child_restarts: IntensityWindow::new(self.config.intensity),
        };
        self.metrics.gauge(None, Some(NodeState::New));
        tracing::info!(node = dn.as_str(), instance, to = "new", "node started");
        self.actions.push_back(Action::Start { dn: dn.clone(), instance });
        self.nodes.insert(dn, node);
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: seeded from the Env once, deterministic after.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The state of `dn`, if it is in the tree.
    pub fn state_of(&self, dn: &str) -> Option<NodeState> {
        self.nodes.get(dn).map(|n| n.machine.state())
    }

    /// The current instance of `dn`.
    pub fn instance_of(&self, dn: &str) -> Option<u64> {
        self.nodes.get(dn).map(|n| n.instance)
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Whether [`Action::Finished`] was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest pending restart.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.nodes.values().filter_map(|n| n.restart_at).min()
    }

    fn lookup(&self, dn: &str, instance: u64) -> Result<(), TreeError> {
        match self.nodes.get(dn) {
            Some(n) if n.instance == instance => Ok(()),
            _ => Err(TreeError::NodeNotFound { dn: dn.to_owned(), instance }),
        }
    }

    /// Records an internal or programming error: logged and counted; in
    /// test mode it ends the run.
    fn report(&mut self, e: &TreeError) {
        match e {
            TreeError::Programming { .. } => self.metrics.programming_errors += 1,
            _ => self.metrics.internal_errors += 1,
        }
        tracing::error!(error = %e, "supervisor error");
        if self.config.test_mode {
            self.finish(Err(SupervisorError::Internal(e.clone())));
        }
    }

    fn finish(&mut self, result: Result<(), SupervisorError>) {
        if !self.finished {
            self.finished = true;
            tracing::info!(ok = result.is_ok(), "supervisor finished");
            self.actions.push_back(Action::Cancel { dn: ROOT.to_owned() });
            self.actions.push_back(Action::Finished(result));
        }
    }

    /// The runnable at `parent` (instance `instance`) starts children
    /// `names`; as a group when `group` (they fail together).
    pub fn handle_run(&mut self, parent: &str, instance: u64, names: &[&str], group: bool) -> Result<(), TreeError> {
        if let Err(e) = self.lookup(parent, instance) {
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
        let p = self.nodes.get_mut(parent).expect("looked up");
        p.children.extend(names.iter().map(|n| (*n).to_owned()));
        if group {
            p.groups.push(names.iter().map(|n| (*n).to_owned()).collect());
        }
        for name in names {
            self.add_node(format!("{parent}.{name}"));
        }
        Ok(())
    }

    /// The runnable at `dn` signalled Healthy (`done == false`) or Done.
    pub fn handle_signal(&mut self, _now: Instant, dn: &str, instance: u64, done: bool) -> Result<(), TreeError> {
        if let Err(e) = self.lookup(dn, instance) {
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
                    self.metrics.gauge(Some(before), Some(to));
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
        if let Err(e) = self.lookup(dn, instance) {
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
        match stepped {
            Ok(_) => {
                self.metrics.gauge(Some(before), Some(after));
                tracing::info!(
                    node = dn,
                    from = before.name(),
                    to = after.name(),
                    error = error.unwrap_or(""),
                    panicked,
                    "node returned"
                );
            }
            Err(error) => {
                let e = TreeError::Programming { dn: dn.to_owned(), error };
                self.report(&e);
                return Err(e);
            }
        }
        if after == NodeState::Dead {
            // Its children's contexts derive from its own.
            self.actions.push_back(Action::Cancel { dn: dn.to_owned() });
            self.cancel_group_siblings(dn);
        }
        self.gc(now);
        Ok(())
    }

    fn cancel_group_siblings(&mut self, dn: &str) {
        let (Some(parent), Some((_, name))) = (parent_of(dn), dn.rsplit_once('.')) else { return };
        let Some(p) = self.nodes.get(parent) else { return };
        let siblings: BTreeSet<String> =
            p.groups.iter().filter(|g| g.contains(name)).flatten().filter(|s| *s != name).cloned().collect();
        for s in siblings {
            let sdn = format!("{parent}.{s}");
            if self.nodes.get(&sdn).is_some_and(|n| n.machine.running()) {
                tracing::info!(node = sdn.as_str(), failed = dn, "cancelling group sibling");
                self.actions.push_back(Action::Cancel { dn: sdn });
            }
        }
    }

    /// Whether `dn` and everything under it has returned, as the states
    /// say (GC trusts the states).
    fn subtree_returned(&self, dn: &str) -> bool {
        self.nodes
            .range(dn.to_owned()..)
            .take_while(|(k, _)| *k == dn || is_under(k, dn))
            .all(|(_, n)| n.machine.state().has_returned())
    }

    fn parent_alive(&self, dn: &str) -> bool {
        match parent_of(dn) {
            None => true,
            Some(p) => self
                .nodes
                .get(p)
                .is_some_and(|n| matches!(n.machine.state(), NodeState::New | NodeState::Healthy | NodeState::Done)),
        }
    }

    /// One GC pass: schedules restarts of failed nodes whose subtrees have
    /// fully returned; finishes the run when nothing is left to do.
    fn gc(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        self.metrics.gc_runs += 1;
        let candidates: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                matches!(n.machine.state(), NodeState::Dead | NodeState::Canceled) && n.restart_at.is_none()
            })
            .map(|(k, _)| k.clone())
            .collect();
        for dn in candidates {
            if self.shutting_down
                || !self.nodes.contains_key(&dn)
                || !self.parent_alive(&dn)
                || !self.subtree_returned(&dn)
            {
                continue;
            }
            let counted = match parent_of(&dn) {
                None => self.root_restarts.record(now),
                Some(p) => self.nodes.get_mut(p).expect("parent alive").child_restarts.record(now),
            };
            if let Err(limit) = counted {
                let over = parent_of(&dn).unwrap_or(ROOT).to_owned();
                tracing::warn!(node = dn.as_str(), parent = over.as_str(), %limit, "restart intensity exceeded");
                if over == ROOT {
                    // The root's children (or the root itself) restarted
                    // too often: the supervisor gives up and exits non-zero.
                    self.finish(Err(SupervisorError::IntensityExceeded { dn: over, limit }));
                    return;
                }
                // The parent fails: its context is cancelled, and when it
                // has returned its own parent restarts it (counted there).
                self.actions.push_back(Action::Cancel { dn: over });
                continue;
            }
            let r = self.next_random();
            let node = self.nodes.get_mut(&dn).expect("present");
            let delay = node.backoff.next_delay(r);
            node.restart_at = Some(now + delay);
            tracing::info!(node = dn.as_str(), delay_ms = delay.as_millis() as u64, "restart scheduled");
        }
        let all_returned = self.nodes.values().all(|n| n.machine.state().has_returned());
        let none_pending = self.nodes.values().all(|n| n.restart_at.is_none());
        let root_over =
            matches!(self.state_of(ROOT), Some(NodeState::Done | NodeState::Canceled)) || self.shutting_down;
        if all_returned && none_pending && root_over {
            self.finish(Ok(()));
        }
    }

    /// Restarts whose backoff ran out.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<String> =
            self.nodes.iter().filter(|(_, n)| n.restart_at.is_some_and(|t| t <= now)).map(|(k, _)| k.clone()).collect();
        for dn in due {
            let Some(node) = self.nodes.get_mut(&dn) else { continue };
            node.restart_at = None;
            if self.shutting_down || self.finished || !self.parent_alive(&dn) {
                continue;
            }
            self.restart(&dn);
        }
        self.gc(now);
    }

    fn restart(&mut self, dn: &str) {
        // Clear the subtree: its nodes (and their pending restarts) go.
        let under: Vec<String> =
            self.nodes.range(dn.to_owned()..).map(|(k, _)| k.clone()).skip(1).take_while(|k| is_under(k, dn)).collect();
        for k in under {
            if let Some(n) = self.nodes.remove(&k) {
                self.metrics.gauge(Some(n.machine.state()), None);
            }
            self.actions.push_back(Action::Forget { dn: k });
        }
        let instance = self.next_instance;
        self.next_instance += 1;
        let node = self.nodes.get_mut(dn).expect("present");
        let before = node.machine.state();
        if let Err(error) = node.machine.step(NodeEvent::Restart) {
            let e = TreeError::Programming { dn: dn.to_owned(), error };
            self.report(&e);
            return;
        }
        node.children.clear();
        node.groups.clear();
        node.instance = instance;
        self.metrics.restarts += 1;
        self.metrics.gauge(Some(before), Some(NodeState::New));
        tracing::info!(node = dn, instance, from = before.name(), to = "new", "node restarted");
        self.actions.push_back(Action::Start { dn: dn.to_owned(), instance });
    }

    /// Stop everything: cancel the root's context; no more restarts.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if !self.shutting_down {
            self.shutting_down = true;
            tracing::info!("supervisor shutting down");
            for n in self.nodes.values_mut() {
                n.restart_at = None;
            }
            self.actions.push_back(Action::Cancel { dn: ROOT.to_owned() });
            self.gc(now);
        }
    }
}
