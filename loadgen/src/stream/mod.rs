//! Stream clients of the three transports the api-server offers, behind one interface:
//! connect (returning once the server says the stream is live), then read notification events.

mod event;
mod handshake;
mod socketio;
mod sse;
mod ws;

use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use tokio::net::TcpStream;

use crate::target::Target;

pub use event::{Kind, Received};

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
