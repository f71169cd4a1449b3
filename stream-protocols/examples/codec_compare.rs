//! Our WebSocket codec against tungstenite's, for the job the api-server gives it: reading
//! what clients send (pings and short Socket.IO texts, in the 512-byte reads of a shard) and
//! writing server text frames. Prints CPU per frame and memory per connection.
//!
//! `cargo run --release -p stream-protocols --example codec_compare`
//!
//! Memory is measured in a child process per case (the same binary, given the case's name),
//! so that what one case freed cannot hide what the next one takes.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::process::Command;
use std::time::Instant;

use stream_protocols::websocket::{self, Inbound};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Utf8Bytes};

/// What the api-server keeps of a Socket.IO client's messages.
const KEEP: usize = 16 * 1024;
/// A shard reads a client's socket this much at a time.
const READ: usize = 512;
/// Connections per memory case: enough that allocator noise is small per connection.
const CONNECTIONS: usize = 10_000;
const RUNS: usize = 15;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [codec, case] = args.as_slice() {
        memory_case(codec, case);
        return;
    }
    println!("CPU, best and median of {RUNS} runs:");
    read_cpu();
    encode_cpu();
    println!("\nMemory per connection, {CONNECTIONS} connections (struct + heap, resident):");
    for case in ["fresh", "between-frames", "mid-text", "mid-64k-binary"] {
        for codec in [
            "ours",
            "tungstenite-default",
            "tungstenite-small",
            "tungstenite-16k",
        ] {
            let output = Command::new(std::env::current_exe().expect("this binary"))
                .args([codec, case])
                .output()
                .expect("the memory case runs");
            print!("{}", String::from_utf8_lossy(&output.stdout));
        }
    }
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    websocket::client_frame(first, payload, [0x37, 0xFA, 0x21, 0x3D])
}

/// What Socket.IO clients send a streaming server: pings, pongs (`3`), and now and then a
/// short event or ack.
fn client_traffic(frames: usize) -> Vec<u8> {
    let event = format!("42[\"ack\",{{\"sequence\":{}}}]{}", 7, " ".repeat(70));
    (0..frames)
        .flat_map(|at| match at % 3 {
            0 => client_frame(0x89, b"ping"),
            1 => client_frame(0x81, b"3"),
            _ => client_frame(0x81, event.as_bytes()),
        })
        .collect()
}

/// A socket that gives what it holds in reads of [`READ`] bytes, then would block, and takes
/// every write.
struct Feed<'a> {
    input: &'a [u8],
    written: usize,
}

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let take = buf.len().min(READ).min(self.input.len());
        buf[..take].copy_from_slice(&self.input[..take]);
        self.input = &self.input[take..];
        Ok(take)
    }
}

impl Write for Feed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads all of `input` as the api-server does; returns the texts kept and pongs answered.
fn read_ours(input: &[u8]) -> usize {
    let mut inbound = Inbound::keeping_text(KEEP);
    let mut replies = Vec::new();
    let mut frames = 0;
    for piece in input.chunks(READ) {
        inbound.push(piece, &mut replies);
        frames += inbound.take_texts().len() + replies.len();
        replies.clear();
    }
    frames
}

