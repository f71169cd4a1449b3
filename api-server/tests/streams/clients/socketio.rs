//! Socket.IO clients: the real npm `socket.io-client` in a Node process, and hand-made
//! ones that connect and then stop reading.

use std::path::PathBuf;
use std::process::Stdio;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::OnceCell;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::patience::within;
use super::seen::Seen;

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

/// The socket.io-client package, installed once per test run.
async fn socket_io_client_modules() -> &'static PathBuf {
    static MODULES: OnceCell<PathBuf> = OnceCell::const_new();
    MODULES
        .get_or_init(|| {
            super::npm::modules(
                "socket.io-client-4",
                "socket.io-client@4",
                "socket.io-client",
            )
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
