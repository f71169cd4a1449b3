//! Socket.IO 5 packets, each carried by an Engine.IO message: a type digit, the namespace
//! unless it is `/` (`/admin,`), an ack id for events and acks, then JSON data.

use serde::Serialize;

use crate::engineio;

/// The namespace every client has, and the one this server serves.
pub const ROOT: &str = "/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
}

impl PacketType {
    fn digit(self) -> char {
        char::from(b'0' + self as u8)
    }
}

/// A packet, borrowing from the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: PacketType,
    pub namespace: &'a str,
    /// Events and acks only.
    pub id: Option<u64>,
    /// The JSON text, unread: the application reads what it needs.
    pub data: Option<&'a str>,
}

/// Why a packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    /// BINARY_EVENT and BINARY_ACK, which send their attachments as further packets.
    Binary,
    UnknownType(char),
    /// An ack id too large for 64 bits.
    AckId,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("an empty packet"),
            Self::Binary => f.write_str(
                "binary packets (BINARY_EVENT, BINARY_ACK) are not supported: send JSON",
            ),
            Self::UnknownType(kind) => write!(f, "unknown packet type {kind:?}"),
            Self::AckId => f.write_str("the ack id does not fit 64 bits"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl<'a> Packet<'a> {
    /// A packet on the root namespace, without an ack id.
    pub fn new(kind: PacketType, data: Option<&'a str>) -> Self {
        Self {
            kind,
            namespace: ROOT,
            id: None,
            data,
        }
    }

    /// Reads the data of an Engine.IO message.
    pub fn decode(text: &'a str) -> Result<Self, DecodeError> {
        let kind = match text.as_bytes().first() {
            None => return Err(DecodeError::Empty),
            Some(b'0') => PacketType::Connect,
            Some(b'1') => PacketType::Disconnect,
            Some(b'2') => PacketType::Event,
            Some(b'3') => PacketType::Ack,
            Some(b'4') => PacketType::ConnectError,
            Some(b'5' | b'6') => return Err(DecodeError::Binary),
            Some(_) => {
                let first = text.chars().next().unwrap_or_default();
                return Err(DecodeError::UnknownType(first));
            }
        };
        let mut rest = &text[1..];
        let mut namespace = ROOT;
        if rest.starts_with('/') {
            let (named, after) = rest.split_once(',').unwrap_or((rest, ""));
            namespace = named;
            rest = after;
        }
        let mut id = None;
        // Only events and acks have ids: the data of a connect may begin with digits.
        if matches!(kind, PacketType::Event | PacketType::Ack) {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                id = Some(rest[..digits].parse().map_err(|_| DecodeError::AckId)?);
                rest = &rest[digits..];
            }
        }
        Ok(Self {
            kind,
            namespace,
            id,
            data: Some(rest).filter(|data| !data.is_empty()),
        })
    }

    pub fn encode(&self) -> String {
        let mut out =
            String::with_capacity(1 + self.namespace.len() + 21 + self.data.map_or(0, str::len));
        self.encode_into(&mut out);
        out
    }

    /// The Engine.IO message that carries the packet.
    pub fn to_message(&self) -> String {
        let mut out = engineio::Packet::new(engineio::PacketType::Message, "").encode();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut String) {
        out.push(self.kind.digit());
        // The root namespace goes without saying.
        if self.namespace != ROOT && !self.namespace.is_empty() {
            out.push_str(self.namespace);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        out.push_str(self.data.unwrap_or_default());
    }
}

/// The Engine.IO message refusing a connect to `namespace`, telling the client why.
pub fn connect_error(namespace: &str, message: &str) -> String {
    refusal(namespace, message, None)
}

/// As [`connect_error`], with `data: {"code": code}`, which `socket.io-client` hands to its
/// `connect_error` listener as `error.data`: a stable code next to the message.
pub fn connect_error_with_code(namespace: &str, message: &str, code: &str) -> String {
    refusal(namespace, message, Some(code))
}

fn refusal(namespace: &str, message: &str, code: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Code<'a> {
        code: &'a str,
    }
    #[derive(Serialize)]
    struct Refusal<'a> {
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Code<'a>>,
    }
    let data = code.map(|code| Code { code });
    // Plain data; serializing it cannot fail.
    let data = serde_json::to_string(&Refusal { message, data }).unwrap_or_default();
    Packet {
        namespace,
        ..Packet::new(PacketType::ConnectError, Some(&data))
    }
    .to_message()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet<'a>(
        kind: PacketType,
        namespace: &'a str,
        id: Option<u64>,
        data: Option<&'a str>,
    ) -> Packet<'a> {
        Packet {
            kind,
            namespace,
            id,
            data,
        }
    }

    #[test]
    fn packets_read_and_write_the_same() {
        for (text, expected) in [
            ("0", packet(PacketType::Connect, ROOT, None, None)),
            (
                r#"0{"token":"x"}"#,
                packet(PacketType::Connect, ROOT, None, Some(r#"{"token":"x"}"#)),
            ),
            (
                "0/admin,",
                packet(PacketType::Connect, "/admin", None, None),
            ),
            ("1", packet(PacketType::Disconnect, ROOT, None, None)),
            (
                "1/admin,",
                packet(PacketType::Disconnect, "/admin", None, None),
            ),
            (
                r#"2["hello",1]"#,
                packet(PacketType::Event, ROOT, None, Some(r#"["hello",1]"#)),
            ),
            (
                r#"2/chat,12["hi"]"#,
                packet(PacketType::Event, "/chat", Some(12), Some(r#"["hi"]"#)),
            ),
            (
                r#"312["ok"]"#,
                packet(PacketType::Ack, ROOT, Some(12), Some(r#"["ok"]"#)),
            ),
            (
                r#"4{"message":"no"}"#,
                packet(
                    PacketType::ConnectError,
                    ROOT,
                    None,
                    Some(r#"{"message":"no"}"#),
                ),
            ),
        ] {
            let read = Packet::decode(text).unwrap();
            assert_eq!(read, expected, "{text}");
            assert_eq!(read.encode(), text);
        }
    }

    #[test]
    fn the_root_namespace_may_be_written_out() {
        let read = Packet::decode(r#"0/,{"a":1}"#).unwrap();
        assert_eq!(read.namespace, ROOT);
        assert_eq!(read.data, Some(r#"{"a":1}"#));
        assert_eq!(read.encode(), r#"0{"a":1}"#);
        let unterminated = Packet::decode("0/admin").unwrap();
        assert_eq!(
            (unterminated.namespace, unterminated.data),
            ("/admin", None)
        );
    }

    #[test]
    fn a_connect_has_no_ack_id() {
        let read = Packet::decode("0123").unwrap();
        assert_eq!((read.id, read.data), (None, Some("123")));
    }

    #[test]
    fn binary_and_unknown_packets_are_refused_with_a_reason() {
        assert_eq!(
            Packet::decode(r#"51-["a",{"_placeholder":true,"num":0}]"#),
            Err(DecodeError::Binary)
        );
        assert_eq!(Packet::decode("6-0[]"), Err(DecodeError::Binary));
        assert!(DecodeError::Binary.to_string().contains("not supported"));
        assert_eq!(Packet::decode(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(Packet::decode("x"), Err(DecodeError::UnknownType('x')));
        assert_eq!(
            Packet::decode("299999999999999999999[]"),
            Err(DecodeError::AckId)
        );
    }

    #[test]
    fn packets_travel_in_engine_io_messages() {
        let event = Packet::new(PacketType::Event, Some(r#"["notification",{},7]"#));
        assert_eq!(event.to_message(), r#"42["notification",{},7]"#);
        assert_eq!(Packet::new(PacketType::Disconnect, None).to_message(), "41");
        assert_eq!(
            connect_error("/admin", "Invalid namespace"),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            connect_error(ROOT, "auth \"x\""),
            r#"44{"message":"auth \"x\""}"#
        );
        assert_eq!(
            connect_error_with_code(ROOT, "expired", "token_expired"),
            r#"44{"message":"expired","data":{"code":"token_expired"}}"#
        );
    }
}
