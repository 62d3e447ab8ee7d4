//! Join handles shared by both backends: a spawned future is wrapped so that
//! its result, its panic or its abortion reaches the handle the same way on
//! tokio and in the simulator.
//!
//! A spawn allocates the boxed task (the future inline in its wrapper) and
//! one shared state for the handle: no channel, no atomics (one thread
//! drives core code in both backends).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

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

/// What a task and its handle share.
struct Shared<T> {
    /// The outcome, once the task finished (taken by the handle).
    result: RefCell<Option<Result<T, JoinError>>>,
    /// The task ended (finished, panicked, aborted or dropped).
    done: Cell<bool>,
    /// The handle is gone: a panic nobody observes must be reported.
    detached: Cell<bool>,
    aborted: Cell<bool>,
    /// The task's waker, to wake it when it is aborted.
    task_waker: RefCell<Option<Waker>>,
    /// The handle's waker, to wake it when the task ends.
    join_waker: RefCell<Option<Waker>>,
}

impl<T> Shared<T> {
    fn finish(&self, out: Result<T, JoinError>) {
        *self.result.borrow_mut() = Some(out);
        self.done.set(true);
        if let Some(w) = self.join_waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The type-erased abort side of a task's shared state.
trait Abort {
    fn abort(&self);
    fn is_aborted(&self) -> bool;
}

impl<T> Abort for Shared<T> {
    fn abort(&self) {
        self.aborted.set(true);
        if let Some(w) = self.task_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn is_aborted(&self) -> bool {
        self.aborted.get()
    }
}

/// Awaits a spawned task's output; dropping it detaches the task.
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    shared: Rc<Shared<T>>,
}

impl<T: 'static> JoinHandle<T> {
    /// Stops the task at its next suspension point; joining then yields
    /// [`JoinError::Cancelled`] unless it had already finished.
    pub fn abort(&self) {
        self.shared.abort();
    }

    /// A handle that can abort the task without owning its result.
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle(Some(self.shared.clone()))
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.shared.result.borrow_mut().take() {
            return Poll::Ready(out);
        }
        if self.shared.done.get() {
            // Polled again after its outcome was taken.
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        let mut w = self.shared.join_waker.borrow_mut();
        match &mut *w {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.shared.detached.set(true);
    }
}

/// Aborts a spawned task: single-threaded, so flags and the task's waker.
#[derive(Clone, Default)]
pub struct AbortHandle(Option<Rc<dyn Abort>>);

impl AbortHandle {
    /// Stops the task at its next suspension point.
    pub fn abort(&self) {
        if let Some(a) = &self.0 {
            a.abort();
        }
    }

    /// Whether [`AbortHandle::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        self.0.as_ref().is_some_and(|a| a.is_aborted())
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

pin_project_lite::pin_project! {
    /// A spawned future with what it shares with its handle; its end (or
    /// its being dropped unfinished, when its process ends) reaches the
    /// handle.
    struct Task<E: Env, F: Future> {
        #[pin]
        fut: F,
        shared: Rc<Shared<F::Output>>,
        env: E,
        name: Box<str>,
    }

    impl<E: Env, F: Future> PinnedDrop for Task<E, F> {
        fn drop(this: Pin<&mut Self>) {
            if !this.shared.done.get() {
                // Dropped unfinished: its process ended.
                this.shared.finish(Err(JoinError::Cancelled));
            }
        }
    }
}

impl<E: Env, F: Future> Future for Task<E, F> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.shared.done.get() {
            return Poll::Ready(());
        }
        if this.shared.aborted.get() {
            this.shared.finish(Err(JoinError::Cancelled));
            return Poll::Ready(());
        }
        let fut = this.fut;
        let out = match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => {
                let mut w = this.shared.task_waker.borrow_mut();
                match &mut *w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(v)) => Ok(v),
            Err(payload) => {
                let message = panic_message(&*payload);
                Err(JoinError::Panicked(match this.env.take_panic_location() {
                    Some(at) => format!("{message} (at {at})"),
                    None => message,
                }))
            }
        };
        if let Err(JoinError::Panicked(message)) = &out
            && this.shared.detached.get()
        {
            // Nobody will see it through a handle.
            this.env.report_unobserved_panic(this.name, message);
        }
        this.shared.finish(out);
        Poll::Ready(())
    }
}

/// Wraps `fut` into a task for `env` and the handle that observes it.
pub(super) fn wrap<E: Env, F>(env: E, name: &str, fut: F) -> (JoinHandle<F::Output>, LocalTask)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let shared = Rc::new(Shared {
        result: RefCell::new(None),
        done: Cell::new(false),
        detached: Cell::new(false),
        aborted: Cell::new(false),
        task_waker: RefCell::new(None),
        join_waker: RefCell::new(None),
    });
    let task = Task { fut, shared: shared.clone(), env, name: name.into() };
    (JoinHandle { shared }, Box::pin(task))
}
