//! The tree's driver: spawns runnables through `Env`, feeds their signals
//! and exits into [`Tree`], sleeps until the next restart.
//!
//! One processor task owns the loop; runnables reach the tree through
//! their [`Ctx`]. Everything runs on one thread, so the tree sits in a
//! `RefCell` shared by the processor and the contexts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;

use super::error::{NotSettled, RunResult, SupervisorError, TreeError};
use super::liveness::Liveness;
use super::metrics::Metrics;
use super::state::NodeState;
use super::tree::{Action, PendingRestart, ROOT, StateChange, Tree, TreeBugs, TreeConfig};
use crate::env::{AbortHandle, CancellationToken, Env, JoinError};

/// A runnable: called again for every (re)start with a fresh context.
pub type Runnable<E> = Rc<dyn Fn(Ctx<E>) -> LocalBoxFuture<'static, RunResult>>;

/// Wraps an async closure as a [`Runnable`].
pub fn runnable<E, F, Fut>(f: F) -> Runnable<E>
where
    E: Env,
    F: Fn(Ctx<E>) -> Fut + 'static,
    Fut: Future<Output = RunResult> + 'static,
{
    Rc::new(move |ctx| f(ctx).boxed_local())
}

/// What a runnable tells the tree about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnableSignal {
    /// It is up and working.
    Healthy,
    /// It finished its work and will return without error.
    Done,
}

struct Shared<E: Env> {
    env: E,
    tree: RefCell<Tree>,
    runnables: RefCell<BTreeMap<String, Runnable<E>>>,
    /// Context of each node's current instance.
    tokens: RefCell<BTreeMap<String, CancellationToken>>,
    /// Tasks of running instances, by instance, to abort at the end.
    tasks: RefCell<BTreeMap<u64, AbortHandle>>,
    wake: tokio::sync::Notify,
    /// Woken (all waiters) after every input the tree took.
    changed: tokio::sync::Notify,
    observers: RefCell<Vec<mpsc::UnboundedSender<StateChange>>>,
    liveness: Liveness<E>,
}

impl<E: Env> Shared<E> {
    /// After an input: state changes go to observers, waiters re-check,
    /// the processor drains the actions.
    fn after_input(&self) {
        let changes: Vec<StateChange> = std::iter::from_fn(|| self.tree.borrow_mut().poll_state_change()).collect();
        if !changes.is_empty() {
            let mut observers = self.observers.borrow_mut();
            observers.retain(|tx| changes.iter().all(|c| tx.unbounded_send(c.clone()).is_ok()));
        }
        self.changed.notify_waiters();
        self.wake.notify_one();
    }
}

/// A running supervision tree.
pub struct Supervisor<E: Env> {
    shared: Rc<Shared<E>>,
    root_token: CancellationToken,
}

impl<E: Env> Supervisor<E> {
    /// A tree whose root runs `root`; nothing starts before [`Supervisor::run`].
    pub fn new(env: E, root: Runnable<E>, config: TreeConfig) -> Self {
        let bugs = TreeBugs { done_on_signal: env.mutant("done-on-signal") };
        let tree = Tree::new(config, env.random_u64()).with_bugs(bugs);
        let shared = Rc::new(Shared {
            liveness: Liveness::new(env.clone()),
            env,
            tree: RefCell::new(tree),
            runnables: RefCell::new(BTreeMap::from([(ROOT.to_owned(), root)])),
            tokens: RefCell::default(),
            tasks: RefCell::default(),
            wake: tokio::sync::Notify::new(),
            changed: tokio::sync::Notify::new(),
            observers: RefCell::default(),
        });
        Supervisor { shared, root_token: CancellationToken::new() }
    }

    /// The state of node `dn` (e.g. `root.a`), if it is in the tree.
    pub fn state_of(&self, dn: &str) -> Option<NodeState> {
        self.shared.tree.borrow().state_of(dn)
    }

    /// The current instance of node `dn`.
    pub fn instance_of(&self, dn: &str) -> Option<u64> {
        self.shared.tree.borrow().instance_of(dn)
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.tree.borrow().metrics()
    }

    /// The liveness registry the tree's runnables feed.
    pub fn liveness(&self) -> Liveness<E> {
        self.shared.liveness.clone()
    }

    /// Every node and its state now.
    pub fn node_states(&self) -> BTreeMap<String, NodeState> {
        self.shared.tree.borrow().node_states()
    }

    /// Nodes that returned and will be started again, and when.
    pub fn pending_restarts(&self) -> Vec<PendingRestart> {
        self.shared.tree.borrow().pending_restarts()
    }

