//! Accepting connections. Most are served by hyper (through axum's `serve`). A connection
//! whose first request is one a handler can take over - a Server-Sent Events stream or a
//! plain WebSocket - is answered here instead: the request goes through the same router, and
//! if the handler [takes the connection over](Takeover), it gets the bare socket once the
//! response head is written. A stream may stay open for hours; this way it holds neither
//! hyper's buffers (about 24 KiB per SSE connection) nor a task of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use axum::serve::Listener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::connection::{Incoming, Kill, KillableStream, Peer};

/// Request lines that may be taken over start with one of these (then a space or `?`).
const TAKEOVER_PREFIXES: [&[u8]; 2] = [b"GET /api/sse/notifications", b"GET /api/ws"];
/// Enough of a request line to tell whether it is one of those.
const PEEK: usize = 27;
/// Longest request head read here; a longer one goes to hyper, which answers 431.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// How long to wait for the rest of a request line that came in pieces.
const PEEK_AGAIN: Duration = Duration::from_millis(5);
/// A client that connects and sends no request within this is dropped.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body of a response written here (an error): they are a few hundred bytes.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Accepts connections until `shutdown`, serving takeover requests itself and passing the
/// rest, through the returned listener, to axum's `serve`.
pub fn listen(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> io::Result<Incoming> {
    let local = listener.local_addr()?;
    let (to_hyper, connections) = mpsc::channel(1024);
    tokio::spawn(accept_loop(listener, app, to_hyper, shutdown));
    Ok(Incoming { connections, local })
}

type ToHyper = mpsc::Sender<(KillableStream, SocketAddr)>;

async fn accept_loop(
    mut listener: TcpListener,
    app: Router,
    to_hyper: ToHyper,
    shutdown: CancellationToken,
) {
    loop {
        let (socket, address) = tokio::select! {
            () = shutdown.cancelled() => return,
            // Retries (and logs) failed accepts itself.
            accepted = Listener::accept(&mut listener) => accepted,
        };
        // Small writes (stream events) go out at once.
        let _ = socket.set_nodelay(true);
        let (app, to_hyper) = (app.clone(), to_hyper.clone());
        tokio::spawn(async move {
            // A client that never sends a request just goes.
            let _ =
                tokio::time::timeout(FIRST_REQUEST_TIMEOUT, route(socket, address, app, to_hyper))
                    .await;
        });
    }
}

/// Looks at the start of the first request and decides who serves the connection.
async fn route(mut socket: TcpStream, address: SocketAddr, app: Router, to_hyper: ToHyper) {
    // Peeked, not read: a connection for hyper is passed on untouched, with nothing allocated
    // for it here (an allocation per connection that outlives the next ones leaves holes).
    let mut start = [0; PEEK];
    let start = loop {
        let peeked = match socket.peek(&mut start).await {
            Ok(0) | Err(_) => return,
            Ok(peeked) => &start[..peeked],
        };
        if peeked.len() == PEEK || peeked.contains(&b'\n') {
            break peeked;
        }
        // The request line came in pieces (rare): peeking again at once would find the same.
        tokio::time::sleep(PEEK_AGAIN).await;
    };
    if is_takeover_candidate(start) {
        let mut head = Vec::with_capacity(1024);
        loop {
            match socket.read_buf(&mut head).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(request) = parse_head(&head) {
                // Boxed: its state would make every connection's task that much bigger.
                return Box::pin(serve_here(socket, request, app)).await;
            }
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                // Malformed or unusual: hyper answers it as it answers any other request.
                let read = Bytes::from(head);
                let _ = to_hyper
                    .send((KillableStream::new(socket, read), address))
                    .await;
                return;
            }
        }
    }
    let _ = to_hyper
        .send((KillableStream::new(socket, Bytes::new()), address))
        .await;
}

fn is_takeover_candidate(head: &[u8]) -> bool {
    TAKEOVER_PREFIXES.iter().any(|prefix| {
        head.strip_prefix(*prefix)
            .and_then(|rest| rest.first())
            .is_some_and(|&next| next == b' ' || next == b'?')
    })
}

/// A complete, well-formed HTTP/1.1 GET head, as a request; `None` for anything else.
fn parse_head(head: &[u8]) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = parsed.parse(head).ok()? else {
        return None;
    };
    // A body (or a pipelined request) after the head: leave such a connection to hyper.
    if length != head.len() || parsed.method != Some("GET") || parsed.version != Some(1) {
        return None;
    }
    let mut request = Request::get(parsed.path?);
    for h in parsed.headers.iter() {
        request = request.header(h.name, h.value);
    }
    request.body(Body::empty()).ok()
}

