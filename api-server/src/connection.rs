//! Connections the server can cut: every TCP stream served by hyper carries a [`Kill`] switch
//! that a handler reaches through `ConnectInfo`. A Server-Sent Events client that stops reading
//! blocks hyper's writes, so the response stream is no longer polled and cannot end itself;
//! its watchdog closes the socket instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

/// The connections [`accept`](crate::accept) hands to hyper.
pub struct Incoming {
    pub(crate) connections: tokio::sync::mpsc::Receiver<(KillableStream, SocketAddr)>,
    pub(crate) local: SocketAddr,
}

pub struct KillableStream {
    inner: TcpStream,
    kill: Kill,
    /// What was read from the socket before hyper got it: hyper reads this first.
    read_ahead: Bytes,
}

impl KillableStream {
    pub fn new(inner: TcpStream, read_ahead: Bytes) -> Self {
        Self {
            inner,
            kill: Kill::default(),
            read_ahead,
        }
    }
}

impl Listener for Incoming {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop stops only at shutdown, after which this is not called again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// What handlers learn about their connection.
#[derive(Clone)]
pub struct Peer {
    pub kill: Kill,
}

impl Connected<IncomingStream<'_, Incoming>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Incoming>) -> Self {
        Self {
            kill: stream.io().kill.clone(),
        }
    }
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
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead.split_to(n));
            if self.read_ahead.is_empty() {
                // An empty view still holds the whole buffer it was cut from.
                self.read_ahead = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.kill.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
