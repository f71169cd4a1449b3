//! A Socket.IO v4 client over the Engine.IO v4 WebSocket transport, just enough to receive
//! events on the default namespace:
//!
//! 1. open `ws://host/socket.io/?EIO=4&transport=websocket`; the server sends the Engine.IO
//!    open packet `0{"sid", "pingInterval", ...}`;
//! 2. send `40` (connect to namespace `/`); the server answers `40{"sid"}` or `44{error}`;
//! 3. answer every ping `2` with a pong `3`; events arrive as `42["name", arg, ...]`.
//!
//! Over WebSocket every frame holds exactly one Engine.IO packet (no payload batching).

use std::fmt;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::event::{Kind, LIVE_EVENT, Received};
use super::handshake;
use crate::probe::NotificationView;
use crate::target::Target;

const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// An Engine.IO v4 packet.
#[derive(Debug, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// The handshake data (JSON).
    Open(&'a str),
    Close,
    /// A heartbeat to answer with a pong carrying the same payload.
    Ping(&'a str),
    Pong(&'a str),
    /// A Socket.IO packet.
    Message(&'a str),
    Upgrade,
    Noop,
}

/// A Socket.IO v4 packet.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketPacket<'a> {
    Connect {
        namespace: &'a str,
        data: &'a str,
    },
    Disconnect {
        namespace: &'a str,
    },
    /// `data` is the JSON array `["name", args...]`.
    Event {
        namespace: &'a str,
        ack: Option<u64>,
        data: &'a str,
    },
    Ack {
        namespace: &'a str,
        ack: Option<u64>,
        data: &'a str,
    },
    ConnectError {
        namespace: &'a str,
        data: &'a str,
    },
    /// Binary events and acks (attachments follow in separate frames): not used by Herald.
    Binary,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PacketError(String);

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PacketError {}

pub fn parse_engine(text: &str) -> Result<EnginePacket<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars
        .next()
        .ok_or_else(|| PacketError("an empty Engine.IO packet".into()))?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EnginePacket::Open(rest),
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping(rest),
        '3' => EnginePacket::Pong(rest),
        '4' => EnginePacket::Message(rest),
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        other => {
            return Err(PacketError(format!(
                "unknown Engine.IO packet type {other:?} in {text:?}"
            )));
        }
    })
}

pub fn parse_socket(text: &str) -> Result<SocketPacket<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars
        .next()
        .ok_or_else(|| PacketError("an empty Socket.IO packet".into()))?;
    let rest = chars.as_str();
    // A namespace other than `/` comes first, ended by a comma.
    let (namespace, rest) = match rest.strip_prefix('/') {
        Some(_) => match rest.split_once(',') {
            Some((namespace, rest)) => (namespace, rest),
            None => (rest, ""),
        },
        None => ("/", rest),
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (ack, data) = rest.split_at(digits);
    let ack = if ack.is_empty() {
        None
    } else {
        Some(
            ack.parse()
                .map_err(|_| PacketError(format!("an ack id out of range in {text:?}")))?,
        )
    };
    Ok(match kind {
        '0' => SocketPacket::Connect { namespace, data },
        '1' => SocketPacket::Disconnect { namespace },
        '2' => SocketPacket::Event {
            namespace,
            ack,
            data,
        },
        '3' => SocketPacket::Ack {
            namespace,
            ack,
            data,
        },
        '4' => SocketPacket::ConnectError { namespace, data },
        '5' | '6' => SocketPacket::Binary,
        other => {
            return Err(PacketError(format!(
                "unknown Socket.IO packet type {other:?} in {text:?}"
            )));
        }
    })
}

/// An event's name and first argument, the rest skipped: `["notification", {...}, 42]`.
#[derive(Debug)]
pub struct EventArgs {
    pub name: String,
    pub first: Option<NotificationView>,
}

impl<'de> Deserialize<'de> for EventArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = EventArgs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Socket.IO event array [name, args...]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventArgs, A::Error> {
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let first = seq.next_element::<NotificationView>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EventArgs { name, first })
            }
        }
        deserializer.deserialize_seq(ArgsVisitor)
    }
}

pub struct Client {
    socket: WebSocketStream<TcpStream>,
}

