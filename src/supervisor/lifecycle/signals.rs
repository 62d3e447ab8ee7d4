//! Where the controller's shutdown signals come from (D6). Handling is
//! installed by `start`, after the options are applied; dropping the
//! source (when signal handling is switched off or the controller stopped)
//! restores the default disposition. What a signal means is the machine's
//! decision, not this file's.

use std::io;

use futures::StreamExt;
use futures::channel::mpsc;

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

/// Installed signal handling.
pub(super) enum SignalSource<E: Env> {
    /// The process's signals, handled until this is dropped.
    Os(E::Signals),
    /// A custom channel.
    Channel(mpsc::UnboundedReceiver<Signal>),
}

impl SignalMode {
    /// Installs the handling this mode asks for (`None`: disabled).
    pub(super) fn install<E: Env>(self, env: &E) -> io::Result<Option<SignalSource<E>>> {
        match self {
            SignalMode::Os(set) => {
                let handle = env.handle_signals(&set)?;
                tracing::info!(signals = ?set, "handling signals");
                Ok(Some(SignalSource::Os(handle)))
            }
            SignalMode::Channel(rx) => Ok(Some(SignalSource::Channel(rx))),
            SignalMode::Disabled => Ok(None),
        }
    }
}

impl<E: Env> SignalSource<E> {
    /// The next signal; `None` once a custom channel closed.
    pub(super) async fn next(&mut self, env: &E) -> Option<Signal> {
        match self {
            SignalSource::Os(handle) => Some(env.next_signal(handle).await),
            SignalSource::Channel(rx) => rx.next().await,
        }
    }
}
