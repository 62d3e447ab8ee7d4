//! Signal handling (D6): installed by `start`, after the options are
//! applied; the first signal begins the stop sequence, a second forces the
//! exit (status 128 + signal number). Ending the handling, by
//! `disable_signals` or at the end of `wait`, drops the handle, which
//! restores the default disposition.

use std::io;
use std::rc::Rc;

use futures::StreamExt;
use futures::channel::mpsc;

use super::controller::Inner;
use crate::env::{Env, Signal};

/// Where shutdown signals come from.
pub enum SignalMode {
    /// The process's own signals (these ones).
    Os(Vec<Signal>),
    /// A custom source: signals sent on this channel; the process's own
    /// dispositions are left alone.
    Channel(mpsc::UnboundedReceiver<Signal>),
    /// None: every signal keeps its default disposition.
    Disabled,
}

/// Starts the handling `inner`'s options ask for.
pub(crate) fn install<E: Env>(inner: &Rc<Inner<E>>) -> io::Result<()> {
    let Some(mode) = inner.signal_mode.borrow_mut().take() else { return Ok(()) };
    match mode {
        SignalMode::Os(set) => {
            let handle = inner.env.handle_signals(&set)?;
            tracing::info!(signals = ?set, "handling signals");
            drop(inner.spawn("controller.signals", os_loop(inner.clone(), handle)));
        }
        SignalMode::Channel(rx) => drop(inner.spawn("controller.signals", channel_loop(inner.clone(), rx))),
        SignalMode::Disabled => {}
    }
    Ok(())
}

fn on_signal<E: Env>(inner: &Inner<E>, s: Signal) {
    let n = inner.signals_seen.get() + 1;
    inner.signals_seen.set(n);
    if n == 1 {
        tracing::info!(signal = %s, "shutdown signal: stopping services");
        inner.shutdown.cancel();
    } else {
        tracing::warn!(signal = %s, code = 128 + s.number(), "second signal: forcing exit");
        inner.forced_by.set(Some(s));
        inner.force.cancel();
    }
}

/// Completes when the controller finished or signal handling was switched
/// off: either ends a signal loop.
async fn stopped<E: Env>(inner: &Inner<E>) {
    futures::future::select(std::pin::pin!(inner.finished.cancelled()), std::pin::pin!(inner.signals_off.cancelled()))
        .await;
}

async fn os_loop<E: Env>(inner: Rc<Inner<E>>, mut handle: E::Signals) {
    loop {
        let stop = std::pin::pin!(stopped(&inner));
        let next = std::pin::pin!(inner.env.next_signal(&mut handle));
        match futures::future::select(stop, next).await {
            futures::future::Either::Left(_) => break,
            futures::future::Either::Right((s, _)) => on_signal(&inner, s),
        }
    }
    drop(handle);
    tracing::info!("signal handling ended: default disposition restored");
}

async fn channel_loop<E: Env>(inner: Rc<Inner<E>>, mut rx: mpsc::UnboundedReceiver<Signal>) {
    loop {
        let stop = std::pin::pin!(stopped(&inner));
        match futures::future::select(stop, rx.next()).await {
            futures::future::Either::Left(_) | futures::future::Either::Right((None, _)) => break,
            futures::future::Either::Right((Some(s), _)) => on_signal(&inner, s),
        }
    }
}