#[derive(Deserialize)]
struct Handshake {
    sid: String,
}

impl Client {
    pub async fn connect(stream: TcpStream, target: &Target) -> anyhow::Result<Self> {
        let socket = handshake::websocket(stream, target, PATH).await?;
        let mut client = Self { socket };
        let open = client
            .text()
            .await?
            .context("the server closed before the Engine.IO open packet")?;
        if !matches!(parse_engine(&open)?, EnginePacket::Open(_)) {
            bail!("expected the Engine.IO open packet, got {open:?}");
        }
        client.join(target.stream_token.as_deref()).await
    }

    /// Opens the session with a long-polling handshake, then upgrades it to a WebSocket on
    /// the same connection (Engine.IO's probe: `2probe`, `3probe`, then `5`), and connects to
    /// the namespace over it.
    pub async fn connect_upgrading(mut stream: TcpStream, target: &Target) -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let handshake = target.path(POLLING);
        stream
            .write_all(
                format!(
                    "GET {handshake} HTTP/1.1\r\nHost: {}\r\n\r\n",
                    target.authority
                )
                .as_bytes(),
            )
            .await
            .context("sending the Engine.IO handshake")?;
        let (head, mut body) = handshake::read_head(&mut stream, "the Engine.IO handshake").await?;
        if handshake::status_of(&head) != Some(200) {
            bail!("the Engine.IO handshake answered {head:?}");
        }
        let length: usize = handshake::header_of(&head, "content-length")
            .and_then(|length| length.parse().ok())
            .context("the Engine.IO handshake response has no content-length")?;
        while body.len() < length {
            if stream
                .read_buf(&mut body)
                .await
                .context("reading the handshake")?
                == 0
            {
                bail!("the server closed during the Engine.IO handshake");
            }
        }
        let body = String::from_utf8_lossy(&body);
        let open = match parse_engine(&body)? {
            EnginePacket::Open(open) => open,
            _ => bail!("expected the Engine.IO open packet, got {body:?}"),
        };
        let Handshake { sid } = serde_json::from_str(open)
            .with_context(|| format!("an unexpected open packet {open:?}"))?;
        let path = format!("{PATH}&sid={sid}");
        let socket = handshake::websocket(stream, target, &path).await?;
        let mut client = Self { socket };
        client.send("2probe").await?;
        loop {
            let text = client
                .text()
                .await?
                .context("the server closed during the upgrade")?;
            if parse_engine(&text)? == EnginePacket::Pong("probe") {
                break;
            }
        }
        client.send("5").await?;
        client.join(target.stream_token.as_deref()).await
    }

    /// Connects to namespace `/` (with `auth.token` when there is one) and waits until the
    /// stream is live.
    async fn join(self, token: Option<&str>) -> anyhow::Result<Self> {
        let mut client = self;
        let connect = match token {
            Some(token) => format!("40{}", serde_json::json!({ "token": token })),
            None => "40".to_owned(),
        };
        client.send(&connect).await?;
        loop {
            let text = client
                .text()
                .await?
                .context("the server closed before the namespace connect")?;
            match parse_engine(&text)? {
                EnginePacket::Ping(payload) => client.send(&format!("3{payload}")).await?,
                EnginePacket::Message(message) => match parse_socket(message)? {
                    SocketPacket::Connect { namespace: "/", .. } => break,
                    SocketPacket::ConnectError { data, .. } => {
                        bail!("Socket.IO connect_error: {data}")
                    }
                    _ => {}
                },
                EnginePacket::Close => bail!("the server closed the Engine.IO session"),
                _ => {}
            }
        }
        loop {
            match client.event().await? {
                Some(args) if args.name == LIVE_EVENT => return Ok(client),
                Some(_) => {}
                None => bail!("the server closed the Socket.IO session before it was live"),
            }
        }
    }

    pub async fn next(&mut self) -> anyhow::Result<Option<Received>> {
        loop {
            let Some(args) = self.event().await? else {
                return Ok(None);
            };
            if let (Some(kind), Some(notification)) = (Kind::of_event(&args.name), args.first) {
                return Ok(Some(Received { kind, notification }));
            }
        }
    }

    /// The next event on namespace `/`, answering pings meanwhile; `None` once the session
    /// ended.
    async fn event(&mut self) -> anyhow::Result<Option<EventArgs>> {
        loop {
            let Some(text) = self.text().await? else {
                return Ok(None);
            };
            match parse_engine(&text)? {
                EnginePacket::Ping(payload) => self.send(&format!("3{payload}")).await?,
                EnginePacket::Close => return Ok(None),
                EnginePacket::Message(message) => match parse_socket(message)? {
                    SocketPacket::Event {
                        namespace: "/",
                        data,
                        ..
                    } => {
                        let args = serde_json::from_str(data)
                            .with_context(|| format!("an unexpected Socket.IO event: {data}"))?;
                        return Ok(Some(args));
                    }
                    SocketPacket::Disconnect { namespace: "/" } => return Ok(None),
                    _ => {}
                },
                _ => {}
            }
        }
    }

    async fn text(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("reading /socket.io/"),
            }
        }
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket
            .send(Message::text(text))
            .await
            .context("writing to /socket.io/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_packets() {
        assert_eq!(
            parse_engine(r#"0{"sid":"abc","pingInterval":25000}"#),
            Ok(EnginePacket::Open(r#"{"sid":"abc","pingInterval":25000}"#))
        );
        assert_eq!(parse_engine("2"), Ok(EnginePacket::Ping("")));
        assert_eq!(parse_engine("2probe"), Ok(EnginePacket::Ping("probe")));
        assert_eq!(parse_engine("3"), Ok(EnginePacket::Pong("")));
        assert_eq!(parse_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(parse_engine("40"), Ok(EnginePacket::Message("0")));
        assert_eq!(parse_engine("6"), Ok(EnginePacket::Noop));
        assert!(parse_engine("").is_err());
        assert!(parse_engine("9x").is_err());
    }

    #[test]
    fn socket_packets() {
        assert_eq!(
            parse_socket(r#"0{"sid":"xyz"}"#),
            Ok(SocketPacket::Connect {
                namespace: "/",
                data: r#"{"sid":"xyz"}"#
            })
        );
        assert_eq!(
            parse_socket(r#"2["notification",{"id":"1"},5]"#),
            Ok(SocketPacket::Event {
                namespace: "/",
                ack: None,
                data: r#"["notification",{"id":"1"},5]"#
            })
        );
        assert_eq!(
            parse_socket(r#"2/admin,13["hello"]"#),
            Ok(SocketPacket::Event {
                namespace: "/admin",
                ack: Some(13),
                data: r#"["hello"]"#
            })
        );
        assert_eq!(
            parse_socket(r#"4{"message":"bad auth"}"#),
            Ok(SocketPacket::ConnectError {
                namespace: "/",
                data: r#"{"message":"bad auth"}"#
            })
        );
        assert_eq!(
            parse_socket("1/admin,"),
            Ok(SocketPacket::Disconnect {
                namespace: "/admin"
            })
        );
        assert_eq!(
            parse_socket(r#"31[true]"#),
            Ok(SocketPacket::Ack {
                namespace: "/",
                ack: Some(1),
                data: "[true]"
            })
        );
        assert_eq!(parse_socket(r#"51-["x",{}]"#), Ok(SocketPacket::Binary));
        assert!(parse_socket("").is_err());
        assert!(parse_socket("7").is_err());
        assert!(parse_socket("299999999999999999999999[]").is_err());
    }

    #[test]
    fn event_arguments() {
        let args: EventArgs = serde_json::from_str(
            r#"["notification",{"id":"n1","status":"pending","metadata":{"loadgenRun":"r","loadgenIndex":3,"sentAtMicros":99}},17]"#,
        )
        .unwrap();
        assert_eq!(args.name, "notification");
        assert_eq!(args.first.unwrap().probe_of("r"), Some((3, 99)));

        let args: EventArgs =
            serde_json::from_str(r#"["recovered",{"complete":true,"lastSequence":4}]"#).unwrap();
        assert_eq!(args.name, LIVE_EVENT);

        let args: EventArgs = serde_json::from_str(r#"["bare"]"#).unwrap();
        assert!(args.first.is_none());
        assert!(serde_json::from_str::<EventArgs>("[]").is_err());
        assert!(serde_json::from_str::<EventArgs>(r#"{"name":"x"}"#).is_err());
    }
}
