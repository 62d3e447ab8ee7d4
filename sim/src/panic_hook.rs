//! Keeps panics of simulated tasks quiet: they are part of a run's outcome
//! (a join error, a crash failure), reported through the run, not printed
//! by the default hook from the middle of an explorer sweep. Any other
//! panic (the simulator's own, a model's setup) prints as usual.

use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    static QUIET: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Where this thread's last panic happened (`file:line`), once.
pub(crate) fn take_location() -> Option<String> {
    LOCATION.with(|l| l.borrow_mut().take())
}

/// Installs the hook once per OS process.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                LOCATION.with(|loc| *loc.borrow_mut() = Some(format!("{}:{}", l.file(), l.line())));
            }
            // Only panics of simulated tasks are part of a run's outcome; a
            // panic of the simulator itself (or of model setup) always prints.
            let in_task = IN_TASK.with(Cell::get);
            let handled = in_task
                && QUIET.with(|q| {
                    let mut q = q.borrow_mut();
                    let Some(list) = q.as_mut() else { return false };
                    let msg = warden::env::panic_message(info.payload());
                    let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                    list.push(format!("{msg}{at}"));
                    true
                });
            if !handled {
                default(info);
            }
        }));
    });
}

/// Marks the start (`true`) and the end of a poll of a simulated task,
/// whose panics are kept quiet.
#[inline]
pub(crate) fn set_in_task(on: bool) {
    IN_TASK.with(|t| t.set(on));
}

/// Whether a poll of a simulated task is under way (or unwound).
pub(crate) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// From now until [`end_quiet`], panics of simulated tasks on this thread
/// are collected.
pub(crate) fn begin_quiet() {
    install();
    QUIET.with(|q| *q.borrow_mut() = Some(Vec::new()));
}

/// Stops collecting; returns the panics seen ("message at file:line").
pub(crate) fn end_quiet() -> Vec<String> {
    QUIET.with(|q| q.borrow_mut().take().unwrap_or_default())
}
