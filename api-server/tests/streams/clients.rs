//! Stream clients for the tests: SSE over reqwest, WebSocket over tokio-tungstenite and the
//! real npm `socket.io-client` 4 driven through `tests/socketio/client.cjs`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::OnceCell;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bounds every wait, so a broken server fails the test instead of hanging it. Not a
/// performance expectation.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    pub retry: Option<String>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("{self:?} has no JSON data: {e}"))
    }

    pub fn sequence(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{self:?} has no numeric id"))
    }
}

pub struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
    seen: Seen,
}

impl SseClient {
    /// Opens `url`; fails the test unless the answer is a 200 event stream.
    pub async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = within("opening the SSE stream", request.send())
            .await
            .expect("GET SSE stream");
        assert_eq!(response.status(), 200, "SSE answered {}", response.status());
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content-type {content_type}"
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            seen: Seen::default(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        within("waiting for an SSE event", async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(event) = parse_block(&block) {
                        if event.event.starts_with("notification") {
                            self.seen.record(event.sequence());
                        }
                        return Some(event);
                    }
                    continue;
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }

    /// The next event, which must exist and have this name. Status updates (from the
    /// processing that marks notifications delivered) are skipped unless asked for.
    pub async fn expect(&mut self, name: &str) -> SseEvent {
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the SSE stream ended before `{name}`"));
            if event.event == "notification.updated" && name != event.event {
                continue;
            }
            assert_eq!(event.event, name, "expected `{name}`, got {event:?}");
            return event;
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        ..SseEvent::default()
    };
    let mut data = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => {} // a comment: keep-alive
            "event" => event.event = value.into(),
            "id" => event.id = Some(value.into()),
            "data" => data.push(value),
            "retry" => event.retry = Some(value.into()),
            _ => {}
        }
    }
    if data.is_empty() && event.id.is_none() {
        return None;
    }
    event.data = data.join("\n");
    Some(event)
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: Seen,
}

/// What a WebSocket delivered next.
#[derive(Debug)]
pub enum WsItem {
    Frame(Value),
    Closed(Option<CloseFrame>),
}

impl WsClient {
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = within(
            "connecting the WebSocket",
            tokio_tungstenite::connect_async(url),
        )
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        Self {
            socket,
            seen: Seen::default(),
        }
    }

    /// The next JSON frame or the close (pings skipped; tungstenite answers them).
    pub async fn next(&mut self) -> WsItem {
        within("waiting for a WebSocket frame", async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let frame: Value = serde_json::from_str(&text).expect("a JSON frame");
                        if let Some(sequence) = frame["sequence"].as_i64() {
                            self.seen.record(sequence);
                        }
                        return WsItem::Frame(frame);
                    }
                    Some(Ok(Message::Close(frame))) => return WsItem::Closed(frame),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return WsItem::Closed(None),
                }
            }
        })
        .await
    }

    /// The next frame, which must be of this `type`; status updates are skipped unless asked
    /// for.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.next().await {
                WsItem::Frame(frame) if frame["type"] == kind => return frame,
                WsItem::Frame(frame) if frame["type"] == "notification.updated" => {}
                other => panic!("expected a `{kind}` frame, got {other:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = self.socket.flush().await;
    }

    /// Pings the server and returns the payload of its pong.
    pub async fn ping(&mut self, payload: &'static [u8]) -> Vec<u8> {
        self.socket
            .send(Message::Ping(payload.into()))
            .await
            .expect("sending a ping");
        within("waiting for a pong", async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Pong(payload))) => return payload.to_vec(),
                    Some(Ok(_)) => {}
                    other => panic!("no pong: {other:?}"),
                }
            }
        })
        .await
    }

    /// Closes with `code` and returns the server's answering close frame.
    pub async fn close_with(mut self, code: u16) -> Option<CloseFrame> {
        let frame = CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        };
        self.socket
            .send(Message::Close(Some(frame)))
            .await
            .expect("sending a close frame");
        within("waiting for the close answer", async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
    }
}

