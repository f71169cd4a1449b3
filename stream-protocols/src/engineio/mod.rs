//! Engine.IO 4, the transport under Socket.IO 5: its packets, the long-polling payload, the
//! open handshake, and the session a server keeps for a client:
//!
//! 1. handshake: the server answers with the open packet ([`Handshake`]), on long-polling or
//!    straight on a WebSocket;
//! 2. open: packets flow; the server pings every interval and the client answers each ping
//!    with a pong ([`Session`]);
//! 3. upgrade, for a session that began on long-polling ([`Polling`]): the client opens a
//!    WebSocket and probes it (`2probe`, answered `3probe`, while the pending poll is ended
//!    with a noop), then sends `5` on it, and the session goes on over the WebSocket;
//! 4. closed: either side sends `1`, or the client leaves pings unanswered.

mod polling;
mod session;

pub use polling::{PollBusy, Polling, Probe, ProbeStep, Taken};
pub use session::{MAX_UNANSWERED_PINGS, Received, Session};

use serde::Serialize;

/// Separates packets in a long-polling body.
pub const SEPARATOR: char = '\u{1e}';

/// The type of a packet: its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    const ALL: [Self; 7] = [
        Self::Open,
        Self::Close,
        Self::Ping,
        Self::Pong,
        Self::Message,
        Self::Upgrade,
        Self::Noop,
    ];

    fn digit(self) -> char {
        char::from(b'0' + self as u8)
    }
}

/// A text packet: a type and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: PacketType,
    pub data: &'a str,
}

/// Why a packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    /// A binary packet (`b` and base64 on long-polling); this server speaks text only.
    Binary,
    UnknownType(char),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("an empty packet"),
            Self::Binary => f.write_str("binary packets are not supported"),
            Self::UnknownType(kind) => write!(f, "unknown packet type {kind:?}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl<'a> Packet<'a> {
    pub const fn new(kind: PacketType, data: &'a str) -> Self {
        Self { kind, data }
    }

    pub fn decode(text: &'a str) -> Result<Self, DecodeError> {
        let mut chars = text.chars();
        let kind = match chars.next() {
            None => return Err(DecodeError::Empty),
            Some('b') => return Err(DecodeError::Binary),
            Some(digit @ '0'..='6') => PacketType::ALL[usize::from(digit as u8 - b'0')],
            Some(other) => return Err(DecodeError::UnknownType(other)),
        };
        Ok(Self {
            kind,
            data: chars.as_str(),
        })
    }

    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(1 + self.data.len());
        out.push(self.kind.digit());
        out.push_str(self.data);
        out
    }
}

/// The packets of a long-polling body, one string.
pub fn encode_payload<S: AsRef<str>>(packets: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for (at, packet) in packets.into_iter().enumerate() {
        if at > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(packet.as_ref());
    }
    out
}

/// The packets of a long-polling body.
pub fn split_payload(payload: &str) -> impl Iterator<Item = &str> {
    payload.split(SEPARATOR)
}

/// The open packet's data. Its fields are in the order the server has always sent them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake<'a> {
    /// The most a long-polling body may carry.
    pub max_payload: u64,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub sid: &'a str,
    /// Transports the session may move to: `websocket` for a long-polling session.
    pub upgrades: &'a [&'a str],
}

impl Handshake<'_> {
    /// The open packet, `0{...}`.
    pub fn packet(&self) -> String {
        // Plain data; serializing it cannot fail.
        let data = serde_json::to_string(self).unwrap_or_default();
        Packet::new(PacketType::Open, &data).encode()
    }
}

/// What an Engine.IO request's query says; other parameters (such as the cache buster `t`)
/// are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `EIO`: 4 for Engine.IO 4.
    pub version: Option<String>,
    pub transport: Option<String>,
    pub sid: Option<String>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let mut parsed = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = Some(value.to_owned());
            match name {
                "EIO" => parsed.version = value,
                "transport" => parsed.transport = value,
                "sid" => parsed.sid = value,
                _ => {}
            }
        }
        parsed
    }
}

/// The errors Engine.IO answers a request with, as `{"code", "message"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    UnknownTransport,
    UnknownSession,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl RequestError {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSession => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_a_type_digit_and_data() {
        for (text, kind, data) in [
            ("0{}", PacketType::Open, "{}"),
            ("1", PacketType::Close, ""),
            ("2probe", PacketType::Ping, "probe"),
            ("3", PacketType::Pong, ""),
            ("42[\"a\"]", PacketType::Message, "2[\"a\"]"),
            ("5", PacketType::Upgrade, ""),
            ("6", PacketType::Noop, ""),
        ] {
            let packet = Packet::decode(text).unwrap();
            assert_eq!(packet, Packet::new(kind, data));
            assert_eq!(packet.encode(), text);
        }
        assert_eq!(Packet::decode(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode("bAQID"), Err(DecodeError::Binary));
        assert_eq!(Packet::decode("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(Packet::decode("é"), Err(DecodeError::UnknownType('é')));
        assert_eq!(
            DecodeError::Binary.to_string(),
            "binary packets are not supported"
        );
    }

    #[test]
    fn a_payload_joins_packets_with_the_record_separator() {
        let payload = encode_payload(["40{}", "42[\"a\"]", "1"]);
        assert_eq!(payload, "40{}\u{1e}42[\"a\"]\u{1e}1");
        assert_eq!(
            split_payload(&payload).collect::<Vec<_>>(),
            ["40{}", "42[\"a\"]", "1"]
        );
        assert_eq!(encode_payload([""; 0]), "");
        assert_eq!(split_payload("3").collect::<Vec<_>>(), ["3"]);
    }

    #[test]
    fn the_open_packet_is_what_socket_io_client_expects() {
        let handshake = Handshake {
            max_payload: 100_000,
            ping_interval: 25_000,
            ping_timeout: 20_000,
            sid: "abc",
            upgrades: &["websocket"],
        };
        assert_eq!(
            handshake.packet(),
            r#"0{"maxPayload":100000,"pingInterval":25000,"pingTimeout":20000,"sid":"abc","upgrades":["websocket"]}"#
        );
    }

    #[test]
    fn the_query_names_version_transport_and_session() {
        let query = Query::parse(Some("EIO=4&transport=polling&t=PxYz&sid=abc"));
        assert_eq!(query.version.as_deref(), Some("4"));
        assert_eq!(query.transport.as_deref(), Some("polling"));
        assert_eq!(query.sid.as_deref(), Some("abc"));
        assert_eq!(Query::parse(None), Query::default());
        assert_eq!(Query::parse(Some("EIO")).version.as_deref(), Some(""));
    }

    #[test]
    fn request_errors_carry_engine_io_codes() {
        assert_eq!(RequestError::UnknownTransport.code(), 0);
        assert_eq!(RequestError::UnknownSession.message(), "Session ID unknown");
        assert_eq!(RequestError::UnsupportedProtocolVersion.code(), 5);
    }
}
