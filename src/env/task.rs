//! Join handles shared by both backends: a spawned future is wrapped so that
//! its result, its panic or its abortion reaches the handle the same way on
//! tokio and in the simulator.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable};

use super::{Env, LocalTask};

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Aborted through its handle, or its process ended first.
    #[error("task was cancelled")]
    Cancelled,
    /// The task panicked; the panic message.
    #[error("task panicked: {0}")]
    Panicked(String),
}

/// Awaits a spawned task's output; dropping it detaches the task.
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    result: oneshot::Receiver<Result<T, JoinError>>,
    abort: AbortHandle,
}

impl<T> JoinHandle<T> {
    /// Stops the task at its next suspension point; joining then yields
    /// [`JoinError::Cancelled`] unless it had already finished.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// A handle that can abort the task without owning its result.
    pub fn abort_handle(&self) -> AbortHandle {
        self.abort.clone()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.result.poll_unpin(cx) {
            Poll::Ready(Ok(out)) => Poll::Ready(out),
            // The task was dropped without finishing: its process ended.
            Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(JoinError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload is not a string".to_owned()
    }
}

/// Wraps `fut` into a task for `env` and the handle that observes it.
pub(super) fn wrap<E: Env, F>(env: E, name: &str, fut: F) -> (JoinHandle<F::Output>, LocalTask)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (tx, rx) = oneshot::channel();
    let (abort, registration) = AbortHandle::new_pair();
    let name = name.to_owned();
    let task = async move {
        let out = match AssertUnwindSafe(Abortable::new(fut, registration))
            .catch_unwind()
            .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(futures::future::Aborted)) => Err(JoinError::Cancelled),
            Err(payload) => Err(JoinError::Panicked(panic_message(&*payload))),
        };
        if let Err(Err(JoinError::Panicked(message))) = tx.send(out) {
            env.report_unobserved_panic(&name, &message);
        }
    };
    (JoinHandle { result: rx, abort }, Box::pin(task))
}