/// A Socket.IO client that connects to namespace `/` (engine.io 4 over WebSocket, as
/// socket.io-client speaks it) and then stops reading: the socket stays open, unread.
pub async fn stalled_socket_io(port: u16) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut socket, _) = within(
        "connecting to Socket.IO",
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("the engine.io WebSocket handshake");
    let open = next_text(&mut socket).await;
    assert!(open.starts_with('0'), "engine.io open packet, got {open}");
    socket
        .send(Message::text("40"))
        .await
        .expect("sending the namespace connect");
    while !next_text(&mut socket).await.starts_with("40") {}
    socket
}

/// A Socket.IO client on long-polling that connects to namespace `/` and then never polls
/// again: what the server sends it piles up.
pub async fn stalled_socket_io_polling(server: &crate::common::Server) {
    let url = server.url("/socket.io/?EIO=4&transport=polling");
    let open = server
        .client()
        .get(&url)
        .send()
        .await
        .expect("the engine.io handshake")
        .text()
        .await
        .expect("the open packet");
    let open: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet"))
        .unwrap_or_else(|e| panic!("open packet {open}: {e}"));
    let session = format!("{url}&sid={}", open["sid"].as_str().expect("a sid"));
    let connect = server
        .client()
        .post(&session)
        .body("40")
        .send()
        .await
        .expect("the namespace connect");
    assert!(connect.status().is_success(), "{connect:?}");
    // Poll until the namespace's answer arrives (the engine's first ping may come before
    // it), answering pings meanwhile; then never again.
    within("the namespace's answer over long-polling", async {
        loop {
            let payload = server
                .client()
                .get(&session)
                .send()
                .await
                .expect("a poll")
                .text()
                .await
                .expect("the poll's packets");
            let packets: Vec<&str> = payload.split('\u{1e}').collect();
            if packets.iter().any(|packet| packet.starts_with("40")) {
                return;
            }
            if packets.contains(&"2") {
                let pong = server.client().post(&session).body("3").send().await;
                assert!(
                    pong.is_ok_and(|r| r.status().is_success()),
                    "answering a ping"
                );
            }
        }
    })
    .await;
}

async fn next_text(socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> String {
    loop {
        match within("an engine.io packet", socket.next()).await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(_)) => {}
            other => panic!("the engine.io socket ended: {other:?}"),
        }
    }
}

/// The socket.io-client package, installed once per test run under the herald cache (never
/// into the repository).
async fn socket_io_client_modules() -> &'static PathBuf {
    static MODULES: OnceCell<PathBuf> = OnceCell::const_new();
    MODULES
        .get_or_init(|| async {
            let cache = std::env::var_os("HERALD_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                        .join(".cache/herald")
                });
            let dir = cache.join("npm/socket.io-client-4");
            let modules = dir.join("node_modules");
            if !modules.join("socket.io-client/package.json").exists() {
                std::fs::create_dir_all(&dir).expect("creating the npm cache directory");
                let output = Command::new("npm")
                    .args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "socket.io-client@4",
                    ])
                    .current_dir(&dir)
                    .output()
                    .await
                    .expect("running npm (Node.js 20 and npm are needed for the Socket.IO tests)");
                assert!(
                    output.status.success(),
                    "npm install socket.io-client@4 failed in {}:\n{}",
                    dir.display(),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            modules
        })
        .await
}

/// How a [`SocketIoClient`] connects.
#[derive(Debug, Clone, Copy)]
pub enum Transports {
    /// socket.io-client's default: long-polling, then the upgrade to WebSocket.
    PollingFirst,
    /// `transports: ["websocket"]`: a WebSocket straight away.
    WebSocketOnly,
    /// `transports: ["polling"]`: long-polling throughout, as behind a proxy without WebSocket.
    PollingOnly,
}

impl Transports {
    pub const ALL: [Self; 3] = [Self::PollingFirst, Self::WebSocketOnly, Self::PollingOnly];

