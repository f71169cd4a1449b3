//! Properties of Engine.IO and Socket.IO packets: what is written reads back, through a
//! long-polling payload or WebSocket frames cut anywhere, and no input makes a reader panic.

use proptest::prelude::*;
use stream_protocols::engineio::{self, PollBusy, Polling, Taken};
use stream_protocols::socketio::{self, PacketType, ROOT};
use stream_protocols::websocket::{Inbound, Read};

#[derive(Debug, Clone)]
struct Owned {
    kind: PacketType,
    namespace: String,
    id: Option<u64>,
    data: Option<String>,
}

impl Owned {
    fn packet(&self) -> socketio::Packet<'_> {
        socketio::Packet {
            kind: self.kind,
            namespace: &self.namespace,
            id: self.id,
            data: self.data.as_deref(),
        }
    }
}

fn socketio_packet() -> impl Strategy<Value = Owned> {
    let kind = prop_oneof![
        Just(PacketType::Connect),
        Just(PacketType::Disconnect),
        Just(PacketType::Event),
        Just(PacketType::Ack),
        Just(PacketType::ConnectError),
    ];
    // JSON data is an object or an array, so it cannot be mistaken for an ack id.
    let data = prop::option::of("[\\[{][^\u{1e}]{0,30}");
    let namespace = prop_oneof![Just(ROOT.to_owned()), "/[a-z0-9_-]{1,8}"];
    (kind, namespace, any::<u64>(), data).prop_map(|(kind, namespace, id, data)| Owned {
        id: matches!(kind, PacketType::Event | PacketType::Ack).then_some(id),
        kind,
        namespace,
        data,
    })
}

fn masked_text(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![0x81];
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

proptest! {
    #[test]
    fn socket_io_packets_read_back_from_a_long_polling_payload(
        packets in prop::collection::vec(socketio_packet(), 1..8),
    ) {
        let messages: Vec<String> = packets.iter().map(|p| p.packet().to_message()).collect();
        let payload = engineio::encode_payload(&messages);
        let mut session = engineio::Session::default();
        let read: Vec<_> = engineio::split_payload(&payload)
            .map(|text| match session.receive(text) {
                engineio::Received::Message(data) => socketio::Packet::decode(data),
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(read.len(), packets.len());
        for (read, written) in read.into_iter().zip(&packets) {
            prop_assert_eq!(read, Ok(written.packet()));
        }
    }

    #[test]
    fn socket_io_packets_read_back_from_websocket_frames_cut_anywhere(
        packets in prop::collection::vec(socketio_packet(), 1..8),
        mask in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let messages: Vec<String> = packets.iter().map(|p| p.packet().to_message()).collect();
        let bytes: Vec<u8> = messages.iter().flat_map(|m| masked_text(m.as_bytes(), mask)).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.extend([0, bytes.len()]);
        cuts.sort_unstable();
        let mut inbound = Inbound::keeping_text(16 * 1024);
        let mut texts = Vec::new();
        for piece in cuts.windows(2) {
            prop_assert_eq!(inbound.push(&bytes[piece[0]..piece[1]], &mut Vec::new()), Read::Open);
            texts.extend(inbound.take_texts());
        }
        let texts: Vec<String> = texts.into_iter().map(|t| String::from_utf8(t).unwrap()).collect();
        prop_assert_eq!(texts, messages);
    }

    #[test]
    fn any_text_decodes_without_panicking(text in "(?s).{0,40}", digits in "[0-9]{0,30}") {
        let _ = engineio::Packet::decode(&text);
        let _ = socketio::Packet::decode(&text);
        let _ = engineio::Session::default().receive(&text);
        let _ = engineio::Probe::default().receive(&text);
        let _ = socketio::Packet::decode(&format!("2{digits}{text}"));
        let _ = socketio::Packet::decode(&format!("3/ns,{digits}{text}"));
        if let Ok(packet) = engineio::Packet::decode(&text) {
            prop_assert_eq!(packet.encode(), text);
        }
    }

    #[test]
    fn long_polling_loses_no_packet_and_sends_a_close_alone(
        steps in prop::collection::vec(0u8..6, 0..60),
    ) {
        let mut polling = Polling::default();
        let mut sent = Vec::new();
        let mut received = Vec::new();
        let mut polls = 0;
        for (at, step) in steps.iter().enumerate() {
            match step {
                // A close is the session's last packet.
                0 if sent.last().is_none_or(|last| last != "1") => {
                    let packet = if at % 5 == 4 { "1".to_owned() } else { format!("42[{at}]") };
                    sent.push(packet.clone());
                    polling.queue([packet]);
                }
                1 => match polling.begin_poll() {
                    Ok(()) => polls += 1,
                    Err(PollBusy) => prop_assert_eq!(polls, 1, "busy only while a poll waits"),
                },
                2 if polls == 1 => {
                    if let Taken::Payload(payload) = polling.take() {
                        let packets: Vec<&str> = engineio::split_payload(&payload).collect();
                        if packets.last() == Some(&"1") {
                            prop_assert_eq!(packets.len(), 1, "a close goes alone");
                        }
                        received.extend(packets.into_iter().map(str::to_owned));
                    }
                }
                3 => {
                    polling.end_poll();
                    polls = 0;
                }
                4 => {
                    let _ = polling.begin_upgrade();
                }
                _ => polling.abort_upgrade(),
            }
        }
        received.extend(polling.close());
        prop_assert_eq!(received, sent);
        prop_assert_eq!(polling.take(), Taken::Ended);
    }
}
