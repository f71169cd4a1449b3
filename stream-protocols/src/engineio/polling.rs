//! A long-polling session's transport: the packets waiting for the client's next poll, and
//! the upgrade that moves the session to a WebSocket.

use super::{Packet, PacketType, encode_payload};

/// What a long-polling session holds between polls.
#[derive(Debug, Default)]
pub struct Polling {
    packets: Vec<String>,
    /// A poll is waiting for packets.
    polling: bool,
    phase: Phase,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Open,
    /// A WebSocket is being probed; the session still polls meanwhile.
    Upgrading,
    /// Ended, or moved to the WebSocket: polls get no more packets.
    Closed,
}

/// A second poll while one waits: Engine.IO allows one at a time, so the client is confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBusy;

/// What a poll takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The body to answer with.
    Payload(String),
    /// The session is over: answer with a noop, after which the client gives up polling.
    Ended,
    /// Nothing yet: wait for packets.
    Nothing,
}

impl Polling {
    pub fn queue(&mut self, packets: impl IntoIterator<Item = String>) {
        self.packets.extend(packets);
    }

    /// Packets no poll took yet.
    pub fn queued(&self) -> usize {
        self.packets.len()
    }

    pub fn begin_poll(&mut self) -> Result<(), PollBusy> {
        if self.polling {
            return Err(PollBusy);
        }
        self.polling = true;
        Ok(())
    }

    /// However the poll ended, answered or not.
    pub fn end_poll(&mut self) {
        self.polling = false;
    }

    pub fn take(&mut self) -> Taken {
        if self.packets.is_empty() {
            return match self.phase {
                Phase::Closed => Taken::Ended,
                Phase::Open | Phase::Upgrading => Taken::Nothing,
            };
        }
        // socket.io-client acts on a close at once but on the packets before it a tick later,
        // so they would be lost: a close goes out alone.
        let mut take = self.packets.len();
        if take > 1 && self.packets[take - 1] == Packet::new(PacketType::Close, "").encode() {
            take -= 1;
        }
        Taken::Payload(encode_payload(self.packets.drain(..take)))
    }

    /// A WebSocket asks to take the session over: false if one already is, or the session
    /// is over.
    pub fn begin_upgrade(&mut self) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::Upgrading;
        true
    }

    /// The WebSocket went away before the upgrade completed.
    pub fn abort_upgrade(&mut self) {
        if self.phase == Phase::Upgrading {
            self.phase = Phase::Open;
        }
    }

    /// The session ends here, or goes on elsewhere: the packets no poll took.
    pub fn close(&mut self) -> Vec<String> {
        self.phase = Phase::Closed;
        std::mem::take(&mut self.packets)
    }
}

/// The upgrading WebSocket's side of the upgrade: the probe, then the upgrade packet.
#[derive(Debug, Default)]
pub struct Probe {
    probed: bool,
}

/// What a packet on the upgrading WebSocket means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeStep {
    /// The probe: answer on the WebSocket, and end the pending poll so that the client can
    /// pause polling.
    Answer {
        websocket: String,
        poll: String,
    },
    /// The session moves to the WebSocket.
    Upgraded,
    Nothing,
}

impl Probe {
    pub fn receive(&mut self, text: &str) -> ProbeStep {
        match Packet::decode(text) {
            Ok(Packet {
                kind: PacketType::Ping,
                data: "probe",
            }) => {
                self.probed = true;
                ProbeStep::Answer {
                    websocket: Packet::new(PacketType::Pong, "probe").encode(),
                    poll: Packet::new(PacketType::Noop, "").encode(),
                }
            }
            Ok(Packet {
                kind: PacketType::Upgrade,
                data: "",
            }) if self.probed => ProbeStep::Upgraded,
            _ => ProbeStep::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_takes_what_is_queued_and_a_close_goes_alone() {
        let mut polling = Polling::default();
        assert_eq!(polling.begin_poll(), Ok(()));
        assert_eq!(polling.begin_poll(), Err(PollBusy), "one poll at a time");
        assert_eq!(polling.take(), Taken::Nothing);
        polling.queue(["40{}".into(), "42[1]".into(), "41".into(), "1".into()]);
        assert_eq!(polling.queued(), 4);
        assert_eq!(
            polling.take(),
            Taken::Payload("40{}\u{1e}42[1]\u{1e}41".into())
        );
        assert_eq!(polling.take(), Taken::Payload("1".into()));
        polling.end_poll();
        assert_eq!(polling.begin_poll(), Ok(()));
        assert_eq!(polling.close(), Vec::<String>::new());
        assert_eq!(polling.take(), Taken::Ended);
    }

    #[test]
    fn one_websocket_at_a_time_may_take_an_open_session_over() {
        let mut polling = Polling::default();
        assert!(polling.begin_upgrade());
        assert!(!polling.begin_upgrade());
        polling.abort_upgrade();
        assert!(polling.begin_upgrade(), "after one that went away, another");
        polling.queue(["2".into()]);
        assert_eq!(polling.close(), ["2"], "the packets go with the session");
        polling.abort_upgrade();
        assert!(!polling.begin_upgrade(), "a closed session stays closed");
    }

    #[test]
    fn the_upgrade_is_the_probe_then_5() {
        let mut probe = Probe::default();
        assert_eq!(probe.receive("5"), ProbeStep::Nothing, "not probed yet");
        assert_eq!(probe.receive("2"), ProbeStep::Nothing);
        assert_eq!(
            probe.receive("2probe"),
            ProbeStep::Answer {
                websocket: "3probe".into(),
                poll: "6".into()
            }
        );
        assert_eq!(probe.receive("42[]"), ProbeStep::Nothing);
        assert_eq!(probe.receive("5"), ProbeStep::Upgraded);
    }
}
