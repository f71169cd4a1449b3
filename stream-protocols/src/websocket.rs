//! The WebSocket wire format (RFC 6455) for connections served apart from hyper: the
//! handshake's accept key, the frames the server sends, and reading what clients send, of
//! which only pings, close frames and (for Socket.IO) short text messages matter here (the
//! stream is one-way).

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
const MAX_CONTROL_PAYLOAD: u64 = 125;
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
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match (u8::try_from(payload.len()), u16::try_from(payload.len())) {
        (Ok(short), _) if short < 126 => out.push(short),
        (_, Ok(medium)) => {
            out.push(126);
            out.extend_from_slice(&medium.to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out.into()
}

/// What a client's bytes amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Open,
    /// The client closed, or broke the protocol: send this close frame, then end.
    Closing(Bytes),
}

/// Reads a client's frames as they arrive, in any pieces. Data frames are skipped without
/// being buffered, so a client cannot make the server hold more than one control frame;
/// [`Inbound::keeping_text`] keeps short text messages as well.
#[derive(Debug, Default)]
pub struct Inbound {
    /// The start of a frame not complete yet.
    partial: Vec<u8>,
    /// Payload bytes of a skipped frame still to come.
    skip: u64,
    /// Unfragmented text messages up to this long are kept; 0 keeps none.
    text_limit: u64,
    /// Text messages kept, for [`Inbound::take_texts`].
    texts: Vec<Vec<u8>>,
    /// Whether a fragmented message has begun and not ended.
    in_message: bool,
}

struct Header {
    opcode: u8,
    /// Whether this is a message's last (or only) frame.
    fin: bool,
    /// Header length, mask included.
    length: usize,
    payload: u64,
    mask: [u8; 4],
}

impl Header {
    /// `None` until the whole header is there.
    fn parse(bytes: &[u8]) -> Option<Result<Self, &'static str>> {
        let [first, second, rest @ ..] = bytes else {
            return None;
        };
        if first & 0x70 != 0 {
            return Some(Err("no extension was negotiated"));
        }
        if second & 0x80 == 0 {
            return Some(Err("frames from clients must be masked"));
        }
        let (payload, extended) = match second & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
                2,
            ),
            127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
            short => (u64::from(short), 0),
        };
        let mask = rest.get(extended..extended + 4)?.try_into().ok()?;
        let opcode = first & 0x0F;
        if opcode >= CLOSE && (payload > MAX_CONTROL_PAYLOAD || first & 0x80 == 0) {
            return Some(Err("control frames must be short and unfragmented"));
        }
        Some(Ok(Self {
            opcode,
            fin: first & 0x80 != 0,
            length: 2 + extended + 4,
            payload,
            mask,
        }))
    }
}

/// A continuation must continue a message, and a message must not start inside another.
fn check_fragments(in_message: &mut bool, header: &Header) -> Result<(), &'static str> {
    match header.opcode {
        CONTINUATION if !*in_message => return Err("a continuation frame with no message"),
        TEXT | BINARY if *in_message => return Err("a new message inside a fragmented one"),
        CONTINUATION | TEXT | BINARY => *in_message = !header.fin,
        _ => {}
    }
    Ok(())
}

/// The answer to a client's close frame: its code echoed, as the RFC suggests, unless the
/// frame itself is malformed.
fn close_reply(payload: &[u8]) -> Bytes {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            frame(CLOSE, &[])
        } else {
            close(close_code::PROTOCOL, "a close code has two bytes")
        };
    };
    let code = u16::from_be_bytes(*code);
    // Codes a peer may send (RFC 6455, section 7.4, and the IANA registry).
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return close(close_code::PROTOCOL, "invalid close code");
    }
    if std::str::from_utf8(reason).is_err() {
        return close(close_code::INVALID_PAYLOAD, "the close reason is not UTF-8");
    }
    frame(CLOSE, &code.to_be_bytes())
}

