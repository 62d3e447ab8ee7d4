//! Streams of any backend as tokio's `AsyncRead` + `AsyncWrite`, so tokio
//! codecs, `BufReader`, `copy` or hyper run over an [`Env`]'s sockets in
//! both the simulator and the real OS.
//!
//! Each pending read or write is one boxed future of the backend's own
//! call; a read brings up to [`READ_CHUNK`] bytes and keeps what the
//! caller's buffer could not take for the next read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Env;

/// The most one read asks the backend for.
pub const READ_CHUNK: usize = 16 * 1024;

type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>>>>;

/// An [`Env`] stream as `AsyncRead` + `AsyncWrite`.
pub struct IoStream<E: Env> {
    env: E,
    stream: Rc<E::Stream>,
    read: Option<Pending<Vec<u8>>>,
    /// Bytes read but not yet handed out.
    buffered: Vec<u8>,
    taken: usize,
    write: Option<Pending<usize>>,
    shut: bool,
}

// Nothing of it is pinned in place: its pending futures are boxed.
impl<E: Env> Unpin for IoStream<E> {}

impl<E: Env> IoStream<E> {
    /// Wraps `stream` of `env`.
    pub fn new(env: E, stream: E::Stream) -> Self {
        IoStream { env, stream: Rc::new(stream), read: None, buffered: Vec::new(), taken: 0, write: None, shut: false }
    }

    /// The stream, once no read or write is pending (`None` otherwise).
    pub fn into_inner(self) -> Option<E::Stream> {
        if self.read.is_some() || self.write.is_some() {
            return None;
        }
        Rc::try_unwrap(self.stream).ok()
    }
}

impl<E: Env> AsyncRead for IoStream<E> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken == this.buffered.len() {
            let fut = this.read.get_or_insert_with(|| {
                let (env, stream) = (this.env.clone(), this.stream.clone());
                Box::pin(async move {
                    let mut chunk = vec![0u8; READ_CHUNK];
                    let n = env.read(&stream, &mut chunk).await?;
                    chunk.truncate(n);
                    Ok(chunk)
                })
            });
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    this.read = None;
                    // An empty chunk is end of stream: nothing is put in buf.
                    this.buffered = r?;
                    this.taken = 0;
                }
            }
        }
        let n = (this.buffered.len() - this.taken).min(buf.remaining());
        buf.put_slice(&this.buffered[this.taken..this.taken + n]);
        this.taken += n;
        Poll::Ready(Ok(()))
    }
}

impl<E: Env> AsyncWrite for IoStream<E> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let fut = this.write.get_or_insert_with(|| {
            // A caller that got Pending calls again with the same bytes;
            // those copied here are the ones written.
            let (env, stream, data) = (this.env.clone(), this.stream.clone(), buf.to_vec());
            Box::pin(async move { env.write_all(&stream, &data).await.map(|()| data.len()) })
        });
        let out = fut.as_mut().poll(cx);
        if out.is_ready() {
            this.write = None;
        }
        out
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(fut) = self.write.as_mut() else { return Poll::Ready(Ok(())) };
        let out = fut.as_mut().poll(cx).map_ok(|_| ());
        if out.is_ready() {
            self.write = None;
        }
        out
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.as_mut().poll_flush(cx)?.is_pending() {
            return Poll::Pending;
        }
        if !self.shut {
            self.shut = true;
            self.env.shutdown_write(&self.stream)?;
        }
        Poll::Ready(Ok(()))
    }
}