/// Runs a request through the router; if the handler takes the connection over, writes the
/// response head and hands it the socket, else writes the whole response and closes.
async fn serve_here(mut socket: TcpStream, mut request: Request<Body>, app: Router) {
    request.extensions_mut().insert(ConnectInfo(Peer {
        // Only hyper-served connections are cut through this switch.
        kill: Kill::default(),
    }));
    request.extensions_mut().insert(Takeover(()));
    let mut response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let then = response
        .extensions_mut()
        .remove::<TakenOver>()
        .and_then(TakenOver::take);
    match then {
        Some(then) => {
            let framing = if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                ""
            } else {
                "transfer-encoding: chunked\r\n"
            };
            let head = head_bytes(&response, framing);
            if socket.write_all(&head).await.is_ok() {
                then(socket);
            }
        }
        None => {
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(header::CONNECTION);
            let body = axum::body::to_bytes(body, MAX_RESPONSE_BODY)
                .await
                .unwrap_or_default();
            let framing = format!("content-length: {}\r\nconnection: close\r\n", body.len());
            let mut bytes = head_bytes(&Response::from_parts(parts, ()), &framing);
            bytes.extend_from_slice(&body);
            if socket.write_all(&bytes).await.is_ok() {
                let _ = socket.shutdown().await;
            }
        }
    }
}

/// The status line and headers, with `framing` in place of any framing headers the response had.
fn head_bytes<B>(response: &Response<B>, framing: &str) -> Vec<u8> {
    let status = response.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    write_headers(&mut head, response.headers());
    head.extend_from_slice(framing.as_bytes());
    head.extend_from_slice(b"\r\n");
    head
}

fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// In a request's extensions when its handler may take the connection over (see the module
/// docs): the first request on a connection served here rather than by hyper.
#[derive(Clone)]
pub struct Takeover(());

type Then = Box<dyn FnOnce(TcpStream) + Send>;

/// In a response's extensions: what runs the connection after the response head, whose body
/// is ignored. After a 101 `then` speaks the new protocol; after any other status everything
/// it writes is the body, in HTTP/1.1 chunked framing.
#[derive(Clone)]
struct TakenOver(Arc<Mutex<Option<Then>>>);

impl TakenOver {
    fn take(self) -> Option<Then> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Takeover {
    /// `head` with `then` attached: the connection's socket goes to `then` once `head` is sent.
    pub fn respond(
        self,
        mut head: axum::response::Response,
        then: impl FnOnce(TcpStream) + Send + 'static,
    ) -> axum::response::Response {
        head.extensions_mut()
            .insert(TakenOver(Arc::new(Mutex::new(Some(Box::new(then))))));
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stream_path_is_a_takeover_candidate() {
        assert!(is_takeover_candidate(
            b"GET /api/sse/notifications HTTP/1.1\r\n"
        ));
        assert!(is_takeover_candidate(
            b"GET /api/sse/notifications?since=4 HTTP/1.1"
        ));
        assert!(!is_takeover_candidate(
            b"GET /api/sse/notificationsX HTTP/1.1"
        ));
        assert!(!is_takeover_candidate(
            b"POST /api/sse/notifications HTTP/1.1"
        ));
        assert!(!is_takeover_candidate(b"GET /api/sse/notif"));
        assert!(is_takeover_candidate(b"GET /api/ws?since=3 HTTP/1.1"));
        assert!(!is_takeover_candidate(b"GET /api/wsx HTTP/1.1"));
        assert!(!is_takeover_candidate(b"GET /socket.io/?EIO=4 HTTP/1.1"));
    }

    #[test]
    fn only_a_complete_http_1_1_get_without_a_body_is_served_here() {
        let request = parse_head(
            b"GET /api/sse/notifications?userId=u HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n",
        )
        .expect("a plain GET");
        assert_eq!(request.uri(), "/api/sse/notifications?userId=u");
        assert_eq!(request.headers()["last-event-id"], "7");
        for head in [
            &b"GET /api/sse/notifications HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /api/sse/notifications HTTP/1.0\r\n\r\n",
            b"GET /api/sse/notifications HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET /api/sse/notifications HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                parse_head(head).is_none(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
