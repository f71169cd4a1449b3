//! A plain WebSocket client over tokio-tungstenite.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::patience::within;
use super::seen::Seen;

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
