//! The Socket.IO session of a client on a WebSocket, as packets: the namespace connect and
//! its `auth`, the ping/pong bookkeeping, and how each delivery goes out. Sans I/O: the
//! handlers in [`engine`](super::engine) and [`polling`](super::polling) do the reading
//! and writing.

use std::time::Duration;

use axum::body::Bytes;
use herald_core::db::DbError;
use herald_core::event::EventType;
use herald_core::fanout::Broadcast;
use serde::Serialize;
use serde_json::Value;
use stream_protocols::engineio::{self, Handshake};
use stream_protocols::socketio::{self, PacketType, ROOT};
use stream_protocols::websocket::{self, Read, close_code};

use super::auth::{Resume, parse_auth};
use crate::stream::replay::Delivery;
use crate::stream::wire::{Closing, Reset};

pub const TRANSPORT: &str = "socketio";

/// How long a client has to connect to the namespace (the Socket.IO server's default).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// Engine.IO's handshake values besides the ping interval.
const PING_TIMEOUT_MS: u64 = 20_000;
/// The most a long-polling POST may carry.
pub(super) const MAX_PAYLOAD: usize = 100_000;
/// Client messages up to this long are read (the connect packet and its `auth`); longer ones
/// are skipped unread.
pub(super) const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// `40{"sid"}`: the answer to a namespace connect.
pub(super) fn connected_packet() -> String {
    let data = serde_json::json!({ "sid": new_id() }).to_string();
    socketio::Packet::new(PacketType::Connect, Some(&data)).to_message()
}

pub(super) enum Before {
    /// `40`: the resume point, or the `44` packet that refuses the connect.
    Connect(Result<Resume, String>),
    Close,
    Other,
}

pub(super) fn before_connect(message: &[u8]) -> Before {
    let Ok(text) = std::str::from_utf8(message) else {
        return Before::Other;
    };
    let message = match engineio::Packet::decode(text).map(|packet| (packet.kind, packet.data)) {
        Ok((engineio::PacketType::Message, message)) => message,
        Ok((engineio::PacketType::Close, _)) => return Before::Close,
        _ => return Before::Other,
    };
    let connect = match socketio::Packet::decode(message) {
        Ok(packet) if packet.kind == PacketType::Connect => packet,
        _ => return Before::Other,
    };
    if connect.namespace != ROOT {
        let refusal = socketio::connect_error(connect.namespace, "Invalid namespace");
        return Before::Connect(Err(refusal));
    }
    let auth = match connect.data {
        None => Ok(Value::Null),
        Some(json) => {
            serde_json::from_str(json).map_err(|error| format!("auth is not valid JSON: {error}"))
        }
    };
    Before::Connect(
        auth.and_then(|auth| parse_auth(&auth))
            .map_err(|message| socketio::connect_error(ROOT, &message)),
    )
}

/// Whether a Socket.IO packet disconnects the client from the namespace, which ends its
/// session, as it has no other.
pub(super) fn is_disconnect(message: &str) -> bool {
    socketio::Packet::decode(message)
        .is_ok_and(|packet| packet.kind == PacketType::Disconnect && packet.namespace == ROOT)
}

/// A client's Engine.IO session.
#[derive(Debug)]
pub struct Session {
    /// What the client sends over WebSocket.
    pub(super) inbound: websocket::Inbound,
    engine: engineio::Session,
}

/// What a delivery other than an event amounts to.
pub(super) struct Reaction {
    pub packets: Vec<String>,
    /// Set when the connection closes after the packets, with the WebSocket close frame's
    /// code and reason.
    pub close: Option<(u16, &'static str)>,
}

impl Session {
    pub fn new() -> Self {
        Self {
            inbound: websocket::Inbound::keeping_text(MAX_CLIENT_MESSAGE),
            engine: engineio::Session::default(),
        }
    }

    /// The session of a client that moved from long-polling to a WebSocket, read by `inbound`.
    pub(super) fn upgraded(self, inbound: websocket::Inbound) -> Self {
        Self { inbound, ..self }
    }