    /// Every state change of every node from now on, in order (`from` or
    /// `to` is `None` when a node enters or leaves the tree). Unbounded:
    /// read it, or drop it.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<StateChange> {
        let (tx, rx) = mpsc::unbounded();
        self.shared.observers.borrow_mut().push(tx);
        rx
    }

    /// Waits until the tree is settled (every node HEALTHY or DONE, no
    /// restart pending; or the run is over), at most `within`; else says
    /// what is still moving.
    pub async fn settled(&self, within: Duration) -> Result<(), NotSettled> {
        let sh = &self.shared;
        let deadline = sh.env.now() + within;
        loop {
            // Created before the check, so no change can slip in between.
            let changed = sh.changed.notified();
            if sh.tree.borrow().is_settled() {
                return Ok(());
            }
            let mut changed = std::pin::pin!(changed.fuse());
            let mut timer = std::pin::pin!(sh.env.sleep_until(deadline).fuse());
            futures::select_biased! {
                () = changed => {}
                () = timer => {
                    let tree = sh.tree.borrow();
                    let unsettled = tree
                        .node_states()
                        .into_iter()
                        .filter(|(_, s)| !matches!(s, NodeState::Healthy | NodeState::Done))
                        .collect();
                    return Err(NotSettled { unsettled, pending: tree.pending_restarts() });
                }
            }
        }
    }

    /// Runs until the root is done (and everything returned), `shutdown`
    /// is cancelled (and everything returned), or the run fails. Every
    /// runnable task still alive at the end is aborted.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let sh = &self.shared;
        let mut shutdown_seen = false;
        let grace = sh.tree.borrow().config().shutdown_grace;
        let mut shutdown_deadline = None;
        let result = 'run: loop {
            loop {
                let Some(action) = sh.tree.borrow_mut().poll_action() else { break };
                match action {
                    Action::Start { dn, instance } => start(sh, &self.root_token, dn, instance),
                    Action::Cancel { dn } => {
                        let token = sh.tokens.borrow().get(&dn).cloned();
                        if let Some(t) = token {
                            t.cancel();
                        }
                    }
                    Action::Forget { dn } => {
                        sh.tokens.borrow_mut().remove(&dn);
                        sh.runnables.borrow_mut().remove(&dn);
                    }
                    Action::Finished(r) => break 'run r,
                }
            }
            if let Some(d) = shutdown_deadline
                && sh.env.now() >= d
            {
                let still_running = sh.tasks.borrow().len();
                tracing::error!(still_running, grace_s = grace.as_secs_f64(), "shutdown grace ended: aborting");
                break 'run Err(SupervisorError::ShutdownTimedOut { grace, still_running });
            }
            let deadline = match (sh.tree.borrow().poll_timeout(), shutdown_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let env = sh.env.clone();
            let timer = async move {
                match deadline {
                    Some(d) => env.sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let mut timer = std::pin::pin!(timer.fuse());
            let mut woken = std::pin::pin!(sh.wake.notified().fuse());
            let seen = shutdown_seen;
            let mut stop = std::pin::pin!(
                async {
                    if seen {
                        std::future::pending::<()>().await;
                    }
                    shutdown.cancelled().await;
                }
                .fuse()
            );
            futures::select_biased! {
                () = woken => {}
                () = stop => {
                    shutdown_seen = true;
                    shutdown_deadline = Some(sh.env.now() + grace);
                    sh.tree.borrow_mut().handle_shutdown(sh.env.now());
                    sh.after_input();
                }
                () = timer => {
                    sh.tree.borrow_mut().handle_timeout(sh.env.now());
                    sh.after_input();
                }
            }
        };
        sh.changed.notify_waiters();
        self.root_token.cancel();
        for (_, task) in std::mem::take(&mut *sh.tasks.borrow_mut()) {
            task.abort();
        }
        result
    }
}

