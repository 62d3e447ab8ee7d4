//! S's fd store: one copy of every listener of the service, held for the
//! whole life of S so a listener never closes while generations come and
//! go. After a restart S refills it from the copies a generation attaches
//! to its Hello; it binds a listener itself only when nobody holds one.

use std::io;

use crate::env::{Addr, Env};

/// The listeners, by name, in the order generations receive them.
pub(super) struct FdStore<E: Env> {
    entries: Vec<(String, Addr, Option<E::Fd>)>,
}

impl<E: Env> FdStore<E> {
    pub(super) fn new(listeners: &[(String, Addr)]) -> Self {
        FdStore { entries: listeners.iter().map(|(n, a)| (n.clone(), a.clone(), None)).collect() }
    }

    /// Holds `fd` as the listener called `name` (one the host bound);
    /// an unknown name is closed.
    pub(super) fn hold(&mut self, name: &str, fd: E::Fd) {
        match self.entries.iter_mut().find(|e| e.0 == name) {
            Some(e) => e.2 = Some(fd),
            None => tracing::warn!(listener = name, "fd store: a held listener has no address in the setup; closed"),
        }
    }

    /// Takes, for every listener it lacks, the fd a generation sent with
    /// its Hello under the same name; the rest are closed.
    pub(super) fn refill(&mut self, names: &[String], fds: Vec<E::Fd>) {
        for (name, fd) in names.iter().zip(fds) {
            if let Some(e) = self.entries.iter_mut().find(|e| &e.0 == name && e.2.is_none()) {
                tracing::info!(listener = %name, "fd store: copy recovered from a generation");
                e.2 = Some(fd);
            }
        }
    }

    /// Binds every listener the store lacks (nobody holds it: a fresh
    /// start, or every holder died).
    pub(super) fn bind_missing(&mut self, env: &E) -> io::Result<()> {
        for (name, addr, fd) in &mut self.entries {
            if fd.is_none() {
                let l = env.listen(addr)?;
                tracing::info!(listener = %name, %addr, "fd store: listener bound");
                *fd = Some(env.listener_into_fd(l));
            }
        }
        Ok(())
    }

    /// A copy of every listener for a child, with names; `give_away` is
    /// the mutant `handoff-listener-closed-early`: the store's own copies
    /// go to the child and the store keeps none.
    pub(super) fn for_child(&mut self, env: &E, give_away: bool) -> io::Result<Vec<(String, E::Fd)>> {
        let mut out = Vec::new();
        for (name, _, fd) in &mut self.entries {
            let copy = match fd {
                Some(f) if !give_away => env.dup_fd(f)?,
                Some(_) => fd.take().ok_or_else(|| io::Error::other("fd store emptied"))?,
                None => return Err(io::Error::other(format!("fd store has no listener {name}"))),
            };
            out.push((name.clone(), copy));
        }
        Ok(out)
    }
}