    /// A packet the client sent by long-polling.
    pub(super) fn receive<'a>(&mut self, packet: &'a str) -> engineio::Received<'a> {
        self.engine.receive(packet)
    }

    /// Takes bytes from the client: pongs, connects to other namespaces (refused), and
    /// whether it leaves.
    pub fn push(&mut self, input: &[u8], replies: &mut Vec<Bytes>) -> Read {
        if let Read::Closing(close) = self.inbound.push(input, replies) {
            return Read::Closing(close);
        }
        for message in self.inbound.take_texts() {
            let Ok(packet) = std::str::from_utf8(&message) else {
                continue;
            };
            let message = match self.engine.receive(packet) {
                engineio::Received::Message(message) => message,
                engineio::Received::Close => {
                    return Read::Closing(websocket::close(close_code::NORMAL, ""));
                }
                engineio::Received::Nothing => continue,
            };
            if is_disconnect(message) {
                return Read::Closing(websocket::close(close_code::NORMAL, ""));
            }
            match socketio::Packet::decode(message) {
                // A client multiplexing namespaces over this connection waits for an answer.
                Ok(packet) if packet.kind == PacketType::Connect && packet.namespace != ROOT => {
                    let refusal = socketio::connect_error(packet.namespace, "Invalid namespace");
                    replies.push(text(&refusal));
                }
                _ => {}
            }
        }
        Read::Open
    }

    /// The frames for a delivery other than an event, and whether the stream goes on after
    /// them. `last_sequence` is the feed's, after the delivery.
    pub fn other(
        &mut self,
        delivery: Result<Delivery, DbError>,
        last_sequence: i64,
    ) -> (Bytes, bool) {
        if let Ok(Delivery::Event(event)) = &delivery {
            return (event_frame(event), true);
        }
        let reaction = self.react(delivery, last_sequence);
        let mut frames: Vec<Bytes> = reaction.packets.iter().map(|p| text(p)).collect();
        if let Some((code, reason)) = reaction.close {
            frames.push(websocket::close(code, reason));
        }
        (frames.concat().into(), reaction.close.is_none())
    }

    /// The packets for a delivery, whichever transport carries them.
    pub(super) fn react(
        &mut self,
        delivery: Result<Delivery, DbError>,
        last_sequence: i64,
    ) -> Reaction {
        let open = |packets| Reaction {
            packets,
            close: None,
        };
        let leaving = |closing: Closing, code, reason| Reaction {
            packets: vec![
                emit(&("error", closing)),
                socketio::Packet::new(PacketType::Disconnect, None).to_message(),
            ],
            close: Some((code, reason)),
        };
        match delivery {
            Ok(Delivery::Event(event)) => open(vec![event_packet(&event)]),
            Ok(Delivery::Recovered(recovered)) => open(vec![emit(&("recovered", recovered))]),
            Ok(Delivery::Reset { latest }) => open(vec![emit(&("reset", Reset::new(latest)))]),
            Ok(Delivery::KeepAlive) => match self.engine.ping() {
                Some(ping) => open(vec![ping.encode()]),
                None => Reaction {
                    packets: Vec::new(),
                    close: Some((close_code::NORMAL, "ping timeout")),
                },
            },
            Ok(Delivery::SlowConsumer) => leaving(
                Closing::slow_consumer(last_sequence),
                close_code::POLICY,
                "slow consumer",
            ),
            Ok(Delivery::Expired) => leaving(
                Closing::token_expired(last_sequence),
                close_code::POLICY,
                "token expired",
            ),
            // A closed connection without a disconnect packet: clients reconnect on their own.
            Ok(Delivery::Shutdown) => Reaction {
                packets: Vec::new(),
                close: Some((close_code::RESTART, "service restart")),
            },
            Err(error) => {
                tracing::warn!(%error, "Socket.IO stream ends: the event log is unavailable");
                leaving(
                    Closing::unavailable(last_sequence),
                    close_code::ERROR,
                    "event log unavailable",
                )
            }
        }
    }
}

/// A `notification` or `notification:updated` event's frame; the same for every client.
pub fn event_frame(event: &Broadcast) -> Bytes {
    text(&event_packet(event))
}

fn event_packet(event: &Broadcast) -> String {
    let name = event_name(event.event.kind);
    let args = format!(
        "[\"{name}\",{},{}]",
        event.notification_json().get(),
        event.event.sequence
    );
    socketio::Packet::new(PacketType::Event, Some(&args)).to_message()
}

