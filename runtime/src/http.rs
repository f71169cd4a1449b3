//! Serving HTTP with the limits `axum::serve` leaves off: a request's head must arrive within
//! [`HEAD_TIMEOUT`], and a shutdown waits at most [`SHUTDOWN_GRACE`] for connections to finish.
//!
//! Without them, a client that sent half a request head (a mobile client gone mid-request, or
//! a slowloris) held its connection forever, and held up SIGTERM with it: graceful shutdown
//! waits for that request to end.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long a request head may take to arrive, counted from when the connection is ready for
/// one: it also closes keep-alive connections idle that long. Above the 60 s idle timeout of
/// common load balancers (AWS ALB's default), which must not find a connection closed under
/// them.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a shutdown waits for requests in progress before closing their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A pause after an accept that failed for want of resources (file descriptors), not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown`, then waits for the requests in progress (at
/// most [`SHUTDOWN_GRACE`]). `accept` wraps each connection and says what handlers get as
/// `ConnectInfo<I>`.
pub async fn serve<S, I>(
    listener: TcpListener,
    app: Router,
    accept: impl Fn(TcpStream) -> (S, I),
    shutdown: impl Future<Output = ()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    I: Clone + Send + Sync + 'static,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    if !is_per_connection(&error) {
                        tracing::warn!(%error, "cannot accept connections");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, info) = accept(socket);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(info.clone()));
            app.clone().oneshot(request)
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let draining = draining.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    draining.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still busy {SHUTDOWN_GRACE:?} after shutdown began; leaving them"
        );
    }
}

/// Errors about one connection (gone before it was accepted), as opposed to the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// For servers whose handlers need nothing of their connection.
pub fn plain(socket: TcpStream) -> (TcpStream, ()) {
    (socket, ())
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::*;

    /// A server on a free port whose `/slow` answers after 2 s; it stops when the sender is
    /// dropped or used.
    async fn start() -> (
        std::net::SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "done"
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, plain, async {
            let _ = stopped.await;
        }));
        (address, stop, server)
    }

    async fn half_a_request(address: std::net::SocketAddr) -> TcpStream {
        let mut client = TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        client
    }

    // Time is paused: timers fire as soon as nothing else can run, so these take no real time.
    #[tokio::test(start_paused = true)]
    async fn a_request_head_that_never_ends_is_cut_off() {
        let (address, _stop, _server) = start().await;
        let mut client = half_a_request(address).await;
        let started = Instant::now();
        let mut answer = Vec::new();
        tokio::time::timeout(HEAD_TIMEOUT * 2, client.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .unwrap();
        assert!(started.elapsed() >= HEAD_TIMEOUT);
        assert!(started.elapsed() < HEAD_TIMEOUT + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_finishes_requests_but_does_not_wait_for_a_stalled_one() {
        let (address, stop, server) = start().await;
        let _stalled = half_a_request(address).await;
        let mut busy = TcpStream::connect(address).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Both connections are accepted and read before the shutdown begins.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        stop.send(()).unwrap();

        let mut answer = String::new();
        busy.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with("done"),
            "the request in progress finished: {answer}"
        );
        tokio::time::timeout(HEAD_TIMEOUT, server)
            .await
            .expect("the server stops")
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= SHUTDOWN_GRACE && waited < SHUTDOWN_GRACE + Duration::from_secs(1),
            "{waited:?}"
        );
    }
}
