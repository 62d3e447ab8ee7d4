//! The stop sequence (D6): services stop in reverse registration order, one
//! at a time, each stop function under its own deadline; one that ignores
//! its deadline is abandoned and reported. A second signal cuts the
//! sequence short. Afterwards every internal task is ended.

use std::cell::RefCell;
use std::rc::Rc;

use super::controller::{Inner, Phase};
use crate::env::{CancellationToken, Env, JoinError, Signal};
use crate::supervisor::error::RunError;

/// What `wait` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Process exit status to use: 0, 1 when restart intensity was
    /// exceeded, 128 + signal number when a second signal forced the exit.
    pub code: i32,
    /// Services whose stop returned, in the order they stopped.
    pub stopped: Vec<String>,
    /// Services whose stop ignored its deadline.
    pub abandoned: Vec<String>,
    /// Stop functions that returned an error (or panicked).
    pub failed: Vec<(String, RunError)>,
    /// The second signal that forced the exit.
    pub forced_by: Option<Signal>,
    /// Restart intensity was exceeded.
    pub fatal: bool,
}

async fn sequence<E: Env>(inner: &Rc<Inner<E>>, report: &RefCell<StopReport>) {
    let env = &inner.env;
    let slots: Vec<_> = inner.slots.borrow().iter().rev().cloned().collect();
    for slot in slots {
        let name = slot.service.name.clone();
        slot.token.cancel();
        let Some(stop) = slot.service.stop.clone() else {
            report.borrow_mut().stopped.push(name);
            continue;
        };
        tracing::info!(service = name.as_str(), "stopping service");
        let deadline = CancellationToken::new();
        let task = inner.spawn_value("controller.stop", stop(env.clone(), deadline.clone()));
        let abort = task.abort_handle();
        let joined = if env.mutant("stop-waits-forever") {
            Ok(task.await)
        } else {
            env.timeout(inner.options.stop_timeout, task).await
        };
        let mut r = report.borrow_mut();
        match joined {
            Ok(Ok(Ok(()))) => r.stopped.push(name),
            Ok(Ok(Err(e))) => {
                r.failed.push((name.clone(), e));
                r.stopped.push(name);
            }
            Ok(Err(JoinError::Panicked(m))) => {
                r.failed.push((name.clone(), RunError::new(format!("stop panicked: {m}"))));
                r.stopped.push(name);
            }
            Ok(Err(JoinError::Cancelled)) | Err(_) => {
                deadline.cancel();
                abort.abort();
                tracing::warn!(service = name.as_str(), "stop ignored its deadline: abandoned");
                r.abandoned.push(name);
            }
        }
    }
}

/// Waits for the shutdown, runs the stop sequence, ends every task.
pub(crate) async fn run<E: Env>(inner: Rc<Inner<E>>) -> StopReport {
    let env = inner.env.clone();
    futures::future::select(std::pin::pin!(inner.shutdown.cancelled()), std::pin::pin!(inner.force.cancelled())).await;
    inner.shutdown.cancel();
    inner.phase.set(Phase::Stopping);
    let report = RefCell::new(StopReport::default());
    futures::future::select(std::pin::pin!(sequence(&inner, &report)), std::pin::pin!(inner.force.cancelled())).await;
    let mut report = report.into_inner();
    // The error channel closes: the handler drains it and ends.
    inner.errs.borrow_mut().take();
    if !inner.force.is_cancelled() {
        let loops = std::mem::take(&mut *inner.loops.borrow_mut());
        for h in loops {
            let abort = h.abort_handle();
            if env.timeout(inner.options.stop_timeout, h).await.is_err() {
                abort.abort();
            }
        }
    }
    for t in std::mem::take(&mut *inner.tasks.borrow_mut()) {
        t.abort();
    }
    report.forced_by = inner.forced_by.get();
    report.fatal = inner.fatal.get();
    report.code = match (report.forced_by, report.fatal) {
        (Some(s), _) => 128 + s.number(),
        (None, true) => 1,
        (None, false) => 0,
    };
    inner.phase.set(Phase::Stopped);
    inner.finished.cancel();
    tracing::info!(code = report.code, abandoned = report.abandoned.len(), "controller stopped");
    report
}