/// Engine.IO's open packet. A long-polling session (`polling`) offers the upgrade.
pub(super) fn open_packet(keepalive: Duration, sid: &str, polling: bool) -> String {
    let ping_interval = u64::try_from(keepalive.as_millis()).unwrap_or(u64::MAX);
    let upgrades: &[&str] = if polling { &["websocket"] } else { &[] };
    Handshake {
        max_payload: MAX_PAYLOAD as u64,
        ping_interval,
        ping_timeout: PING_TIMEOUT_MS,
        sid,
        upgrades,
    }
    .packet()
}

/// The Socket.IO event `data` (its name and arguments, as JSON), on the root namespace.
fn emit(data: &impl Serialize) -> String {
    // Our payloads are plain data; serializing them cannot fail.
    let data = serde_json::to_string(data).unwrap_or_default();
    socketio::Packet::new(PacketType::Event, Some(&data)).to_message()
}

pub(super) fn text(packet: &str) -> Bytes {
    websocket::text(packet.as_bytes())
}

pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The Socket.IO event a notification event goes out as.
fn event_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Created => "notification",
        EventType::Delivered | EventType::Failed => "notification:updated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::replay::Start;

    fn payload(frame: &Bytes) -> &str {
        std::str::from_utf8(&frame[2..]).unwrap()
    }

    #[test]
    fn the_namespace_connect_carries_the_resume_point() {
        let Before::Connect(Ok(resume)) = before_connect(br#"40{"lastSequence":7,"userId":"u"}"#)
        else {
            panic!("a valid connect");
        };
        assert_eq!(resume.start, Start::After(7));
        assert_eq!(resume.user_id.as_deref(), Some("u"));
        for plain in [&b"40"[..], b"40/,"] {
            assert!(matches!(
                before_connect(plain),
                Before::Connect(Ok(Resume {
                    start: Start::Live,
                    user_id: None,
                    token: None,
                }))
            ));
        }
        assert!(matches!(before_connect(b"1"), Before::Close));
        assert!(matches!(before_connect(b"42[\"hi\"]"), Before::Other));
    }

    #[test]
    fn a_bad_connect_is_refused_with_a_reason() {
        let refusal = |message: &[u8]| match before_connect(message) {
            Before::Connect(Err(refusal)) => refusal,
            _ => panic!("{} was not refused", String::from_utf8_lossy(message)),
        };
        assert!(
            refusal(br#"40{"lastSequence":"soon"}"#)
                .starts_with(r#"44{"message":"auth.lastSequence"#)
        );
        assert!(refusal(b"40{oops").starts_with(r#"44{"message":"auth is not valid JSON"#));
        assert_eq!(
            refusal(b"40/admin,{}"),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
    }

    #[test]
    fn a_connected_client_answers_pings_is_refused_other_namespaces_and_leaves() {
        let mut session = Session::new();
        for _ in 0..engineio::MAX_UNANSWERED_PINGS {
            let (ping, more) = session.other(Ok(Delivery::KeepAlive), 0);
            assert_eq!((payload(&ping), more), ("2", true));
        }
        let (_, more) = session.other(Ok(Delivery::KeepAlive), 0);
        assert!(!more, "closed at the third ping");

        // Still two unanswered.
        let pong = [0x81, 0x81, 0, 0, 0, 0, b'3'];
        assert_eq!(session.push(&pong, &mut Vec::new()), Read::Open);
        let (ping, more) = session.other(Ok(Delivery::KeepAlive), 0);
        assert_eq!(
            (payload(&ping), more),
            ("2", true),
            "a pong resets the count"
        );
        let mut replies = Vec::new();
        let other_namespace = [
            0x81, 0x89, 0, 0, 0, 0, b'4', b'0', b'/', b'a', b'd', b'm', b'i', b'n', b',',
        ];
        assert_eq!(session.push(&other_namespace, &mut replies), Read::Open);
        assert_eq!(replies.len(), 1);
        assert_eq!(
            payload(&replies[0]),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
        let disconnect = [0x81, 0x82, 0, 0, 0, 0, b'4', b'1'];
        assert!(matches!(
            session.push(&disconnect, &mut Vec::new()),
            Read::Closing(_)
        ));
    }
}
