//! The Autobahn testsuite's cases 5.x (fragmentation) and 7.x (close handling), as they
//! apply to a server that reads its clients' frames; see `autobahn_framing` for 1.x to 4.x.
//!
//! Cases that do not apply, and why:
//! - 6.x (UTF-8): the reader does not check that text messages are UTF-8. A one-way stream
//!   skips them unread, and Socket.IO's layer reads the short ones it keeps as UTF-8 and
//!   ignores the others, so no message is ever refused for its encoding. The one UTF-8 check
//!   of the codec, the close reason's, is case 7.5.1.
//! - 7.1.x and 7.3.x as far as they time the closing of the TCP connection: closing the
//!   socket after the close frame is the server's I/O, not the codec's; these tests check the
//!   close frame the reader answers with and that nothing after it is read.
//! - 9.x (limits and performance): the reader holds no message longer than it was asked to
//!   keep, whatever its size (see the memory-bound tests); speed is `examples/codec_compare`.
//! - 10.x (auto-fragmentation): the server sends whole frames only.
//! - 12.x and 13.x (permessage-deflate): no extension is negotiated; a compressed frame's
//!   RSV1 is a protocol error (3.1).
//!
//! Fragmented messages are skipped, not reassembled (the server keeps only short,
//! unfragmented text, which is all Socket.IO clients send it), so 5.x checks that the order
//! of fragments is enforced and that control frames between fragments are answered.

use super::harness::{Chops, Outcome, read};
use super::testing::{client_frame, masked};
use super::{CLOSE, CONTINUATION, Inbound, PING, PONG, TEXT, close_code};

/// What Socket.IO keeps.
const KEEP: usize = 16 * 1024;

fn fragment(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    masked(if fin { 0x80 } else { 0 } | opcode, payload)
}

fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    client_frame(CLOSE, &[&code.to_be_bytes()[..], reason].concat())
}

fn every_chop(frames: &[Vec<u8>], expected: &Outcome) {
    for chops in [Chops::Whole, Chops::Frames, Chops::Octets] {
        let outcome = read(Inbound::keeping_text(KEEP), frames, chops);
        assert_eq!(&outcome, expected, "{chops:?}");
    }
}

