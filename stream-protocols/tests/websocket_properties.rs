//! Properties of the WebSocket reader: a valid stream of client frames reads the same in any
//! pieces, and no input makes it panic or hold more than its bound.

use proptest::prelude::*;
use stream_protocols::websocket::{self, Inbound, Read, close_code};

/// Text messages up to this long are kept.
const KEEP: usize = 64;

/// A message a client may send.
#[derive(Debug, Clone)]
enum Message {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A text message in fragments, with a ping after the first.
    Fragmented(Vec<Vec<u8>>, Vec<u8>),
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => payload(2 * KEEP).prop_map(Message::Text),
        2 => payload(300).prop_map(Message::Binary),
        1 => (0usize..3).prop_map(|size| Message::Binary(vec![7; [65_535, 65_536, 70_000][size]])),
        2 => payload(125).prop_map(Message::Ping),
        1 => payload(125).prop_map(Message::Pong),
        2 => (prop::collection::vec(payload(20), 2..5), payload(125))
            .prop_map(|(parts, ping)| Message::Fragmented(parts, ping)),
    ]
}

/// What reading a stream comes to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    texts: Vec<Vec<u8>>,
    replies: Vec<u8>,
    closing: Option<Vec<u8>>,
}

/// The stream's bytes, and what a reader keeping text up to [`KEEP`] must make of them.
fn stream(messages: &[Message], close: Option<u16>, mask: [u8; 4]) -> (Vec<u8>, Outcome) {
    let (mut bytes, mut expected) = (Vec::new(), Outcome::default());
    for message in messages {
        match message {
            Message::Text(text) => {
                bytes.extend(websocket::client_frame(0x81, text, mask));
                if !text.is_empty() && text.len() <= KEEP {
                    expected.texts.push(text.clone());
                }
            }
            Message::Binary(data) => bytes.extend(websocket::client_frame(0x82, data, mask)),
            Message::Ping(data) => {
                bytes.extend(websocket::client_frame(0x89, data, mask));
                expected.replies.extend(server_frame(0x8A, data));
            }
            Message::Pong(data) => bytes.extend(websocket::client_frame(0x8A, data, mask)),
            Message::Fragmented(parts, ping) => {
                for (at, part) in parts.iter().enumerate() {
                    let fin = if at + 1 == parts.len() { 0x80 } else { 0 };
                    let opcode = if at == 0 { 1 } else { 0 };
                    bytes.extend(websocket::client_frame(fin | opcode, part, mask));
                    if at == 0 {
                        bytes.extend(websocket::client_frame(0x89, ping, mask));
                        expected.replies.extend(server_frame(0x8A, ping));
                    }
                }
            }
        }
    }
    if let Some(code) = close {
        bytes.extend(websocket::client_frame(0x88, &code.to_be_bytes(), mask));
        expected.closing = Some(server_frame(0x88, &code.to_be_bytes()));
    }
    (bytes, expected)
}

fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    [&[first, payload.len() as u8][..], payload].concat()
}

/// Reads `bytes` cut at `cuts`, checking the memory bound after every piece.
fn read(bytes: &[u8], cuts: &[usize]) -> Outcome {
    let mut inbound = Inbound::keeping_text(KEEP);
    let mut outcome = Outcome::default();
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    for piece in cuts.windows(2) {
        let mut replies = Vec::new();
        let read = inbound.push(&bytes[piece[0]..piece[1]], &mut replies);
        assert!(inbound.buffered() <= inbound.max_buffered());
        outcome.texts.extend(inbound.take_texts());
        outcome.replies.extend(replies.concat());
        if let Read::Closing(close) = read {
            outcome.closing = Some(close.to_vec());
            break;
        }
    }
    outcome
}

proptest! {
    #[test]
    fn a_valid_stream_reads_the_same_in_any_pieces(
        messages in prop::collection::vec(message(), 0..12),
        close in prop::option::of(prop_oneof![Just(close_code::NORMAL), 3000u16..5000]),
        mask in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let (bytes, expected) = stream(&messages, close, mask);
        prop_assert_eq!(&read(&bytes, &[]), &expected);
        prop_assert_eq!(read(&bytes, &cuts), expected);
    }

    #[test]
    fn a_valid_stream_reads_the_same_a_byte_at_a_time(
        messages in prop::collection::vec(message(), 0..4),
        mask in any::<[u8; 4]>(),
    ) {
        let (bytes, expected) = stream(&messages, None, mask);
        let every_byte: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(read(&bytes, &every_byte), expected);
    }

    #[test]
    fn any_input_in_any_pieces_stays_within_the_bound(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        keep in 0usize..300,
    ) {
        let mut inbound = Inbound::keeping_text(keep);
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for cut in cuts {
            let mut replies = Vec::new();
            let _ = inbound.push(&bytes[at..cut], &mut replies);
            at = cut;
            prop_assert!(inbound.buffered() <= inbound.max_buffered());
            for text in inbound.take_texts() {
                prop_assert!(!text.is_empty() && text.len() <= keep);
            }
        }
    }

    #[test]
    fn masked_frames_with_any_header_stay_within_the_bound(
        first in any::<u8>(),
        length in prop_oneof![0u64..200, Just(u64::MAX), any::<u64>()],
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        // Random bytes rarely make a masked header; these always do.
        let mut bytes = vec![first, 0x80 | 127];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(&[9, 8, 7, 6]);
        bytes.extend_from_slice(&tail);
        let mut inbound = Inbound::keeping_text(100);
        for piece in bytes.chunks(7) {
            let _ = inbound.push(piece, &mut Vec::new());
            prop_assert!(inbound.buffered() <= inbound.max_buffered());
        }
    }
}
