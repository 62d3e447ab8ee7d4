//! Wakers that carry only a task id.
//!
//! Waking pushes the id onto this thread's wake list, which the executor
//! drains after every poll and timer pass: clone and drop cost nothing and
//! no allocation backs a waker. The id carries the run's epoch, so a waker
//! that outlived its run wakes nothing in the next one.

use std::cell::RefCell;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::TaskId;

thread_local! {
    static WOKEN: RefCell<Vec<TaskId>> = const { RefCell::new(Vec::new()) };
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);

fn clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    wake_id(TaskId::from_word(data as usize as u64));
}

fn drop_waker(_: *const ()) {}

/// Wakes `id`. (Whether it woke itself, a yield, the executor tells from
/// which task it was polling when it collects the wake.)
#[inline]
pub(crate) fn wake_id(id: TaskId) {
    WOKEN.with(|w| w.borrow_mut().push(id));
}

/// A waker for task `id`.
pub(crate) fn waker(id: TaskId) -> Waker {
    // SAFETY: the vtable functions never dereference `data`; it is the id
    // stored in a pointer-sized integer.
    unsafe { Waker::from_raw(RawWaker::new(id.word() as usize as *const (), &VTABLE)) }
}

/// The task a waker of this executor wakes; `None` for any other waker
/// (a combinator's own), which must then be kept and woken as it is.
#[inline]
pub(crate) fn task_of(w: &Waker) -> Option<TaskId> {
    std::ptr::eq(w.vtable(), &VTABLE).then(|| TaskId::from_word(w.data() as usize as u64))
}

/// Hands every id woken since the last call to `f`, in order, and
/// forgets them. `f` must not wake a task (nothing runs user code here).
#[inline]
pub(crate) fn drain_woken(mut f: impl FnMut(TaskId)) {
    WOKEN.with(|w| {
        let mut w = w.borrow_mut();
        // A walk, then one clear: cheaper than a `Drain` for the one or
        // two ids a poll or a timer usually wakes.
        for &id in w.iter() {
            f(id);
        }
        w.clear();
    });
}

/// Whether a wake is waiting to be collected.
#[inline]
pub(crate) fn any_woken() -> bool {
    WOKEN.with(|w| !w.borrow().is_empty())
}

/// Forgets wakes left over from an earlier run on this thread.
pub(crate) fn reset() {
    WOKEN.with(|w| w.borrow_mut().clear());
}
