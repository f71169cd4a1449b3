//! Reading what clients send, in whatever pieces the socket gives it, holding no more than
//! one frame's start: data frames are skipped as they pass, unless they are short text
//! messages that the reader was asked to keep.

use bytes::Bytes;

use super::{
    BINARY, CLOSE, CONTINUATION, MAX_CONTROL_PAYLOAD, PING, PONG, TEXT, close, close_code, frame,
};

/// The longest header a client frame can have: two bytes, a 64-bit length and the mask.
pub const MAX_HEADER: usize = 2 + 8 + 4;

/// What a client's bytes amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Open,
    /// The client closed, or broke the protocol: send this close frame, then end.
    Closing(Bytes),
}

/// Reads a client's frames as they arrive, in any pieces. Data frames are skipped without
/// being buffered, so a client cannot make the server hold more than one control frame;
/// [`Inbound::keeping_text`] keeps short text messages as well. What it holds between calls
/// never exceeds [`Inbound::max_buffered`]: frames that would need more are skipped (data)
/// or refused (control frames over the RFC's 125 bytes).
#[derive(Debug, Default)]
pub struct Inbound {
    /// The start of a frame not complete yet, never more than the frame needs.
    partial: Vec<u8>,
    /// Payload bytes of a skipped frame still to come.
    skip: u64,
    /// Unfragmented text messages up to this long are kept; 0 keeps none.
    text_limit: usize,
    /// Text messages kept, for [`Inbound::take_texts`].
    texts: Vec<Vec<u8>>,
    /// Whether a fragmented message has begun and not ended.
    in_message: bool,
    /// Set once the connection is closing: the frame that answered it, and nothing more is
    /// read.
    closing: Option<Bytes>,
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

/// How far the bytes at the start of a frame go.
enum Scan {
    /// Nothing can be done until there are this many bytes in all.
    More(usize),
    /// The header is complete and the payload is skipped as it passes.
    Skip(Header),
    /// The frame is complete, header and payload, and is acted on.
    Whole(Header),
    Fault(&'static str),
}

/// Reads the frame that `bytes` begins. `in_message` is whether a fragmented message is under
/// way; the frame's effect on it is for the caller to apply once the frame is taken.
fn scan(bytes: &[u8], in_message: bool, text_limit: usize) -> Scan {
    let [first, second, rest @ ..] = bytes else {
        return Scan::More(2);
    };
    if first & 0x70 != 0 {
        return Scan::Fault("no extension was negotiated");
    }
    if second & 0x80 == 0 {
        return Scan::Fault("frames from clients must be masked");
    }
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let length = 2 + extended + 4;
    let (Some(size), Some(mask)) = (rest.get(..extended), rest.get(extended..extended + 4)) else {
        return Scan::More(length);
    };
    let payload = match *size {
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => u64::from(second & 0x7F),
    };
    let opcode = first & 0x0F;
    let fin = first & 0x80 != 0;
    if opcode >= CLOSE && (payload > MAX_CONTROL_PAYLOAD as u64 || !fin) {
        return Scan::Fault("control frames must be short and unfragmented");
    }
    // A continuation must continue a message, and a message must not start inside another.
    match opcode {
        CONTINUATION if !in_message => return Scan::Fault("a continuation frame with no message"),
        TEXT | BINARY if in_message => return Scan::Fault("a new message inside a fragmented one"),
        _ => {}
    }
    let header = Header {
        opcode,
        fin,
        length,
        payload,
        mask: [mask[0], mask[1], mask[2], mask[3]],
    };
    let kept_text = opcode == TEXT && fin && payload > 0 && payload <= text_limit as u64;
    match opcode {
        CLOSE | PING => {}
        TEXT if kept_text => {}
        CONTINUATION | TEXT | BINARY | PONG => return Scan::Skip(header),
        _ => return Scan::Fault("unknown opcode"),
    }
    // Short: control frames are checked above, kept text is.
    let end = length + payload as usize;
    if bytes.len() < end {
        Scan::More(end)
    } else {
        Scan::Whole(header)
    }
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
    if !close_code::may_be_sent(code) {
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
    pub fn keeping_text(limit: usize) -> Self {
        Self {
            text_limit: limit,
            ..Self::default()
        }
    }

    /// The most this reader holds between calls: the longest header with the longest
    /// payload it keeps.
    pub fn max_buffered(&self) -> usize {
        MAX_HEADER + MAX_CONTROL_PAYLOAD.max(self.text_limit)
    }

    /// Bytes of a frame's start held now, waiting for the rest (kept texts not counted: they
    /// are the caller's, to take).
    pub fn buffered(&self) -> usize {
        self.partial.capacity()
    }

    /// The text messages kept since the last call, in order.
    pub fn take_texts(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.texts)
    }

    /// Returns text messages taken but not acted on, to be taken again first.
    pub fn put_back(&mut self, texts: Vec<Vec<u8>>) {
        self.texts.splice(0..0, texts);
    }

    /// Takes bytes from the client; answers its pings into `replies`. Once it returns
    /// [`Read::Closing`], it returns the same for anything more.
    pub fn push(&mut self, input: &[u8], replies: &mut Vec<Bytes>) -> Read {
        if let Some(close) = &self.closing {
            return Read::Closing(close.clone());
        }
        let read = self.read(input, replies);
        if let Read::Closing(close) = &read {
            self.closing = Some(close.clone());
            self.partial = Vec::new();
        }
        read
    }

    fn read(&mut self, mut input: &[u8], replies: &mut Vec<Bytes>) -> Read {
        loop {
            if self.skip > 0 {
                let skipped =
                    usize::try_from(self.skip).map_or(input.len(), |s| s.min(input.len()));
                self.skip -= skipped as u64;
                input = &input[skipped..];
                if self.skip > 0 {
                    return Read::Open;
                }
            }
            if input.is_empty() {
                return Read::Open;
            }
            let scanned = if self.partial.is_empty() {
                scan(input, self.in_message, self.text_limit)
            } else {
                // Only as much as the frame needs goes into the buffer; the rest of the input
                // is read in place.
                loop {
                    match scan(&self.partial, self.in_message, self.text_limit) {
                        Scan::More(need) if !input.is_empty() => {
                            let wanted = need - self.partial.len();
                            let take = wanted.min(input.len());
                            self.partial.reserve_exact(wanted);
                            self.partial.extend_from_slice(&input[..take]);
                            input = &input[take..];
                        }
                        scanned => break scanned,
                    }
                }
            };
            let buffered = !self.partial.is_empty();
            let bytes: &[u8] = if buffered { &self.partial } else { input };
            let taken = match scanned {
                Scan::More(need) => {
                    if !buffered {
                        self.partial.reserve_exact(need);
                        self.partial.extend_from_slice(input);
                    }
                    return Read::Open;
                }
                Scan::Fault(problem) => return Read::Closing(close(close_code::PROTOCOL, problem)),
                Scan::Skip(header) => {
                    self.skip = header.payload;
                    self.note_fragment(&header);
                    header.length
                }
                Scan::Whole(header) => {
                    let end = header.length + header.payload as usize;
                    let payload: Vec<u8> = bytes[header.length..end]
                        .iter()
                        .zip(header.mask.iter().cycle())
                        .map(|(byte, mask)| byte ^ mask)
                        .collect();
                    match header.opcode {
                        CLOSE => return Read::Closing(close_reply(&payload)),
                        PING => replies.push(frame(PONG, &payload)),
                        _ => self.texts.push(payload),
                    }
                    self.note_fragment(&header);
                    end
                }
            };
            if buffered {
                // Room for a frame is not kept between frames.
                self.partial = Vec::new();
            } else {
                input = &input[taken..];
            }
        }
    }

    fn note_fragment(&mut self, header: &Header) {
        if let CONTINUATION | TEXT | BINARY = header.opcode {
            self.in_message = !header.fin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::client_frame;
    use super::*;

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

    #[test]
    fn the_buffer_holds_no_more_than_the_frame_in_hand_needs() {
        let mut inbound = Inbound::keeping_text(1000);
        assert_eq!(inbound.max_buffered(), MAX_HEADER + 1000);
        assert_eq!(Inbound::default().max_buffered(), MAX_HEADER + 125);
        let text = client_frame(TEXT, &[b'x'; 1000]);
        let mut replies = Vec::new();
        for (at, byte) in text.iter().enumerate() {
            assert_eq!(inbound.push(&[*byte], &mut replies), Read::Open);
            let needed = match at + 1 {
                1 | 2 => 2,
                3..=8 => 8,
                _ => text.len(),
            };
            if at + 1 < text.len() {
                assert_eq!(inbound.buffered(), needed, "after {} bytes", at + 1);
            }
        }
        assert_eq!(inbound.buffered(), 0, "released once the frame is read");
        assert_eq!(inbound.take_texts(), [vec![b'x'; 1000]]);
    }

    #[test]
    fn a_frame_split_after_whole_ones_keeps_only_its_own_start() {
        let mut bytes = client_frame(PING, b"one");
        bytes.extend(client_frame(TEXT, &[b'y'; 300]));
        bytes.extend(client_frame(PING, b"two"));
        let mut inbound = Inbound::keeping_text(16);
        let mut replies = Vec::new();
        let cut = bytes.len() - 3;
        assert_eq!(inbound.push(&bytes[..cut], &mut replies), Read::Open);
        assert_eq!(
            inbound.buffered(),
            6 + 3,
            "the ping's header and the two bytes of it"
        );
        assert_eq!(inbound.push(&bytes[cut..], &mut replies), Read::Open);
        assert_eq!(replies, [frame(PONG, b"one"), frame(PONG, b"two")]);
    }

    #[test]
    fn huge_data_frames_pass_without_being_held() {
        let mut inbound = Inbound::keeping_text(16);
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(inbound.push(&header, &mut Vec::new()), Read::Open);
        for _ in 0..100 {
            assert_eq!(inbound.push(&[0; 4096], &mut Vec::new()), Read::Open);
            assert_eq!(inbound.buffered(), 0);
        }
        assert_eq!(inbound.skip, (1 << 40) - 100 * 4096);
    }

    #[test]
    fn after_a_fault_nothing_more_is_read() {
        let mut inbound = Inbound::keeping_text(16);
        let mut bytes = vec![0x81, 1, b'x'];
        bytes.extend(client_frame(TEXT, b"late"));
        let closing = inbound.push(&bytes, &mut Vec::new());
        assert!(matches!(closing, Read::Closing(_)));
        assert_eq!(
            inbound.push(&client_frame(PING, b""), &mut Vec::new()),
            closing
        );
        assert!(inbound.take_texts().is_empty());
        assert_eq!(inbound.buffered(), 0);
    }

    #[test]
    fn texts_put_back_come_first() {
        let mut inbound = Inbound::keeping_text(16);
        inbound.push(&client_frame(TEXT, b"new"), &mut Vec::new());
        inbound.put_back(vec![b"old".to_vec()]);
        assert_eq!(inbound.take_texts(), [b"old".to_vec(), b"new".to_vec()]);
    }
}