#[test]
fn autobahn_5_1_fragmented_ping_is_a_protocol_error() {
    let frames = [
        fragment(PING, false, b"fragment1"),
        fragment(CONTINUATION, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_2_fragmented_pong_is_a_protocol_error() {
    let frames = [
        fragment(PONG, false, b"fragment1"),
        fragment(CONTINUATION, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_3_to_5_text_in_two_fragments_is_read_in_any_chops() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        fragment(CONTINUATION, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::open());
}

#[test]
fn autobahn_5_6_to_8_a_ping_between_fragments_is_answered_in_any_chops() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        client_frame(PING, b"ping payload"),
        fragment(CONTINUATION, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::open().pongs(&[b"ping payload"]));
}

#[test]
fn autobahn_5_9_to_11_final_continuation_with_nothing_to_continue_fails() {
    let frames = [
        fragment(CONTINUATION, true, b"non-continuation payload"),
        client_frame(TEXT, b"Hello, world!"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_12_to_14_continuation_with_nothing_to_continue_fails() {
    let frames = [
        fragment(CONTINUATION, false, b"non-continuation payload"),
        client_frame(TEXT, b"Hello, world!"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_15_continuation_after_a_finished_message_fails() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        fragment(CONTINUATION, true, b"fragment2"),
        fragment(CONTINUATION, false, b"fragment3"),
        client_frame(TEXT, b"fragment4"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_16_continuations_with_nothing_to_continue_fail_before_a_message() {
    let frames = [
        fragment(CONTINUATION, false, b"fragment1"),
        fragment(TEXT, false, b"fragment2"),
        fragment(CONTINUATION, true, b"fragment3"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_17_final_continuations_with_nothing_to_continue_fail_before_a_message() {
    let frames = [
        fragment(CONTINUATION, true, b"fragment1"),
        fragment(TEXT, false, b"fragment2"),
        fragment(CONTINUATION, true, b"fragment3"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_18_a_second_text_opcode_inside_a_message_fails() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        fragment(TEXT, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::failed(close_code::PROTOCOL));
}

#[test]
fn autobahn_5_19_and_20_pings_among_five_fragments_are_answered() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        fragment(CONTINUATION, false, b"fragment2"),
        client_frame(PING, b"pongme 1!"),
        fragment(CONTINUATION, false, b"fragment3"),
        fragment(CONTINUATION, false, b"fragment4"),
        client_frame(PING, b"pongme 2!"),
        fragment(CONTINUATION, true, b"fragment5"),
    ];
    every_chop(
        &frames,
        &Outcome::open().pongs(&[b"pongme 1!", b"pongme 2!"]),
    );
}

#[test]
fn autobahn_7_1_1_a_message_then_a_close_is_read_and_the_close_echoed() {
    let frames = [
        client_frame(TEXT, b"Hello World!"),
        close_frame(close_code::NORMAL, b""),
    ];
    every_chop(
        &frames,
        &Outcome::closed_with(Some(close_code::NORMAL)).texts(&[b"Hello World!"]),
    );
}

#[test]
fn autobahn_7_1_2_a_second_close_is_not_read() {
    let frames = [
        close_frame(close_code::NORMAL, b""),
        close_frame(close_code::NORMAL, b""),
    ];
    every_chop(&frames, &Outcome::closed_with(Some(close_code::NORMAL)));
    // Nor is anything after it: the reader answers with the same close.
    let mut inbound = Inbound::default();
    let closing = inbound.push(&frames[0], &mut Vec::new());
    assert_eq!(inbound.push(&frames[1], &mut Vec::new()), closing);
    assert_eq!(inbound.buffered(), 0);
}

#[test]
fn autobahn_7_1_3_a_ping_after_the_close_is_not_answered() {
    let frames = [
        close_frame(close_code::NORMAL, b""),
        client_frame(PING, b"Hello World!"),
    ];
    every_chop(&frames, &Outcome::closed_with(Some(close_code::NORMAL)));
}

#[test]
fn autobahn_7_1_4_a_message_after_the_close_is_not_read() {
    let frames = [
        close_frame(close_code::NORMAL, b""),
        client_frame(TEXT, b"Hello World!"),
    ];
    every_chop(&frames, &Outcome::closed_with(Some(close_code::NORMAL)));
}

#[test]
fn autobahn_7_1_5_a_close_between_fragments_ends_the_reading() {
    let frames = [
        fragment(TEXT, false, b"fragment1"),
        close_frame(close_code::NORMAL, b""),
        fragment(CONTINUATION, true, b"fragment2"),
    ];
    every_chop(&frames, &Outcome::closed_with(Some(close_code::NORMAL)));
}

#[test]
fn autobahn_7_1_6_a_256k_message_then_close_then_ping() {
    let long = b"BAsd7&jh23".repeat(26_214);
    let frames = [
        client_frame(TEXT, &long),
        close_frame(close_code::NORMAL, b""),
        client_frame(PING, b"Hello World!"),
    ];
    // Over the limit, the message is skipped, never held.
    for chops in [Chops::Whole, Chops::Frames, Chops::Of(4096)] {
        let outcome = read(Inbound::keeping_text(KEEP), &frames, chops);
        assert_eq!(outcome, Outcome::closed_with(Some(close_code::NORMAL)));
    }
}

#[test]
fn autobahn_7_3_1_an_empty_close_is_echoed_empty() {
    every_chop(&[client_frame(CLOSE, b"")], &Outcome::closed_with(None));
}

#[test]
fn autobahn_7_3_2_a_close_of_one_byte_is_a_protocol_error() {
    every_chop(
        &[client_frame(CLOSE, b"a")],
        &Outcome::failed(close_code::PROTOCOL),
    );
}

#[test]
fn autobahn_7_3_3_a_close_with_a_code_is_echoed() {
    every_chop(
        &[close_frame(close_code::NORMAL, b"")],
        &Outcome::closed_with(Some(close_code::NORMAL)),
    );
}

#[test]
fn autobahn_7_3_4_a_close_with_a_code_and_reason_is_echoed() {
    every_chop(
        &[close_frame(close_code::NORMAL, b"Hello World!")],
        &Outcome::closed_with(Some(close_code::NORMAL)),
    );
}

#[test]
fn autobahn_7_3_5_a_close_with_a_123_byte_reason_is_echoed() {
    every_chop(
        &[close_frame(close_code::NORMAL, &[b'*'; 123])],
        &Outcome::closed_with(Some(close_code::NORMAL)),
    );
}

#[test]
fn autobahn_7_3_6_a_close_with_a_124_byte_reason_is_a_protocol_error() {
    every_chop(
        &[close_frame(close_code::NORMAL, &[b'*'; 124])],
        &Outcome::failed(close_code::PROTOCOL),
    );
}

#[test]
fn autobahn_7_5_1_a_close_reason_that_is_not_utf8_is_refused_with_1007() {
    // "κόσμε", then an encoded UTF-16 surrogate, then "edited".
    let reason = [
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64,
    ];
    every_chop(
        &[close_frame(close_code::NORMAL, &reason)],
        &Outcome::failed(close_code::INVALID_PAYLOAD),
    );
}

#[test]
fn autobahn_7_7_1_to_13_valid_close_codes_are_echoed() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let outcome = read(Inbound::default(), &[close_frame(code, b"")], Chops::Whole);
        assert_eq!(outcome, Outcome::closed_with(Some(code)), "{code}");
    }
}

#[test]
fn autobahn_7_9_1_to_9_invalid_close_codes_are_a_protocol_error() {
    for code in [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999] {
        let outcome = read(Inbound::default(), &[close_frame(code, b"")], Chops::Whole);
        assert_eq!(outcome, Outcome::failed(close_code::PROTOCOL), "{code}");
    }
}

#[test]
fn autobahn_7_13_1_close_code_5000_is_a_protocol_error() {
    let outcome = read(Inbound::default(), &[close_frame(5000, b"")], Chops::Whole);
    assert_eq!(outcome, Outcome::failed(close_code::PROTOCOL));
}