/// Reads all of `input` with tungstenite's server side; returns the messages read.
fn read_tungstenite(input: &[u8], config: WebSocketConfig) -> usize {
    let mut context = WebSocketContext::new(Role::Server, Some(config));
    let mut feed = Feed { input, written: 0 };
    let mut frames = 0;
    loop {
        match context.read(&mut feed) {
            Ok(message) => {
                black_box(&message);
                frames += 1;
            }
            Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                // Writes out the pongs still queued.
                let _ = context.flush(&mut feed);
                return frames;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// tungstenite tuned for many idle connections: small buffers, its default limits (a
/// frame of up to 16 MiB is read, and buffered whole).
fn small_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ)
        .write_buffer_size(0)
}

/// As [`small_config`], and refusing (so closing the connection for) what the api-server
/// would skip: frames and messages over what it keeps.
fn limited_config() -> WebSocketConfig {
    small_config()
        .max_message_size(Some(KEEP))
        .max_frame_size(Some(KEEP))
}

/// Best and median nanoseconds per item of `RUNS` runs of `run`, which does `items`.
fn time(items: usize, mut run: impl FnMut()) -> (f64, f64) {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    (runs[0], runs[RUNS / 2])
}

fn read_cpu() {
    const FRAMES: usize = 300_000;
    let input = client_traffic(FRAMES);
    assert_eq!(read_ours(&input), FRAMES);
    assert_eq!(read_tungstenite(&input, WebSocketConfig::default()), FRAMES);
    assert_eq!(read_tungstenite(&input, small_config()), FRAMES);
    let report = |name: &str, (best, median): (f64, f64)| {
        println!("  read a client frame, {name}: {best:.1} ns (median {median:.1} ns)");
    };
    report(
        "ours",
        time(FRAMES, || {
            black_box(read_ours(black_box(&input)));
        }),
    );
    report(
        "tungstenite, default config",
        time(FRAMES, || {
            black_box(read_tungstenite(
                black_box(&input),
                WebSocketConfig::default(),
            ));
        }),
    );
    report(
        "tungstenite, 512-byte read buffer",
        time(FRAMES, || {
            black_box(read_tungstenite(black_box(&input), small_config()));
        }),
    );
}

fn encode_cpu() {
    const FRAMES: usize = 1_000_000;
    // About a notification event as Socket.IO sends it.
    let payload = format!(
        "42[\"notification\",{{\"message\":\"{}\"}},7]",
        "x".repeat(260)
    );
    let bytes = Bytes::from(payload.clone());
    let text = Utf8Bytes::from(payload.clone());
    let expected = websocket::text(payload.as_bytes());
    let mut out = Vec::new();
    Frame::message(bytes.clone(), OpCode::Data(Data::Text), true)
        .format(&mut out)
        .expect("a frame");
    assert_eq!(out, expected, "the same bytes on the wire");
    let report = |name: &str, (best, median): (f64, f64)| {
        println!(
            "  encode a {}-byte server text frame, {name}: {best:.1} ns (median {median:.1} ns)",
            payload.len()
        );
    };
    report(
        "ours (a new buffer per frame)",
        time(FRAMES, || {
            for _ in 0..FRAMES {
                black_box(websocket::text(black_box(payload.as_bytes())));
            }
        }),
    );
    report(
        "tungstenite Frame::format (a reused buffer)",
        time(FRAMES, || {
            for _ in 0..FRAMES {
                out.clear();
                Frame::message(bytes.clone(), OpCode::Data(Data::Text), true)
                    .format(&mut out)
                    .expect("a frame");
                black_box(&out);
            }
        }),
    );
    let mut context = WebSocketContext::new(Role::Server, Some(small_config()));
    let mut sink = Feed {
        input: &[],
        written: 0,
    };
    report(
        "tungstenite WebSocketContext::write + flush",
        time(FRAMES, || {
            for _ in 0..FRAMES {
                context
                    .write(&mut sink, Message::Text(text.clone()))
                    .expect("written");
                context.flush(&mut sink).expect("flushed");
            }
        }),
    );
    black_box(sink.written);
}

/// One memory case, in a process of its own: prints bytes per connection.
fn memory_case(codec: &str, case: &str) {
    let input: Vec<u8> = match case {
        "fresh" => Vec::new(),
        "between-frames" => [client_frame(0x89, b"ping"), client_frame(0x81, b"3")].concat(),
        "mid-text" => client_frame(0x81, &[b'x'; 100])[..56].to_vec(),
        "mid-64k-binary" => client_frame(0x82, &vec![0; 65_536])[..4096].to_vec(),
        _ => panic!("unknown case {case}"),
    };
    let before = memory();
    let config = match codec {
        "ours" => {
            let mut connections: Vec<Inbound> = (0..CONNECTIONS)
                .map(|_| Inbound::keeping_text(KEEP))
                .collect();
            for inbound in &mut connections {
                for piece in input.chunks(READ) {
                    inbound.push(piece, &mut Vec::new());
                    black_box(inbound.take_texts());
                }
            }
            let heap: usize = connections.iter().map(Inbound::buffered).sum();
            report(
                codec,
                case,
                (size_of::<Inbound>(), Some(heap / CONNECTIONS)),
                before,
            );
            black_box(connections);
            return;
        }
        "tungstenite-default" => WebSocketConfig::default(),
        "tungstenite-small" => small_config(),
        "tungstenite-16k" => limited_config(),
        _ => panic!("unknown codec {codec}"),
    };
    let mut connections: Vec<WebSocketContext> = (0..CONNECTIONS)
        .map(|_| WebSocketContext::new(Role::Server, Some(config)))
        .collect();
    let mut refused = false;
    for context in &mut connections {
        let mut feed = Feed {
            input: &input,
            written: 0,
        };
        let ended = loop {
            if let Err(error) = context.read(&mut feed) {
                break error;
            }
        };
        refused |= !matches!(ended, tungstenite::Error::Io(error) if error.kind() == io::ErrorKind::WouldBlock);
        let _ = context.flush(&mut feed);
    }
    report(codec, case, (size_of::<WebSocketContext>(), None), before);
    if refused {
        println!(
            "  {:>15}  (the frame was refused: the connection fails)",
            ""
        );
    }
    black_box(connections);
}

/// Prints a case's figures; `heap` is the codec's own count of what it holds, where it has
/// one.
fn report(codec: &str, case: &str, (size, heap): (usize, Option<usize>), before: [usize; 2]) {
    let after = memory();
    let [resident, reserved] = [0, 1].map(|at| after[at].saturating_sub(before[at]) / CONNECTIONS);
    let heap = heap.map_or(String::new(), |heap| format!(", buffered {heap} B"));
    println!(
        "  {case:>15}, {codec:<20}: struct {size} B{heap}; resident {resident} B, reserved {reserved} B"
    );
}

/// This process's resident and reserved (data segment and anonymous maps) memory, in bytes.
fn memory() -> [usize; 2] {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: Vec<usize> = statm
        .split_whitespace()
        .map(|pages| pages.parse().unwrap_or(0))
        .collect();
    let page = |at: usize| pages.get(at).copied().unwrap_or(0) * 4096;
    [page(1), page(5)]
}
