//! The Autobahn testsuite's cases 1.x (framing), 2.x (pings and pongs), 3.x (reserved bits)
//! and 4.x (opcodes), as they apply to a server that reads its clients' frames.
//!
//! The suite expects an echo server; this one streams and does not echo, so where a case
//! expects a message echoed, the reader is asked to keep text messages and the test checks it
//! kept exactly that message; where binary or long text would be echoed, the test checks the
//! reader skipped it and stays open. "Fail the connection" is a close frame with 1002.

use super::harness::{Chops, Outcome, read};
use super::testing::{client_frame, masked};
use super::{BINARY, CLOSE, Inbound, PING, PONG, TEXT, close_code};

/// Kept text up to this long: room for the longest message of 1.1.
const KEEP: usize = 70_000;

fn text_case(length: usize, chops: Chops) {
    let message = vec![b'*'; length];
    let frames = [client_frame(TEXT, &message)];
    let kept = if length == 0 {
        // An empty message carries nothing to act on.
        Outcome::open()
    } else {
        Outcome::open().texts(&[&message])
    };
    assert_eq!(read(Inbound::keeping_text(KEEP), &frames, chops), kept);
    assert_eq!(read(Inbound::default(), &frames, chops), Outcome::open());
}

fn binary_case(length: usize, chops: Chops) {
    let frames = [client_frame(BINARY, &vec![0xFE; length])];
    assert_eq!(
        read(Inbound::keeping_text(KEEP), &frames, chops),
        Outcome::open()
    );
}

#[test]
fn autobahn_1_1_1_text_message_of_0_bytes() {
    text_case(0, Chops::Whole);
}

#[test]
fn autobahn_1_1_2_text_message_of_125_bytes() {
    text_case(125, Chops::Whole);
}

#[test]
fn autobahn_1_1_3_text_message_of_126_bytes() {
    text_case(126, Chops::Whole);
}

#[test]
fn autobahn_1_1_4_text_message_of_127_bytes() {
    text_case(127, Chops::Whole);
}

#[test]
fn autobahn_1_1_5_text_message_of_128_bytes() {
    text_case(128, Chops::Whole);
}

#[test]
fn autobahn_1_1_6_text_message_of_65535_bytes() {
    text_case(65_535, Chops::Whole);
}

#[test]
fn autobahn_1_1_7_text_message_of_65536_bytes() {
    text_case(65_536, Chops::Whole);
}

#[test]
fn autobahn_1_1_8_text_message_of_65536_bytes_in_chops_of_997() {
    text_case(65_536, Chops::Of(997));
}

#[test]
fn autobahn_1_2_1_to_7_binary_messages_of_0_to_65536_bytes_are_skipped() {
    for length in [0, 125, 126, 127, 128, 65_535, 65_536] {
        binary_case(length, Chops::Whole);
    }
}

#[test]
fn autobahn_1_2_8_binary_message_of_65536_bytes_in_chops_of_997_is_skipped() {
    binary_case(65_536, Chops::Of(997));
}

#[test]
fn autobahn_2_1_ping_without_payload_is_answered() {
    let outcome = read(Inbound::default(), &[client_frame(PING, b"")], Chops::Whole);
    assert_eq!(outcome, Outcome::open().pongs(&[b""]));
}

#[test]
fn autobahn_2_2_ping_with_a_small_text_payload_is_answered_with_it() {
    let frames = [client_frame(PING, b"Hello, world!")];
    let outcome = read(Inbound::default(), &frames, Chops::Whole);
    assert_eq!(outcome, Outcome::open().pongs(&[b"Hello, world!"]));
}

#[test]
fn autobahn_2_3_ping_with_a_small_binary_payload_is_answered_with_it() {
    let payload = [0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF];
    let outcome = read(
        Inbound::default(),
        &[client_frame(PING, &payload)],
        Chops::Whole,
    );
    assert_eq!(outcome, Outcome::open().pongs(&[&payload]));
}

#[test]
fn autobahn_2_4_ping_with_a_125_byte_payload_is_answered_with_it() {
    let payload = [0xFE; 125];
    let outcome = read(
        Inbound::default(),
        &[client_frame(PING, &payload)],
        Chops::Whole,
    );
    assert_eq!(outcome, Outcome::open().pongs(&[&payload]));
}

