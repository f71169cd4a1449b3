//! What a handler can do to its connection, through `ConnectInfo<Peer>`:
//! - [`Kill`] it. A Server-Sent Events client that stops reading blocks hyper's writes, so the
//!   response stream is no longer polled and cannot end itself; its watchdog closes the socket
//!   instead.
//! - [`Detach`] its socket from hyper once the response head is on the wire, for a stream to be
//!   served straight on the socket (see `stream::direct`). A stream may stay open for hours;
//!   this way it keeps neither hyper's buffers (about 24 KiB per connection) nor its task.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use futures::task::AtomicWaker;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Cuts one connection: its pending and future reads and writes fail, so hyper drops it.
#[derive(Clone, Default)]
pub struct Kill(Arc<KillState>);

#[derive(Default)]
struct KillState {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl Kill {
    pub fn kill(&self) {
        self.0.killed.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// `Some(error)` once killed; otherwise registers the waker so a kill wakes the task.
    fn check(&self, cx: &Context<'_>) -> Option<io::Error> {
        self.0.waker.register(cx.waker());
        self.0.killed.load(Ordering::Acquire).then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by the server",
            )
        })
    }
}

type Then = Box<dyn FnOnce(TcpStream) + Send>;

/// Takes an HTTP/1.1 connection's socket from hyper after the current response's head.
///
/// After a 101, see [`Detach::after_upgrade`]. Otherwise the handler answers with
/// [`Detach::body`]. Once hyper has flushed the head, that body ends,
/// and from then on the stream hides the socket from hyper: writes (the chunked body's last
/// chunk) are dropped and reads see the client hang up. hyper closes the connection and drops
/// the stream, which hands the socket, mid-body, to the handler's `then`.
#[derive(Clone, Default)]
pub struct Detach(Arc<DetachState>);

#[derive(Default)]
struct DetachState {
    phase: AtomicU8,
    /// The response body, waiting for the head to be flushed.
    body: AtomicWaker,
    then: Mutex<Option<Then>>,
}

// Phases; 0, the default, is "attached".
/// A detaching response is on its way: the next flush after a write sends its head.
const REQUESTED: u8 = 1;
const HEAD_SENT: u8 = 2;
const DETACHED: u8 = 3;

impl Detach {
    /// The body of a response after which `then` gets the socket. Its head must be the last
    /// thing hyper writes before the socket changes hands: a chunked (HTTP/1.1) response.
    pub fn body(&self, then: impl FnOnce(TcpStream) + Send + 'static) -> Body {
        *self.0.then.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(then));
        self.0.phase.store(REQUESTED, Ordering::Release);
        let state = self.0.clone();
        Body::from_stream(futures::stream::poll_fn(move |cx| {
            state.body.register(cx.waker());
            match state.phase.compare_exchange(
                HEAD_SENT,
                DETACHED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => Poll::Ready(None::<Result<Bytes, io::Error>>),
                Err(_) => Poll::Pending,
            }
        }))
    }

    /// The socket once hyper completes `upgrade` (after a 101 response), with what the client
    /// sent after its handshake that hyper had already read. `None` if the upgrade failed.
    pub async fn after_upgrade(&self, upgrade: OnUpgrade) -> Option<(TcpStream, Vec<u8>)> {
        let upgraded = upgrade.await.ok()?;
        let (socket_tx, socket) = tokio::sync::oneshot::channel();
        *self.0.then.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Box::new(move |socket| {
                let _ = socket_tx.send(socket);
            }));
        self.0.phase.store(DETACHED, Ordering::Release);
        // hyper's buffer, then the end the detached stream shows; dropping it hands the
        // socket over.
        let mut read = Vec::new();
        let mut upgraded = TokioIo::new(upgraded);
        upgraded.read_to_end(&mut read).await.ok()?;
        drop(upgraded);
        Some((socket.await.ok()?, read))
    }

    fn phase(&self) -> u8 {
        self.0.phase.load(Ordering::Acquire)
    }
}

pub struct KillableStream {
    /// `None` only once handed over (or on the way to it).
    inner: Option<TcpStream>,
    kill: Kill,
    detach: Detach,
    /// Whether hyper wrote since a detach was requested: the head, then.
    wrote: bool,
}

impl KillableStream {
    fn socket(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn note_written(&mut self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) && self.detach.phase() == REQUESTED {
            self.wrote = true;
        }
    }
}

impl Drop for KillableStream {
    fn drop(&mut self) {
        if self.detach.phase() != DETACHED {
            return;
        }
        let then = self
            .detach
            .0
            .then
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(then), Some(socket)) = (then, self.inner.take()) {
            then(socket);
        }
    }
}

/// What handlers learn about their connection.
#[derive(Clone)]
pub struct Peer {
    pub kill: Kill,
    pub detach: Detach,
    /// The client's address: what rate limits count anonymous callers by.
    pub address: Option<std::net::IpAddr>,
}

/// Wraps an accepted connection: what hyper reads and writes, and what its handlers get.
pub fn accept(socket: TcpStream) -> (KillableStream, Peer) {
    // Small writes (stream events) go out at once.
    let _ = socket.set_nodelay(true);
    let peer = Peer {
        kill: Kill::default(),
        detach: Detach::default(),
        address: socket.peer_addr().ok().map(|address| address.ip()),
    };
    let stream = KillableStream {
        inner: Some(socket),
        kill: peer.kill.clone(),
        detach: peer.detach.clone(),
        wrote: false,
    };
    (stream, peer)
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        if self.detach.phase() == DETACHED {
            // The client seems to hang up, so hyper closes the connection.
            return Poll::Ready(Ok(()));
        }
        self.socket()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        if self.detach.phase() == DETACHED {
            return Poll::Ready(Ok(buf.len()));
        }
        let result = self.socket()?.poll_write(cx, buf);
        self.note_written(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        if self.detach.phase() == DETACHED {
            return Poll::Ready(Ok(()));
        }
        let result = self.socket()?.poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) && self.wrote {
            self.wrote = false;
            if self.detach.phase() == REQUESTED {
                self.detach.0.phase.store(HEAD_SENT, Ordering::Release);
                self.detach.0.body.wake();
            }
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.detach.phase() == DETACHED {
            return Poll::Ready(Ok(()));
        }
        self.socket()?.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        if self.detach.phase() == DETACHED {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let result = self.socket()?.poll_write_vectored(cx, bufs);
        self.note_written(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }
}
