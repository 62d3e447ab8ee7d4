//! Remembers where the last panic on each thread happened, for join
//! errors. A panic hook is process-wide by nature, so this is one of the
//! real backend's exemptions from the no-statics rule; it chains to the
//! hook that was there before (which still prints the panic).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    // Per thread: the location of the panic this thread caught last.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook once per process.
pub(super) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                let at = format!("{}:{}", l.file(), l.line());
                LAST.with(|last| *last.borrow_mut() = Some(at));
            }
            previous(info);
        }));
    });
}

/// The location of this thread's last panic, once.
pub(super) fn take() -> Option<String> {
    LAST.with(|last| last.borrow_mut().take())
}