    fn option(self) -> &'static str {
        match self {
            Self::PollingFirst => "polling,websocket",
            Self::WebSocketOnly => "websocket",
            Self::PollingOnly => "polling",
        }
    }
}

/// A socket.io-client 4 in a Node process; each line it prints is one thing that happened.
pub struct SocketIoClient {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Seen,
}

impl SocketIoClient {
    /// Connects to `base` (`http://127.0.0.1:PORT`) with this handshake `auth`, the way
    /// socket.io-client does by default.
    pub async fn connect(base: &str, auth: Option<Value>) -> Self {
        Self::connect_over(Transports::PollingFirst, base, auth).await
    }

    pub async fn connect_over(transports: Transports, base: &str, auth: Option<Value>) -> Self {
        let modules = socket_io_client_modules().await;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/socketio/client.cjs");
        let mut command = Command::new("node");
        command
            .arg(script)
            .arg(base)
            .env("NODE_PATH", modules)
            .env("TRANSPORTS", transports.option())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(auth) = auth {
            command.arg(auth.to_string());
        }
        let mut child = command.spawn().expect("starting node");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            child,
            lines,
            seen: Seen::default(),
        }
    }

    /// The next `{"event", "args"?, ...}` line; `None` when the client exited.
    pub async fn next(&mut self) -> Option<Value> {
        let line = within("waiting for a Socket.IO event", self.lines.next_line())
            .await
            .expect("reading the client's output")?;
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("client printed {line:?}: {e}"));
        if event["event"]
            .as_str()
            .is_some_and(|e| e.starts_with("notification"))
        {
            self.seen.record(
                event["args"][1]
                    .as_i64()
                    .expect("the stream sequence argument"),
            );
        }
        Some(event)
    }

    /// The next event, which must have this name; status updates are skipped unless asked for.
    pub async fn expect(&mut self, name: &str) -> Value {
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the Socket.IO client exited before `{name}`"));
            if event["event"] == "notification:updated" && name != "notification:updated" {
                continue;
            }
            assert_eq!(event["event"], name, "expected `{name}`, got {event}");
            return event;
        }
    }

    /// Asks the client to disconnect and waits for it to exit.
    pub async fn close(mut self) {
        drop(self.child.stdin.take());
        let _ = within("stopping the Socket.IO client", self.child.wait()).await;
    }
}

/// The event sequences a client received: each at most once, or the test fails.
#[derive(Default)]
struct Seen(HashSet<i64>);

impl Seen {
    fn record(&mut self, sequence: i64) {
        assert!(
            self.0.insert(sequence),
            "event {sequence} was delivered twice"
        );
    }
}

/// HTTP/1.1 by hand, to control which requests share a connection.
pub struct RawHttp {
    socket: TcpStream,
    /// Everything read so far.
    pub received: Vec<u8>,
}

impl RawHttp {
    pub async fn connect(port: u16) -> Self {
        let socket = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        Self {
            socket,
            received: Vec::new(),
        }
    }

    pub async fn get(&mut self, path: &str) {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            .await;
    }

    /// A WebSocket handshake (the RFC's example key).
    pub async fn upgrade(&mut self, path: &str) {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ))
        .await;
    }

    pub async fn send(&mut self, bytes: &str) {
        use tokio::io::AsyncWriteExt;
        self.socket
            .write_all(bytes.as_bytes())
            .await
            .expect("sending a request");
    }

    pub fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// Reads until what was received contains `needle`, and returns it all as text.
    pub async fn read_until(&mut self, needle: &str) -> String {
        use tokio::io::AsyncReadExt;
        within(&format!("reading up to {needle:?}"), async {
            while !String::from_utf8_lossy(&self.received).contains(needle) {
                let read = self
                    .socket
                    .read_buf(&mut self.received)
                    .await
                    .expect("reading");
                assert!(
                    read > 0,
                    "the connection closed before {needle:?}: {}",
                    String::from_utf8_lossy(&self.received)
                );
            }
        })
        .await;
        String::from_utf8_lossy(&self.received).into_owned()
    }
}
