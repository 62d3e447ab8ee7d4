//! Stream sockets as pairs of one-way pipes and listeners with a backlog.
//! Chunks carry the time they become readable (network delay,
//! in order per direction) and the fds sent with them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;

use warden::env::Addr;

use super::fd::Desc;

/// Bytes written in one call, with the fds attached to them.
pub struct Chunk {
    /// The bytes not yet read.
    pub data: Vec<u8>,
    /// Read position in `data`.
    pub pos: usize,
    /// Fds sent with the bytes (each holds a reference).
    pub fds: Vec<Rc<Desc>>,
    /// Virtual time the bytes can be read.
    pub ready_at: u64,
    /// Its flow in a Chrome trace (0: none, or already drawn).
    pub flow: u64,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        for d in self.fds.drain(..) {
            d.release();
        }
    }
}

/// One direction of a connection.
#[derive(Default)]
pub struct Pipe {
    /// Unread chunks, in order.
    pub chunks: VecDeque<Chunk>,
    /// The writer closed its side: EOF after the chunks.
    pub write_closed: bool,
    /// The reader is gone: writes fail with a broken pipe.
    pub read_closed: bool,
    /// The connection was reset.
    pub reset: bool,
    /// The task waiting to read.
    pub reader: Option<Waker>,
    /// Chunks become readable no earlier than this (keeps order).
    pub last_ready_at: u64,
}

impl Pipe {
    /// Wakes the reader.
    pub fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

/// Where a connection's ends live (for delays and partitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Host of this end.
    pub local: u32,
    /// Host of the other end.
    pub remote: u32,
    /// A Unix socket (fd passing allowed, no network delay).
    pub unix: bool,
}

/// One end of a connected stream.
pub struct StreamEnd {
    /// What this end reads.
    pub rx: Rc<RefCell<Pipe>>,
    /// What this end writes.
    pub tx: Rc<RefCell<Pipe>>,
    /// Hosts and kind.
    pub route: Route,
}

impl StreamEnd {
    /// A connected pair.
    pub fn pair(a_host: u32, b_host: u32, unix: bool) -> (StreamEnd, StreamEnd) {
        let ab = Rc::new(RefCell::new(Pipe::default()));
        let ba = Rc::new(RefCell::new(Pipe::default()));
        (
            StreamEnd { rx: ba.clone(), tx: ab.clone(), route: Route { local: a_host, remote: b_host, unix } },
            StreamEnd { rx: ab, tx: ba, route: Route { local: b_host, remote: a_host, unix } },
        )
    }

    /// The last fd of this end closed: the peer reads EOF, its writes fail.
    pub fn close(&self) {
        {
            let mut tx = self.tx.borrow_mut();
            tx.write_closed = true;
            tx.wake_reader();
        }
        let dropped: Vec<Chunk> = {
            let mut rx = self.rx.borrow_mut();
            rx.read_closed = true;
            rx.chunks.drain(..).collect()
        };
        drop(dropped);
    }

    /// Both directions fail with a reset (a crashed host, a reset fault).
    pub fn reset(&self) {
        for p in [&self.rx, &self.tx] {
            let mut p = p.borrow_mut();
            p.reset = true;
            p.wake_reader();
        }
    }
}

/// A listening socket.
pub struct ListenerState {
    /// Its address.
    pub addr: Addr,
    /// Its host.
    pub host: u32,
    /// Whether any fd still refers to it.
    pub open: bool,
    /// Connections completed but not accepted (server ends).
    pub queue: VecDeque<Rc<Desc>>,
    /// Most connections it queues (as listen(2)'s backlog).
    pub backlog: usize,
    /// The task waiting in accept.
    pub acceptor: Option<Waker>,
    /// Clients waiting for room in the queue (blocking Unix connect).
    pub connectors: Vec<Waker>,
}

/// The backlog every listener gets (tokio's and Linux's usual 128).
pub const BACKLOG: usize = 128;

impl ListenerState {
    /// A new open listener.
    pub fn new(addr: Addr, host: u32) -> Rc<RefCell<ListenerState>> {
        Rc::new(RefCell::new(ListenerState {
            addr,
            host,
            open: true,
            queue: VecDeque::new(),
            backlog: BACKLOG,
            acceptor: None,
            connectors: Vec::new(),
        }))
    }

    /// Closes it: queued connections are dropped (their clients see EOF),
    /// waiting clients are refused.
    pub fn close(this: &Rc<RefCell<ListenerState>>) {
        let (queued, waiters) = {
            let mut l = this.borrow_mut();
            l.open = false;
            (l.queue.drain(..).collect::<Vec<_>>(), std::mem::take(&mut l.connectors))
        };
        for d in queued {
            d.release();
        }
        for w in waiters {
            w.wake();
        }
    }
}
