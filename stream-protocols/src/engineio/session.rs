//! An open session as the server sees it: what the client's packets mean, and whether it
//! still answers pings.

use super::{Packet, PacketType};

/// Pings a client may leave unanswered: it misses the second one a whole interval late.
pub const MAX_UNANSWERED_PINGS: u8 = 2;

/// The server's side of an open session, on either transport.
#[derive(Debug, Default)]
pub struct Session {
    unanswered_pings: u8,
}

/// What a packet from the client means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A message packet's data: for Socket.IO, one of its packets.
    Message(&'a str),
    /// The client closed the session.
    Close,
    /// Nothing to act on: a pong, or a packet a client does not send an open session.
    Nothing,
}

impl Session {
    pub fn receive<'a>(&mut self, text: &'a str) -> Received<'a> {
        match Packet::decode(text) {
            Ok(Packet {
                kind: PacketType::Message,
                data,
            }) => Received::Message(data),
            Ok(Packet {
                kind: PacketType::Close,
                ..
            }) => Received::Close,
            Ok(Packet {
                kind: PacketType::Pong,
                ..
            }) => {
                self.unanswered_pings = 0;
                Received::Nothing
            }
            _ => Received::Nothing,
        }
    }

    /// The ping interval has passed: the ping to send, or `None` when the client left
    /// [`MAX_UNANSWERED_PINGS`] unanswered and the session is over.
    pub fn ping(&mut self) -> Option<Packet<'static>> {
        if self.unanswered_pings >= MAX_UNANSWERED_PINGS {
            return None;
        }
        self.unanswered_pings += 1;
        Some(Packet::new(PacketType::Ping, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_leaves_pings_unanswered_is_gone() {
        let mut session = Session::default();
        for _ in 0..MAX_UNANSWERED_PINGS {
            assert_eq!(
                session.ping().map(|ping| ping.encode()).as_deref(),
                Some("2")
            );
        }
        assert_eq!(session.ping(), None, "the third ping finds two unanswered");
        assert_eq!(session.receive("3"), Received::Nothing);
        assert!(session.ping().is_some(), "a pong resets the count");
    }

    #[test]
    fn messages_and_the_close_are_told_apart_from_the_rest() {
        let mut session = Session::default();
        assert_eq!(session.receive("40{}"), Received::Message("0{}"));
        assert_eq!(session.receive("4"), Received::Message(""));
        assert_eq!(session.receive("1"), Received::Close);
        for other in ["", "2", "5", "6", "0{}", "bAQ==", "9", "3probe"] {
            assert_eq!(session.receive(other), Received::Nothing, "{other:?}");
        }
    }
}
