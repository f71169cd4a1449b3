//! Server-Sent Events at `/api/sse/notifications`, read from a streaming HTTP/1.1 response.
//!
//! The request and the chunked body are handled here rather than by hyper's client, whose
//! connection task per client and hand-off of every chunk to the reading task cost the load
//! generator's core more than the server's SSE writes did with 10,000 clients.

use std::collections::VecDeque;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::event::{Kind, LIVE_EVENT, Received};
use super::handshake;
use crate::probe::NotificationView;
use crate::target::Target;

/// Events that end the stream (the server closes right after).
const CLOSING_EVENTS: [&str; 2] = ["error", "shutdown"];
/// Bound on one event, so a server that never ends a line cannot grow memory without limit.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Bytes read from the socket at a time.
const READ_SIZE: usize = 4096;

pub struct Client {
    socket: TcpStream,
    body: Body,
    parser: Parser,
    pending: VecDeque<Event>,
    read: Vec<u8>,
}

impl Client {
    pub async fn connect(mut socket: TcpStream, target: &Target) -> anyhow::Result<Self> {
        let path = target.path("/api/sse/notifications");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{}\r\n",
            target.authority,
            target.stream_authorization(),
        );
        socket
            .write_all(request.as_bytes())
            .await
            .context("sending GET /api/sse/notifications")?;
        let (head, rest) = handshake::read_head(&mut socket, "GET /api/sse/notifications").await?;
        let body = Body::of_response(&head)?;
        let mut client = Self {
            socket,
            body,
            parser: Parser::default(),
            pending: VecDeque::new(),
            read: Vec::with_capacity(READ_SIZE),
        };
        client.take(&rest)?;
        loop {
            match client.event().await? {
                Some(event) if event.name == LIVE_EVENT => return Ok(client),
                Some(_) => {}
                None => bail!("the server ended the SSE stream before it was live"),
            }
        }
    }

    pub async fn next(&mut self) -> anyhow::Result<Option<Received>> {
        loop {
            let Some(event) = self.event().await? else {
                return Ok(None);
            };
            if CLOSING_EVENTS.contains(&event.name.as_str()) {
                return Ok(None);
            }
            let Some(kind) = Kind::of_event(&event.name) else {
                continue;
            };
            let notification: NotificationView = serde_json::from_str(&event.data)
                .with_context(|| format!("unexpected data in an SSE {} event", event.name))?;
            return Ok(Some(Received { kind, notification }));
        }
    }

    async fn event(&mut self) -> anyhow::Result<Option<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.body.ended() {
                return Ok(None);
            }
            self.read.clear();
            let read = self
                .socket
                .read_buf(&mut self.read)
                .await
                .context("reading the SSE stream")?;
            if read == 0 {
                return Ok(None);
            }
            let read = std::mem::take(&mut self.read);
            let taken = self.take(&read);
            self.read = read;
            taken?;
        }
    }

    /// Takes bytes of the response body.
    fn take(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let Self {
            body,
            parser,
            pending,
            ..
        } = self;
        body.push(bytes, |data| parser.push(data, pending))
    }
}

/// How the response body is framed.
#[derive(Debug)]
enum Body {
    Chunked(Chunks),
    /// Until the server closes the connection.
    UntilClose,
}

impl Body {
    /// Checks the status and the framing from the response head.
    fn of_response(head: &str) -> anyhow::Result<Self> {
        if handshake::status_of(head) != Some(200) {
            let status = head.lines().next().unwrap_or_default();
            bail!("GET /api/sse/notifications answered {status:?}");
        }
        let chunked = handshake::header_of(head, "transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        Ok(if chunked {
            Self::Chunked(Chunks::default())
        } else {
            Self::UntilClose
        })
    }

    fn ended(&self) -> bool {
        matches!(self, Self::Chunked(chunks) if chunks.state == ChunkState::Done)
    }

    fn push(
        &mut self,
        bytes: &[u8],
        data: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            Self::Chunked(chunks) => chunks.push(bytes, data),
            Self::UntilClose => {
                let mut data = data;
                data(bytes)
            }
        }
    }
}

/// A chunked body (RFC 9112, section 7.1), decoded as it arrives in any pieces.
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    size_line: Vec<u8>,
    remaining: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data,
    /// The CRLF after a chunk's data; how many bytes of it are still to come.
    DataEnd(usize),
    /// The last chunk came (trailers, if any, are not read).
    Done,
}

