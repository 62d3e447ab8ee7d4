//! The tree's GC and restarts: which returned nodes restart, when, and
//! what each restart is charged (see the module doc of `tree.rs`).

use std::collections::BTreeSet;

use super::error::{SupervisorError, TreeError};
use super::state::{NodeEvent, NodeState};
use super::tree::{Action, ROOT, Restart, Tree, is_under, parent_of};
use crate::env::{Instant, splitmix64};

impl Tree {
    /// The group of `dn` under its parent: (parent, index of the group).
    fn group_of(&self, dn: &str) -> Option<(String, usize)> {
        let (parent, name) = dn.rsplit_once('.')?;
        let p = self.nodes.get(parent)?;
        let i = p.groups.iter().position(|g| g.members.contains(name))?;
        Some((parent.to_owned(), i))
    }

    /// Decides, as `dn` returns in state `after`, how it will restart.
    pub(super) fn decide_restart(&mut self, dn: &str, after: NodeState) {
        let restart = match after {
            NodeState::Done | NodeState::New | NodeState::Healthy => None,
            NodeState::Dead | NodeState::Canceled => {
                // Cancelled by a sibling's failure and returned as such; one
                // that failed on its own before seeing it backs off.
                let innocent = after == NodeState::Canceled && self.nodes.get(dn).is_some_and(|n| n.innocent);
                match self.group_of(dn) {
                    _ if innocent => Some(Restart::Innocent),
                    None => Some(Restart::Charged),
                    Some((parent, i)) => {
                        let g = &mut self.nodes.get_mut(&parent).expect("group's parent").groups[i];
                        if g.restarting {
                            Some(Restart::Uncharged)
                        } else {
                            g.restarting = true;
                            Some(Restart::Charged)
                        }
                    }
                }
            }
        };
        if let Some(n) = self.nodes.get_mut(dn) {
            n.restart = restart;
        }
    }

    /// Cancels the running siblings of `dn`'s group: they are innocent.
    pub(super) fn cancel_group_siblings(&mut self, dn: &str) {
        let Some((parent, i)) = self.group_of(dn) else { return };
        let name = dn.rsplit_once('.').map_or(dn, |(_, n)| n);
        let siblings: BTreeSet<String> =
            self.nodes[&parent].groups[i].members.iter().filter(|s| *s != name).cloned().collect();
        for s in siblings {
            let sdn = format!("{parent}.{s}");
            let Some(n) = self.nodes.get_mut(&sdn) else { continue };
            if n.machine.running() {
                n.innocent = true;
                tracing::info!(node = sdn.as_str(), failed = dn, "cancelling group sibling");
                self.request_cancel(&sdn);
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

    /// Whether every member of `dn`'s group (if any) has returned with its
    /// subtree: a group restarts as a whole.
    fn group_returned(&self, dn: &str) -> bool {
        let Some((parent, i)) = self.group_of(dn) else { return true };
        self.nodes[&parent].groups[i].members.iter().all(|m| self.subtree_returned(&format!("{parent}.{m}")))
    }

    /// Whether `dn`'s parent still supervises it: running or DONE, and
    /// its context not cancelled.
    pub(super) fn parent_alive(&self, dn: &str) -> bool {
        match parent_of(dn) {
            None => true,
            Some(p) => self.nodes.get(p).is_some_and(|n| {
                !n.cancel_requested
                    && matches!(n.machine.state(), NodeState::New | NodeState::Healthy | NodeState::Done)
            }),
        }
    }

    /// One GC pass: restarts (or schedules) failed nodes whose subtrees
    /// and groups have fully returned; finishes the run when nothing is
    /// left to do.
    pub(super) fn gc(&mut self, now: Instant) {
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
        // Decide on the states as they are, then act: restarting one
        // member must not make its group look unreturned to the next.
        let ready: Vec<String> = candidates
            .into_iter()
            .filter(|dn| self.parent_alive(dn) && self.subtree_returned(dn) && self.group_returned(dn))
            .collect();
        for dn in ready {
            // A charge above may have failed the parent or the run.
            if self.shutting_down || self.finished || !self.nodes.contains_key(&dn) || !self.parent_alive(&dn) {
                continue;
            }
            match self.nodes[&dn].restart.unwrap_or(Restart::Charged) {
                Restart::Innocent => {
                    tracing::info!(node = dn.as_str(), "restarting a cancelled group sibling at once");
                    self.restart(&dn);
                }
                Restart::Uncharged => self.schedule(&dn, now),
                Restart::Charged => {
                    if self.charge(&dn, now) {
                        self.schedule(&dn, now);
                    }
                }
            }
        }
        let all_returned = self.nodes.values().all(|n| n.machine.state().has_returned());
        let none_pending = self.nodes.values().all(|n| n.restart_at.is_none());
        let root_over =
            matches!(self.state_of(ROOT), Some(NodeState::Done | NodeState::Canceled)) || self.shutting_down;
        if all_returned && none_pending && root_over {
            self.finish(Ok(()));
        }
    }

    /// Charges one restart of `dn` to its parent (or the root's own
    /// window); `false` when that exceeds the intensity: the parent fails
    /// (at the root, the supervisor).
    fn charge(&mut self, dn: &str, now: Instant) -> bool {
        let counted = match parent_of(dn) {
            None => self.root_restarts.record(now),
            Some(p) => self.nodes.get_mut(p).expect("parent alive").child_restarts.record(now),
        };
        let Err(limit) = counted else { return true };
        let over = parent_of(dn).unwrap_or(ROOT).to_owned();
        tracing::warn!(node = dn, parent = over.as_str(), %limit, "restart intensity exceeded");
        if over == ROOT {
            // The root's children (or the root itself) restarted too
            // often: the supervisor gives up and exits non-zero.
            self.finish(Err(SupervisorError::IntensityExceeded { dn: over, limit }));
        } else {
            // The parent fails: its context is cancelled, and when it has
            // returned its own parent restarts it (counted there).
            self.request_cancel(&over);
        }
        false
    }

    /// Schedules `dn`'s restart after its backoff (which grows).
    fn schedule(&mut self, dn: &str, now: Instant) {
        let r = splitmix64(&mut self.rng);
        let node = self.nodes.get_mut(dn).expect("present");
        let delay = node.backoff.next_delay(r);
        node.restart_at = Some(now + delay);
        tracing::info!(node = dn, delay_ms = delay.as_millis() as u64, "restart scheduled");
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
                self.note(&k, n.instance, Some(n.machine.state()), None);
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
        node.restart_at = None;
        node.cancel_requested = false;
        node.innocent = false;
        node.restart = None;
        self.metrics.restarts += 1;
        self.note(dn, instance, Some(before), Some(NodeState::New));
        tracing::info!(node = dn, instance, from = before.name(), to = "new", "node restarted");
        self.actions.push_back(Action::Start { dn: dn.to_owned(), instance });
        // The group restart is over once no member waits to restart.
        if let Some((parent, i)) = self.group_of(dn) {
            let all_back = self.nodes[&parent].groups[i].members.iter().all(|m| {
                self.nodes
                    .get(&format!("{parent}.{m}"))
                    .is_none_or(|n| matches!(n.machine.state(), NodeState::New | NodeState::Healthy | NodeState::Done))
            });
            if all_back && let Some(p) = self.nodes.get_mut(&parent) {
                p.groups[i].restarting = false;
            }
        }
    }
}