/// Spawns instance `instance` of the runnable at `dn`, and the task that
/// reports its return to the tree.
fn start<E: Env>(sh: &Rc<Shared<E>>, root_token: &CancellationToken, dn: String, instance: u64) {
    let Some(f) = sh.runnables.borrow().get(&dn).cloned() else {
        tracing::error!(node = dn.as_str(), "no runnable registered");
        return;
    };
    let token = match dn.rsplit_once('.') {
        None => root_token.child_token(),
        Some((p, _)) => match sh.tokens.borrow().get(p) {
            Some(t) => t.child_token(),
            // Its parent already left the tree: start it cancelled.
            None => {
                let t = CancellationToken::new();
                t.cancel();
                t
            }
        },
    };
    sh.tokens.borrow_mut().insert(dn.clone(), token.clone());
    let ctx = Ctx { shared: sh.clone(), dn: Rc::from(dn.as_str()), instance, token: token.clone() };
    let join = sh.env.spawn(&dn, f(ctx));
    sh.tasks.borrow_mut().insert(instance, join.abort_handle());
    let sh2 = sh.clone();
    drop(sh.env.spawn("supervisor.exit", async move {
        let outcome = join.await;
        // RACE CONDITION SAFETY: the return is processed in its own step,
        // so the scheduler may run GC and other exits in between, as the
        // real system may.
        sh2.env.yield_now().await;
        if crate::buggify!(sh2.env, "supervisor.tree.late_exit") {
            sh2.env.sleep(sh2.env.random_duration(std::time::Duration::from_millis(20))).await;
        }
        sh2.tasks.borrow_mut().remove(&instance);
        let (error, panicked) = match &outcome {
            Ok(Ok(())) => (None, false),
            Ok(Err(e)) => (Some(e.message().to_owned()), false),
            Err(JoinError::Panicked(m)) => {
                tracing::error!(node = dn.as_str(), panic = m.as_str(), "runnable panicked");
                (Some(format!("panicked: {m}")), true)
            }
            Err(JoinError::Cancelled) => (Some("aborted".to_owned()), false),
        };
        let now = sh2.env.now();
        let r = sh2.tree.borrow_mut().handle_exit(now, &dn, instance, error.as_deref(), panicked, token.is_cancelled());
        if let Err(e) = r {
            tracing::error!(node = dn.as_str(), error = %e, "exit not processed");
        }
        sh2.after_input();
    }));
}

/// A runnable's view of the tree: its name, its context, and the calls
/// that start children and signal state.
pub struct Ctx<E: Env> {
    shared: Rc<Shared<E>>,
    dn: Rc<str>,
    instance: u64,
    token: CancellationToken,
}

impl<E: Env> Clone for Ctx<E> {
    fn clone(&self) -> Self {
        Ctx { shared: self.shared.clone(), dn: self.dn.clone(), instance: self.instance, token: self.token.clone() }
    }
}

impl<E: Env> Ctx<E> {
    /// The environment.
    pub fn env(&self) -> &E {
        &self.shared.env
    }

    /// The hierarchical name, e.g. `root.a.b`.
    pub fn dn(&self) -> &str {
        &self.dn
    }

    /// This instance's id.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// This instance's context: cancelled when the node, an ancestor or a
    /// group sibling fails, or the supervisor stops.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether the context was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Starts child `name` running `r`.
    pub fn run(&self, name: &str, r: Runnable<E>) -> Result<(), TreeError> {
        self.run_many(vec![(name, r)], false)
    }

    /// Starts children that fail together: when one fails, the others are
    /// cancelled and all restart.
    pub fn run_group(&self, members: Vec<(&str, Runnable<E>)>) -> Result<(), TreeError> {
        self.run_many(members, true)
    }

    fn run_many(&self, members: Vec<(&str, Runnable<E>)>, group: bool) -> Result<(), TreeError> {
        let names: Vec<&str> = members.iter().map(|(n, _)| *n).collect();
        let r = self.shared.tree.borrow_mut().handle_run(&self.dn, self.instance, &names, group);
        if r.is_ok() {
            let mut rs = self.shared.runnables.borrow_mut();
            for (name, r) in members {
                rs.insert(format!("{}.{name}", self.dn), r);
            }
        }
        self.shared.after_input();
        r
    }

    /// Signals Healthy or Done. Done before Healthy, twice, or through the
    /// context of an instance that is no longer current, is a programming
    /// error: returned, logged, and fatal in test mode.
    pub fn signal(&self, signal: RunnableSignal) -> Result<(), TreeError> {
        let now = self.shared.env.now();
        let r =
            self.shared.tree.borrow_mut().handle_signal(now, &self.dn, self.instance, signal == RunnableSignal::Done);
        self.shared.after_input();
        r
    }

    /// Records a liveness heartbeat under this node's name.
    pub fn heartbeat(&self) {
        self.shared.liveness.heartbeat(&self.dn);
    }

    /// The tree's liveness registry.
    pub fn liveness(&self) -> Liveness<E> {
        self.shared.liveness.clone()
    }
}