impl Inbound {
    /// A reader that also keeps unfragmented text messages of up to `limit` bytes (longer
    /// ones are skipped like any other data).
    pub fn keeping_text(limit: u64) -> Self {
        Self {
            text_limit: limit,
            ..Self::default()
        }
    }

    /// The text messages kept since the last call, in order.
    pub fn take_texts(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.texts)
    }

    /// Returns text messages taken but not acted on, to be taken again first.
    pub fn put_back(&mut self, texts: Vec<Vec<u8>>) {
        self.texts.splice(0..0, texts);
    }

    /// Takes bytes from the client; answers its pings into `replies`.
    pub fn push(&mut self, input: &[u8], replies: &mut Vec<Bytes>) -> Read {
        self.partial.extend_from_slice(input);
        let mut at = 0;
        let read = loop {
            let rest = &self.partial[at..];
            if self.skip > 0 {
                let skipped = usize::try_from(self.skip).map_or(rest.len(), |s| s.min(rest.len()));
                self.skip -= skipped as u64;
                at += skipped;
                if self.skip > 0 {
                    break Read::Open;
                }
                continue;
            }
            let header = match Header::parse(rest) {
                None => break Read::Open,
                Some(Err(problem)) => break Read::Closing(close(close_code::PROTOCOL, problem)),
                Some(Ok(header)) => header,
            };
            if let Err(problem) = check_fragments(&mut self.in_message, &header) {
                break Read::Closing(close(close_code::PROTOCOL, problem));
            }
            let kept_text = header.opcode == TEXT
                && header.fin
                && header.payload > 0
                && header.payload <= self.text_limit;
            match header.opcode {
                CLOSE | PING => {}
                TEXT if kept_text => {}
                CONTINUATION | TEXT | BINARY | PONG => {
                    at += header.length;
                    self.skip = header.payload;
                    continue;
                }
                _ => break Read::Closing(close(close_code::PROTOCOL, "unknown opcode")),
            }
            // Short (control frames are checked above, kept text is), so wait for all of it.
            let end = header.length + header.payload as usize;
            let Some(payload) = rest.get(header.length..end) else {
                break Read::Open;
            };
            let payload: Vec<u8> = payload
                .iter()
                .zip(header.mask.iter().cycle())
                .map(|(byte, mask)| byte ^ mask)
                .collect();
            match header.opcode {
                CLOSE => break Read::Closing(close_reply(&payload)),
                PING => replies.push(frame(PONG, &payload)),
                _ => self.texts.push(payload),
            }
            at += end;
        };
        self.partial.drain(..at);
        if self.partial.is_empty() {
            // Room for a frame is not kept between frames.
            self.partial = Vec::new();
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

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
        let medium = text(&[b'x'; 300]);
        assert_eq!(&medium[..4], [0x81, 126, 1, 44]);
        assert_eq!(medium.len(), 304);
        let long = text(&vec![b'x'; 70_000]);
        assert_eq!(&long[..2], [0x81, 127]);
        assert_eq!(long.len(), 70_010);
        assert_eq!(
            &close(1008, "slow")[..],
            [0x88, 6, 3, 240, b's', b'l', b'o', b'w']
        );
    }

    #[test]
    fn pings_are_answered_and_data_is_skipped_across_any_split() {
        let mut bytes = client_frame(TEXT, &[b'a'; 200]);
        bytes.extend(client_frame(PING, b"are you there"));
        bytes.extend(client_frame(PONG, b""));
        for split in 1..bytes.len() {
            let mut inbound = Inbound::default();
            let mut replies = Vec::new();
            assert_eq!(inbound.push(&bytes[..split], &mut replies), Read::Open);
            assert_eq!(inbound.push(&bytes[split..], &mut replies), Read::Open);
            assert_eq!(replies, [frame(PONG, b"are you there")], "split at {split}");
            assert!(inbound.partial.is_empty() && inbound.skip == 0);
        }
    }

    #[test]
    fn short_text_messages_are_kept_when_asked_for_across_any_split() {
        let mut bytes = client_frame(TEXT, b"40{\"lastSequence\":7}");
        bytes.extend(client_frame(TEXT, &[b'a'; 200]));
        bytes.extend(client_frame(PING, b"p"));
        bytes.extend(client_frame(TEXT, b"3"));
        for split in 1..bytes.len() {
            let mut inbound = Inbound::keeping_text(64);
            let mut replies = Vec::new();
            assert_eq!(inbound.push(&bytes[..split], &mut replies), Read::Open);
            assert_eq!(inbound.push(&bytes[split..], &mut replies), Read::Open);
            assert_eq!(
                inbound.take_texts(),
                [b"40{\"lastSequence\":7}".to_vec(), b"3".to_vec()],
                "split at {split}: the 200-byte message is over the limit"
            );
            assert_eq!(replies, [frame(PONG, b"p")]);
            assert!(inbound.partial.is_empty() && inbound.skip == 0);
        }
        let mut inbound = Inbound::default();
        assert_eq!(inbound.push(&bytes, &mut Vec::new()), Read::Open);
        assert!(inbound.take_texts().is_empty(), "none kept by default");
    }

    #[test]
    fn a_malformed_close_is_answered_with_the_fault() {
        let code = |payload: &[u8]| {
            let mut replies = Vec::new();
            let Read::Closing(reply) =
                Inbound::default().push(&client_frame(CLOSE, payload), &mut replies)
            else {
                panic!("a close frame closes");
            };
            reply.get(2..4).map(|c| u16::from_be_bytes([c[0], c[1]]))
        };
        assert_eq!(code(&[]), None, "an empty close is echoed empty");
        assert_eq!(code(&[3, 232, b'o', b'k']), Some(1000));
        assert_eq!(code(&4000u16.to_be_bytes()), Some(4000));
        assert_eq!(code(&[3]), Some(1002), "one byte");
        for invalid in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
            assert_eq!(code(&invalid.to_be_bytes()), Some(1002), "code {invalid}");
        }
        assert_eq!(
            code(&[3, 232, 0xFF]),
            Some(1007),
            "a reason that is not UTF-8"
        );
    }

    #[test]
    fn fragments_out_of_order_are_a_protocol_error() {
        let fragment = |opcode: u8, fin: bool| {
            let mut frame = client_frame(opcode, b"ab");
            if !fin {
                frame[0] &= 0x7F;
            }
            frame
        };
        let read = |frames: &[Vec<u8>]| Inbound::default().push(&frames.concat(), &mut Vec::new());
        assert_eq!(
            read(&[
                fragment(TEXT, false),
                fragment(CONTINUATION, false),
                fragment(CONTINUATION, true)
            ]),
            Read::Open
        );
        // A control frame may come between fragments.
        assert_eq!(
            read(&[
                fragment(BINARY, false),
                client_frame(PING, b""),
                fragment(CONTINUATION, true)
            ]),
            Read::Open
        );
        for wrong in [
            vec![fragment(CONTINUATION, true)],
            vec![fragment(TEXT, false), fragment(TEXT, true)],
            vec![fragment(TEXT, true), fragment(CONTINUATION, true)],
        ] {
            assert!(matches!(read(&wrong), Read::Closing(_)), "{wrong:?}");
        }
    }

    #[test]
    fn a_close_is_echoed_and_protocol_errors_close_with_1002() {
        let mut replies = Vec::new();
        let closing = Inbound::default().push(&client_frame(CLOSE, &[3, 232, b'b']), &mut replies);
        assert_eq!(closing, Read::Closing(frame(CLOSE, &[3, 232])));
        let unmasked = [0x81, 1, b'x'];
        let Read::Closing(frame) = Inbound::default().push(&unmasked, &mut replies) else {
            panic!("an unmasked frame is a protocol error");
        };
        assert_eq!(&frame[2..4], 1002u16.to_be_bytes());
        let long_ping = client_frame(PING, &[0; 126]);
        assert!(matches!(
            Inbound::default().push(&long_ping, &mut replies),
            Read::Closing(_)
        ));
        assert!(replies.is_empty());
    }
}
