//! Stream clients of the three transports the api-server offers, behind one interface:
//! connect (returning once the server says the stream is live), then read notification events.

mod socketio;
mod sse;
mod ws;

use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use tokio::net::TcpStream;

use crate::probe::NotificationView;
use crate::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Socket.IO v4 over a WebSocket opened straight away (socket.io-client's
    /// `transports: ["websocket"]`), at /socket.io/.
    Socketio,
    /// Socket.IO v4 as socket.io-client connects by default: an Engine.IO long-polling
    /// handshake, then the upgrade of that session to a WebSocket (on the same connection).
    SocketioUpgrade,
    /// Plain WebSocket with JSON frames, at /api/ws.
    Ws,
    /// Server-Sent Events, at /api/sse/notifications.
    Sse,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Socketio => "socketio",
            Self::SocketioUpgrade => "socketio-upgrade",
            Self::Ws => "ws",
            Self::Sse => "sse",
        }
    }
}

/// Which event a notification arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `notification`: it was created.
    Created,
    /// `notification.updated` (Socket.IO: `notification:updated`): its status changed.
    Updated,
}

impl Kind {
    fn of_event(name: &str) -> Option<Self> {
        match name {
            "notification" => Some(Self::Created),
            "notification.updated" | "notification:updated" => Some(Self::Updated),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Received {
    pub kind: Kind,
    pub notification: NotificationView,
}

/// What every transport's server sends once the stream is live.
const LIVE_EVENT: &str = "recovered";

/// Reads an HTTP/1.1 response head: the head, and what came after it.
async fn read_head(socket: &mut TcpStream, what: &str) -> anyhow::Result<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    const MAX_HEAD_BYTES: usize = 16 * 1024;
    let mut bytes = Vec::new();
    loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..at + 4]).into_owned();
            return Ok((head, bytes.split_off(at + 4)));
        }
        if bytes.len() > MAX_HEAD_BYTES {
            anyhow::bail!("the response head to {what} is over {MAX_HEAD_BYTES} bytes");
        }
        let read = socket
            .read_buf(&mut bytes)
            .await
            .with_context(|| format!("reading the response to {what}"))?;
        if read == 0 {
            anyhow::bail!("the server closed before answering {what}");
        }
    }
}

/// A response head's status code, if its status line has one.
fn status_of(head: &str) -> Option<u16> {
    head.lines().next()?.split(' ').nth(1)?.parse().ok()
}

/// A response head's header value (the first, by case-insensitive name).
fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim())
    })
}

/// The WebSocket handshake at `path`, with a read buffer sized for notification frames:
/// tungstenite's default (128 KiB) is zeroed on every read, which took half of loadgen's CPU
/// with 10,000 clients.
async fn websocket(
    stream: TcpStream,
    target: &Target,
    path: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(target.ws_url(path), stream, Some(config))
            .await
            .with_context(|| format!("WebSocket handshake at {path}"))?;
    Ok(socket)
}

/// One connected stream client.
pub enum Subscriber {
    SocketIo(socketio::Client),
    Ws(ws::Client),
    Sse(sse::Client),
}

impl Subscriber {
    /// Connects and returns once the stream is live, so that everything published afterwards
    /// reaches this client.
    pub async fn connect(
        transport: Transport,
        target: &Target,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let connecting = async {
            let stream = TcpStream::connect(target.addr)
                .await
                .with_context(|| format!("connecting to {}", target.addr))?;
            let _ = stream.set_nodelay(true);
            anyhow::Ok(match transport {
                Transport::Socketio => {
                    Self::SocketIo(socketio::Client::connect(stream, target).await?)
                }
                Transport::SocketioUpgrade => {
                    Self::SocketIo(socketio::Client::connect_upgrading(stream, target).await?)
                }
                Transport::Ws => Self::Ws(ws::Client::connect(stream, target).await?),
                Transport::Sse => Self::Sse(sse::Client::connect(stream, target).await?),
            })
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .with_context(|| format!("the {transport:?} stream was not live within {timeout:?}"))?
    }

    /// The next notification event; `None` once the server ended the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<Received>> {
        match self {
            Self::SocketIo(client) => client.next().await,
            Self::Ws(client) => client.next().await,
            Self::Sse(client) => client.next().await,
        }
    }
}

/// How connecting the clients went.
pub struct Connected {
    pub connected: u64,
    pub failed: u64,
    /// The first failure, as an example of what went wrong.
    pub first_error: Option<String>,
    pub seconds: f64,
}

/// Connects `count` clients, `parallel` at a time (a burst of thousands of handshakes would
/// overflow the server's accept backlog and measure that instead), handing each to `live` as
/// soon as its stream is live, so it is read from then on (a Socket.IO client that stops
/// answering pings while thousands of others connect would be dropped by the server).
pub async fn connect_all(
    transport: Transport,
    target: &Target,
    count: u64,
    parallel: usize,
    timeout: Duration,
    mut live: impl FnMut(Subscriber),
) -> Connected {
    use futures::StreamExt as _;
    let started = std::time::Instant::now();
    let mut attempts = futures::stream::iter(0..count)
        .map(|_| Subscriber::connect(transport, target, timeout))
        .buffer_unordered(parallel.max(1));
    let mut connected = Connected {
        connected: 0,
        failed: 0,
        first_error: None,
        seconds: 0.0,
    };
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Ok(subscriber) => {
                connected.connected += 1;
                live(subscriber);
            }
            Err(error) => {
                connected.failed += 1;
                connected
                    .first_error
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    connected.seconds = started.elapsed().as_secs_f64();
    connected
}
