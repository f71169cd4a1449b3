//! Reads client frames as the Autobahn cases send them, and sums up what the reader made of
//! them.

use super::{Inbound, Read};

/// How a test hands the client's bytes to the reader.
#[derive(Debug, Clone, Copy)]
pub enum Chops {
    /// All at once.
    Whole,
    /// A frame at a time.
    Frames,
    /// A byte at a time.
    Octets,
    /// In pieces of this many bytes.
    Of(usize),
}

/// What the reader made of a client's frames.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Text messages kept, in order.
    pub texts: Vec<Vec<u8>>,
    /// Payloads of the pongs answered, in order.
    pub pongs: Vec<Vec<u8>>,
    /// Set once the reader closed: the close frame's code, `None` for an empty close.
    pub closed: Option<Option<u16>>,
}

impl Outcome {
    pub fn open() -> Self {
        Self::default()
    }

    pub fn failed(code: u16) -> Self {
        Self::closed_with(Some(code))
    }

    pub fn closed_with(code: Option<u16>) -> Self {
        Self {
            closed: Some(code),
            ..Self::default()
        }
    }

    pub fn texts(mut self, texts: &[&[u8]]) -> Self {
        self.texts.extend(texts.iter().map(|text| text.to_vec()));
        self
    }

    pub fn pongs(mut self, pongs: &[&[u8]]) -> Self {
        self.pongs.extend(pongs.iter().map(|pong| pong.to_vec()));
        self
    }
}

/// Reads `frames` with `inbound`, handed over in `chops`, checking the memory bound after
/// every piece.
pub fn read(mut inbound: Inbound, frames: &[Vec<u8>], chops: Chops) -> Outcome {
    let all = frames.concat();
    let pieces: Vec<&[u8]> = match chops {
        Chops::Whole => vec![&all],
        Chops::Frames => frames.iter().map(Vec::as_slice).collect(),
        Chops::Octets => all.chunks(1).collect(),
        Chops::Of(size) => all.chunks(size).collect(),
    };
    let mut outcome = Outcome::default();
    for piece in pieces {
        let mut replies = Vec::new();
        let read = inbound.push(piece, &mut replies);
        assert!(inbound.buffered() <= inbound.max_buffered());
        outcome.texts.extend(inbound.take_texts());
        outcome
            .pongs
            .extend(replies.iter().map(|pong| server_payload(pong, 0x8A)));
        if let Read::Closing(close) = read {
            let payload = server_payload(&close, 0x88);
            outcome.closed = Some(
                payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]])),
            );
            break;
        }
    }
    outcome
}

/// The payload of a short server frame, checked to be unmasked, final and of `first`.
fn server_payload(frame: &[u8], first: u8) -> Vec<u8> {
    assert_eq!(frame[0], first, "{frame:?}");
    assert_eq!(usize::from(frame[1]), frame.len() - 2, "unmasked and short");
    frame[2..].to_vec()
}