impl Chunks {
    fn push(
        &mut self,
        mut input: &[u8],
        mut data: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = input.iter().position(|&b| b == b'\n') else {
                        self.size_line.extend_from_slice(input);
                        if self.size_line.len() > 1024 {
                            bail!("a chunk size line is over 1024 bytes");
                        }
                        return Ok(());
                    };
                    self.size_line.extend_from_slice(&input[..end]);
                    input = &input[end + 1..];
                    let line = String::from_utf8_lossy(&self.size_line);
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(hex, 16)
                        .with_context(|| format!("a bad chunk size line {line:?}"))?;
                    self.size_line.clear();
                    (self.state, self.remaining) = if size == 0 {
                        (ChunkState::Done, 0)
                    } else {
                        (ChunkState::Data, size)
                    };
                }
                ChunkState::Data => {
                    let take = self.remaining.min(input.len());
                    data(&input[..take])?;
                    self.remaining -= take;
                    input = &input[take..];
                    if self.remaining == 0 {
                        self.state = ChunkState::DataEnd(2);
                    }
                }
                ChunkState::DataEnd(left) => {
                    let skip = left.min(input.len());
                    input = &input[skip..];
                    self.state = match left - skip {
                        0 => ChunkState::Size,
                        left => ChunkState::DataEnd(left),
                    };
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

/// One dispatched event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `message` when the event had no `event:` field.
    pub name: String,
    pub data: String,
    pub id: Option<String>,
}

/// The event-stream format, line by line (lines end in LF or CRLF; a lone CR, which the spec
/// also allows, is not produced by the api-server and not supported).
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    name: String,
    data: Option<String>,
    id: Option<String>,
}

impl Parser {
    pub fn push(&mut self, mut chunk: &[u8], out: &mut VecDeque<Event>) -> anyhow::Result<()> {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&chunk[..end]);
            chunk = &chunk[end + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&String::from_utf8_lossy(&line), out);
            line.clear();
            self.line = line;
        }
        self.line.extend_from_slice(chunk);
        let buffered = self.line.len() + self.data.as_ref().map_or(0, String::len);
        if buffered > MAX_EVENT_BYTES {
            bail!("an SSE event is larger than {MAX_EVENT_BYTES} bytes");
        }
        Ok(())
    }

    fn line_done(&mut self, line: &str, out: &mut VecDeque<Event>) {
        if line.is_empty() {
            let name = std::mem::take(&mut self.name);
            if let Some(data) = self.data.take() {
                out.push_back(Event {
                    name: if name.is_empty() {
                        "message".into()
                    } else {
                        name
                    },
                    data,
                    id: self.id.clone(),
                });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&str]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut out = VecDeque::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes(), &mut out).unwrap();
        }
        out.into()
    }

    #[test]
    fn events_split_across_chunks() {
        let events = parse(&[
            ": keep-alive\n\nevent: notif",
            "ication\nid: 7\ndata: {\"a\":1}\n",
            "\nevent: recovered\r\ndata:{}\r\n\r\n",
        ]);
        assert_eq!(
            events,
            [
                Event {
                    name: "notification".into(),
                    data: "{\"a\":1}".into(),
                    id: Some("7".into())
                },
                Event {
                    name: "recovered".into(),
                    data: "{}".into(),
                    id: Some("7".into())
                },
            ]
        );
    }

    #[test]
    fn multi_line_data_and_default_name() {
        let events = parse(&["data: one\ndata: two\nretry: 1000\n\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "message");
        assert_eq!(events[0].data, "one\ntwo");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert!(parse(&["event: ping\n\n"]).is_empty());
        // Not finished until the blank line.
        assert!(parse(&["event: x\ndata: 1\n"]).is_empty());
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body = b"7\r\nevent: \r\n1c;ext=1\r\nnotification\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut chunks = Chunks::default();
            let mut decoded = Vec::new();
            for part in [&body[..split], &body[split..]] {
                chunks
                    .push(part, |data| {
                        decoded.extend_from_slice(data);
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(
                String::from_utf8_lossy(&decoded),
                "event: notification\ndata: {\"a\":1}\n\n",
                "split at {split}"
            );
            assert_eq!(chunks.state, ChunkState::Done);
        }
        let mut chunks = Chunks::default();
        assert!(chunks.push(b"zz\r\n", |_| Ok(())).is_err());
    }

    #[test]
    fn the_response_head_must_be_a_200() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(Body::of_response(head), Ok(Body::Chunked(_))));
        assert!(matches!(
            Body::of_response("HTTP/1.0 200 OK\r\n\r\n"),
            Ok(Body::UntilClose)
        ));
        let refused = Body::of_response("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(refused.unwrap_err().to_string().contains("503"));
    }

    #[test]
    fn unbounded_lines_are_refused() {
        let mut parser = Parser::default();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(parser.push(&big, &mut VecDeque::new()).is_err());
    }
}
