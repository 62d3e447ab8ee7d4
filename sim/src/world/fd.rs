//! Open file descriptions, reference counted as in Linux: a description
//! stays open while any fd (in any process, or in flight in an SCM_RIGHTS
//! message) refers to it, and closes when the last one goes.
//!
//! Closing only touches the description's own state (marking a listener
//! closed, ending a pipe), so it is safe from any destructor.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::disk::FileRef;
use super::stream::{ListenerState, StreamEnd};
use super::udp::UdpState;

/// What a description is.
pub enum DescKind {
    /// A listening socket.
    Listener(Rc<RefCell<ListenerState>>),
    /// One end of a connected stream.
    Stream(Rc<StreamEnd>),
    /// A bound UDP socket.
    Udp(Rc<RefCell<UdpState>>),
    /// An open file.
    File(FileRef),
}

/// An open file description.
pub struct Desc {
    refs: Cell<u32>,
    /// What it is.
    pub kind: DescKind,
}

impl Desc {
    /// A description with one reference (its first fd).
    pub fn new(kind: DescKind) -> Rc<Desc> {
        Rc::new(Desc { refs: Cell::new(1), kind })
    }

    /// One more fd refers to it.
    pub fn acquire(&self) {
        self.refs.set(self.refs.get() + 1);
    }

    /// One fd fewer; the last one closes it.
    pub fn release(&self) {
        let r = self.refs.get().saturating_sub(1);
        self.refs.set(r);
        if r == 0 {
            self.close();
        }
    }

    /// Closes it whatever the count (only the planted bug
    /// `listener-closed-with-first-holder` does this to a shared listener).
    pub fn close(&self) {
        match &self.kind {
            DescKind::Listener(l) => ListenerState::close(l),
            DescKind::Stream(s) => s.close(),
            DescKind::Udp(u) => u.borrow_mut().open = false,
            DescKind::File(_) => {}
        }
    }
}