#[test]
fn autobahn_2_5_ping_payload_over_125_bytes_is_a_protocol_error() {
    let frames = [client_frame(PING, &[0xFE; 126])];
    let outcome = read(Inbound::default(), &frames, Chops::Whole);
    assert_eq!(outcome, Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_2_6_ping_with_a_125_byte_payload_sent_octet_by_octet_is_answered() {
    let payload = [0xFE; 125];
    let outcome = read(
        Inbound::default(),
        &[client_frame(PING, &payload)],
        Chops::Octets,
    );
    assert_eq!(outcome, Outcome::open().pongs(&[&payload]));
}

#[test]
fn autobahn_2_7_unsolicited_pong_without_payload_is_ignored() {
    let outcome = read(Inbound::default(), &[client_frame(PONG, b"")], Chops::Whole);
    assert_eq!(outcome, Outcome::open());
}

#[test]
fn autobahn_2_8_unsolicited_pong_with_payload_is_ignored() {
    let frames = [client_frame(PONG, b"unsolicited pong payload")];
    assert_eq!(
        read(Inbound::default(), &frames, Chops::Whole),
        Outcome::open()
    );
}

#[test]
fn autobahn_2_9_unsolicited_pong_then_ping_answers_only_the_ping() {
    let frames = [
        client_frame(PONG, b"unsolicited pong payload"),
        client_frame(PING, b"ping payload"),
    ];
    let outcome = read(Inbound::default(), &frames, Chops::Whole);
    assert_eq!(outcome, Outcome::open().pongs(&[b"ping payload"]));
}

#[test]
fn autobahn_2_10_ten_pings_are_each_answered() {
    ten_pings(Chops::Whole);
}

#[test]
fn autobahn_2_11_ten_pings_sent_octet_by_octet_are_each_answered() {
    ten_pings(Chops::Octets);
}

fn ten_pings(chops: Chops) {
    let frames: Vec<Vec<u8>> = (0..10).map(|_| client_frame(PING, b"payload-0")).collect();
    let outcome = read(Inbound::default(), &frames, chops);
    assert_eq!(outcome, Outcome::open().pongs(&[&b"payload-0"[..]; 10]));
}

/// A frame with reserved bits set; for cases 3.2 to 3.4, between a good message and a ping
/// that is not answered because the connection has failed.
fn reserved_bits_case(rsv: u8, opcode: u8, chops: Chops) {
    let reserved = masked(0x80 | rsv << 4 | opcode, b"Hello, world!");
    let (frames, expected) = if opcode == TEXT {
        let frames = vec![
            client_frame(TEXT, b"Hello, world!"),
            reserved,
            client_frame(PING, b""),
        ];
        let expected = Outcome::failed(close_code::PROTOCOL).texts(&[b"Hello, world!"]);
        (frames, expected)
    } else {
        (vec![reserved], Outcome::failed(close_code::PROTOCOL))
    };
    let outcome = read(Inbound::keeping_text(KEEP), &frames, chops);
    assert_eq!(outcome, expected);
}

#[test]
fn autobahn_3_1_text_with_rsv_1_is_a_protocol_error() {
    let frames = [masked(0x80 | 1 << 4 | TEXT, b"Hello, world!")];
    let outcome = read(Inbound::keeping_text(KEEP), &frames, Chops::Whole);
    assert_eq!(outcome, Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_3_2_text_then_text_with_rsv_2_fails_before_the_ping() {
    reserved_bits_case(2, TEXT, Chops::Whole);
}

#[test]
fn autobahn_3_3_text_then_text_with_rsv_3_sent_frame_by_frame_fails() {
    reserved_bits_case(3, TEXT, Chops::Frames);
}

#[test]
fn autobahn_3_4_text_then_text_with_rsv_4_sent_octet_by_octet_fails() {
    reserved_bits_case(4, TEXT, Chops::Octets);
}

#[test]
fn autobahn_3_5_binary_with_rsv_5_is_a_protocol_error() {
    reserved_bits_case(5, BINARY, Chops::Whole);
}

#[test]
fn autobahn_3_6_ping_with_rsv_6_is_a_protocol_error() {
    reserved_bits_case(6, PING, Chops::Whole);
}

#[test]
fn autobahn_3_7_close_with_rsv_7_is_a_protocol_error() {
    reserved_bits_case(7, CLOSE, Chops::Whole);
}

/// Cases 4.1.x and 4.2.x: a frame with a reserved opcode, after a good message and before a
/// ping where the case has them.
fn reserved_opcode_case(opcode: u8, payload: &[u8], framed: bool) {
    let reserved = client_frame(opcode, payload);
    let (frames, expected) = if framed {
        let frames = vec![
            client_frame(TEXT, b"Hello, world!"),
            reserved,
            client_frame(PING, b""),
        ];
        let expected = Outcome::failed(close_code::PROTOCOL).texts(&[b"Hello, world!"]);
        (frames, expected)
    } else {
        (vec![reserved], Outcome::failed(close_code::PROTOCOL))
    };
    for chops in [Chops::Whole, Chops::Octets] {
        let outcome = read(Inbound::keeping_text(KEEP), &frames, chops);
        assert_eq!(outcome, expected, "opcode {opcode}, {chops:?}");
    }
}

#[test]
fn autobahn_4_1_1_reserved_data_opcode_3_is_a_protocol_error() {
    reserved_opcode_case(3, b"", false);
}

#[test]
fn autobahn_4_1_2_reserved_data_opcode_4_with_payload_is_a_protocol_error() {
    reserved_opcode_case(4, b"reserved opcode payload", false);
}

#[test]
fn autobahn_4_1_3_text_then_reserved_data_opcode_5_fails_before_the_ping() {
    reserved_opcode_case(5, b"", true);
}

#[test]
fn autobahn_4_1_4_text_then_reserved_data_opcode_6_with_payload_fails() {
    reserved_opcode_case(6, b"reserved opcode payload", true);
}

#[test]
fn autobahn_4_1_5_text_then_reserved_data_opcode_7_with_payload_fails() {
    reserved_opcode_case(7, b"reserved opcode payload", true);
}

#[test]
fn autobahn_4_2_1_reserved_control_opcode_11_is_a_protocol_error() {
    reserved_opcode_case(11, b"", false);
}

#[test]
fn autobahn_4_2_2_reserved_control_opcode_12_with_payload_is_a_protocol_error() {
    reserved_opcode_case(12, b"reserved opcode payload", false);
}

#[test]
fn autobahn_4_2_3_text_then_reserved_control_opcode_13_fails_before_the_ping() {
    reserved_opcode_case(13, b"", true);
}

#[test]
fn autobahn_4_2_4_text_then_reserved_control_opcode_14_with_payload_fails() {
    reserved_opcode_case(14, b"reserved opcode payload", true);
}

#[test]
fn autobahn_4_2_5_text_then_reserved_control_opcode_15_with_payload_fails() {
    reserved_opcode_case(15, b"reserved opcode payload", true);
}
