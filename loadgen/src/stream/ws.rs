//! The plain WebSocket at `/api/ws`: JSON text frames
//! `{"type": "notification" | "notification.updated" | "recovered" | ..., "notification"?}`.

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::event::{Kind, LIVE_EVENT, Received};
use super::handshake;
use crate::probe::NotificationView;
use crate::target::Target;

pub struct Client {
    socket: WebSocketStream<TcpStream>,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    notification: Option<NotificationView>,
}

impl Client {
    pub async fn connect(stream: TcpStream, target: &Target) -> anyhow::Result<Self> {
        let socket = handshake::websocket(stream, target, "/api/ws").await?;
        let mut client = Self { socket };
        loop {
            match client.frame().await? {
                Some(frame) if frame.kind == LIVE_EVENT => return Ok(client),
                Some(_) => {}
                None => bail!("the server closed /api/ws before the stream was live"),
            }
        }
    }

    pub async fn next(&mut self) -> anyhow::Result<Option<Received>> {
        loop {
            let Some(frame) = self.frame().await? else {
                return Ok(None);
            };
            if let (Some(kind), Some(notification)) =
                (Kind::of_event(&frame.kind), frame.notification)
            {
                return Ok(Some(Received { kind, notification }));
            }
        }
    }

    /// The next JSON frame; `None` when the connection closed. Pings are answered by
    /// tungstenite as frames are read.
    async fn frame(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .with_context(|| format!("an unexpected frame on /api/ws: {text}"));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading /api/ws"),
            }
        }
    }
}
