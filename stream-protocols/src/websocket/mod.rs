//! The WebSocket wire format (RFC 6455) as a server that streams to its clients speaks it:
//! the handshake's accept key, the frames the server sends, and a reader of what clients send
//! ([`Inbound`]), of which only pings, close frames and short text messages matter to a
//! one-way stream.

#[cfg(test)]
mod autobahn_control;
#[cfg(test)]
mod autobahn_framing;
#[cfg(test)]
mod harness;
mod inbound;
#[cfg(test)]
mod testing;

pub use inbound::{Inbound, MAX_HEADER, Read};

use base64::Engine as _;
use bytes::Bytes;
use sha1::{Digest, Sha1};

/// The RFC's fixed key suffix.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// Control frames carry at most this much.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame as a client sends it: masked with `mask`, its first byte (FIN, RSV, opcode) given.
/// For clients and tests of a server; a server's own frames are never masked.
pub fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEADER + payload.len());
    out.push(first);
    match payload.len() {
        short @ 0..126 => out.push(0x80 | short as u8),
        medium @ 126..65_536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Close codes (RFC 6455, section 7.4).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    /// The client broke the protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A close reason that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The client broke a policy: here, it fell too far behind.
    pub const POLICY: u16 = 1008;
    pub const ERROR: u16 = 1011;
    pub const RESTART: u16 = 1012;

    /// Whether a peer may send `code` in a close frame: the RFC's codes less those reserved
    /// for reporting (1004-1006, 1015), the IANA registry's, and the private range.
    pub fn may_be_sent(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// `Sec-WebSocket-Accept` for a handshake's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

pub fn text(payload: &[u8]) -> Bytes {
    frame(TEXT, payload)
}

pub fn ping() -> Bytes {
    Bytes::from_static(&[0x80 | PING, 0])
}

pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    frame(CLOSE, &payload)
}

/// An unfragmented, unmasked frame (servers do not mask).
fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut header = [0; 10];
    header[0] = 0x80 | opcode;
    let header_length = match (u8::try_from(payload.len()), u16::try_from(payload.len())) {
        (Ok(short), _) if short < 126 => {
            header[1] = short;
            2
        }
        (_, Ok(medium)) => {
            header[1] = 126;
            header[2..4].copy_from_slice(&medium.to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            header[2..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
            10
        }
    };
    // Exactly as long as the frame: a vector with room to spare becomes `Bytes` through a
    // second allocation.
    let mut out = Vec::with_capacity(header_length + payload.len());
    out.extend_from_slice(&header[..header_length]);
    out.extend_from_slice(payload);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfcs_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn server_frames_use_the_shortest_length() {
        assert_eq!(&text(b"hi")[..], [0x81, 2, b'h', b'i']);
        assert_eq!(&text(&[b'x'; 125])[..2], [0x81, 125]);
        assert_eq!(&text(&[b'x'; 126])[..4], [0x81, 126, 0, 126]);
        let medium = text(&[b'x'; 300]);
        assert_eq!(&medium[..4], [0x81, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        assert_eq!(&text(&vec![b'x'; 65_535])[..4], [0x81, 126, 255, 255]);
        let long = text(&vec![b'x'; 70_000]);
        assert_eq!(&long[..2], [0x81, 127]);
        assert_eq!(&long[2..10], 70_000u64.to_be_bytes());
        assert_eq!(long.len(), 70_010);
        assert_eq!(
            &close(1008, "slow")[..],
            [0x88, 6, 3, 240, b's', b'l', b'o', b'w']
        );
        assert_eq!(&ping()[..], [0x89, 0]);
        assert_eq!(&text(b"")[..], [0x81, 0]);
    }

    #[test]
    fn only_codes_a_peer_may_send_are_valid() {
        for valid in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(close_code::may_be_sent(valid), "{valid}");
        }
        for reserved in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!close_code::may_be_sent(reserved), "{reserved}");
        }
    }
}
