//! Join handles shared by both backends: a spawned future is wrapped so that
//! its result, its panic or its abortion reaches the handle the same way on
//! tokio and in the simulator.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::FutureExt;
use futures::channel::oneshot;

use super::{Env, LocalTask};

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Aborted through its handle, or its process ended first.
    #[error("task was cancelled")]
    Cancelled,
    /// The task panicked; the panic message and, where the backend saw it,
    /// ` (at file:line)`.
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

/// Aborts a spawned task: single-threaded, so a flag and the task's waker
/// (no atomics: this sits on every poll of every task).
#[derive(Clone, Default)]
pub struct AbortHandle(Rc<AbortState>);

#[derive(Default)]
struct AbortState {
    aborted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl AbortHandle {
    /// Stops the task at its next suspension point.
    pub fn abort(&self) {
        self.0.aborted.set(true);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Whether [`AbortHandle::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        self.0.aborted.get()
    }
}

/// `fut`, unless aborted first.
struct Abortable<F> {
    fut: Pin<Box<F>>,
    state: Rc<AbortState>,
}

impl<F: Future> Future for Abortable<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.state.aborted.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        let mut w = self.state.waker.borrow_mut();
        match &mut *w {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
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
    let abort = AbortHandle::default();
    let abortable = Abortable { fut: Box::pin(fut), state: abort.0.clone() };
    let name = name.to_owned();
    let task = async move {
        let out = match AssertUnwindSafe(abortable).catch_unwind().await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(JoinError::Cancelled),
            Err(payload) => {
                let message = panic_message(&*payload);
                Err(JoinError::Panicked(match env.take_panic_location() {
                    Some(at) => format!("{message} (at {at})"),
                    None => message,
                }))
            }
        };
        if let Err(Err(JoinError::Panicked(message))) = tx.send(out) {
            env.report_unobserved_panic(&name, &message);
        }
    };
    (JoinHandle { result: rx, abort }, Box::pin(task))
}
