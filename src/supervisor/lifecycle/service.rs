//! A service as the lifecycle controller sees it: start and stop functions,
//! probes, a restart policy and a valid-error predicate, built fluently.

use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::LocalBoxFuture;

use super::outcome::RestartPolicy;
use super::slot::ServiceSpec;
use crate::env::{CancellationToken, Env};
use crate::supervisor::error::{RunError, RunResult};

/// Starts a service; returns when it stops serving (or at once when it
/// serves in the background). The token is cancelled when it must stop.
pub type StartFn<E> = Rc<dyn Fn(E, CancellationToken) -> LocalBoxFuture<'static, RunResult>>;
/// Stops a service; the token is cancelled at its deadline.
pub type StopFn<E> = Rc<dyn Fn(E, CancellationToken) -> LocalBoxFuture<'static, RunResult>>;
/// An asynchronous readiness check.
pub type ReadinessCheck<E> = Rc<dyn Fn(E) -> LocalBoxFuture<'static, bool>>;
/// A synchronous probe (liveness); a panic counts as failing.
pub type Probe = Rc<dyn Fn() -> bool>;
/// Errors that end a run as if it were clean (no restart, not counted).
pub type ValidError = Rc<dyn Fn(&RunError) -> bool>;

/// One supervised service.
pub struct Service<E: Env> {
    pub(crate) name: String,
    pub(crate) start: Option<StartFn<E>>,
    pub(crate) stop: Option<StopFn<E>>,
    pub(crate) readiness: Option<ReadinessCheck<E>>,
    pub(crate) liveness: Option<Probe>,
    pub(crate) policy: RestartPolicy,
    pub(crate) valid_error: Option<ValidError>,
}

impl<E: Env> Service<E> {
    /// A service called `name` with no functions yet: a missing start or
    /// stop is a no-op (seed 003 D5), never a crash.
    pub fn new(name: impl Into<String>) -> Self {
        Service {
            name: name.into(),
            start: None,
            stop: None,
            readiness: None,
            liveness: None,
            policy: RestartPolicy::OnFailure,
            valid_error: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the lifecycle machine needs to know of it.
    pub fn spec(&self) -> ServiceSpec {
        ServiceSpec {
            name: self.name.clone(),
            policy: self.policy,
            has_stop: self.stop.is_some(),
            has_readiness: self.readiness.is_some(),
            has_liveness: self.liveness.is_some(),
        }
    }

    /// The start function.
    pub fn with_start<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(E, CancellationToken) -> Fut + 'static,
        Fut: Future<Output = RunResult> + 'static,
    {
        self.start = Some(Rc::new(move |e, t| f(e, t).boxed_local()));
        self
    }

    /// The stop function.
    pub fn with_stop<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(E, CancellationToken) -> Fut + 'static,
        Fut: Future<Output = RunResult> + 'static,
    {
        self.stop = Some(Rc::new(move |e, t| f(e, t).boxed_local()));
        self
    }

    /// An asynchronous readiness check, run periodically.
    pub fn with_readiness<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(E) -> Fut + 'static,
        Fut: Future<Output = bool> + 'static,
    {
        self.readiness = Some(Rc::new(move |e| f(e).boxed_local()));
        self
    }

    /// A liveness probe.
    pub fn with_liveness(mut self, f: impl Fn() -> bool + 'static) -> Self {
        self.liveness = Some(Rc::new(f));
        self
    }

    /// The restart policy.
    pub fn with_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Errors to treat as a clean end (e.g. "server closed").
    pub fn with_valid_error(mut self, f: impl Fn(&RunError) -> bool + 'static) -> Self {
        self.valid_error = Some(Rc::new(f));
        self
    }
}
