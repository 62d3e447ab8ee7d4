//! Supervision: the runnable tree (seed 000), run-with-recover and the
//! liveness registry (seed 002), and the service lifecycle controller
//! (seed 003).
//!
//! Core code: time, tasks, randomness and signals come through
//! [`crate::env::Env`]; state machines ([`NodeMachine`], [`Tree`],
//! [`lifecycle::Lifecycle`], [`Backoff`], [`IntensityWindow`],
//! [`lifecycle::classify`]) are plain data driven by thin async drivers
//! ([`Supervisor`], [`run_with_recover`], [`lifecycle::Controller`]).
//!
//! ```no_run
//! use warden::supervisor::{runnable, RunnableSignal, Supervisor, TreeConfig};
//! use warden::env::{CancellationToken, Env};
//!
//! async fn serve<E: Env>(env: E) {
//!     let root = runnable(|ctx: warden::supervisor::Ctx<E>| async move {
//!         ctx.run("worker", runnable(|ctx: warden::supervisor::Ctx<E>| async move {
//!             ctx.signal(RunnableSignal::Healthy)?;
//!             ctx.token().cancelled().await;
//!             Ok(())
//!         }))?;
//!         ctx.signal(RunnableSignal::Healthy)?;
//!         ctx.token().cancelled().await;
//!         Ok(())
//!     });
//!     let sup = Supervisor::new(env, root, TreeConfig::default());
//!     let _ = sup.run(CancellationToken::new()).await;
//! }
//! ```

mod backoff;
mod error;
mod gc;
mod intensity;
pub mod lifecycle;
mod liveness;
mod metrics;
mod recover;
mod runner;
mod state;
mod tree;

pub use backoff::{Backoff, BackoffConfig};
pub use error::{NotSettled, RunError, RunResult, SupervisorError, TreeError};
pub use intensity::{Intensity, IntensityExceeded, IntensityWindow};
pub use liveness::Liveness;
pub use metrics::Metrics;
pub use recover::{RecoverExit, run_with_recover};
pub use runner::{Ctx, Runnable, RunnableSignal, Supervisor, runnable};
pub use state::{IllegalTransition, NodeEvent, NodeMachine, NodeState};
pub use tree::{Action, PendingRestart, ROOT, StateChange, Tree, TreeBugs, TreeConfig};
