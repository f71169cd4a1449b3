//! Server-Sent Events at `/api/sse/notifications`, read from a streaming HTTP/1.1 response.

use std::collections::VecDeque;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Kind, LIVE_EVENT, Received};
use crate::http::Sender;
use crate::probe::NotificationView;
use crate::target::Target;

/// Events that end the stream (the server closes right after).
const CLOSING_EVENTS: [&str; 2] = ["error", "shutdown"];
/// Bound on one event, so a server that never ends a line cannot grow memory without limit.
const MAX_EVENT_BYTES: usize = 1 << 20;

pub struct Client {
    body: Incoming,
    parser: Parser,
    pending: VecDeque<Event>,
    /// Held so the connection stays open while the response streams.
    _sender: Sender,
}

impl Client {
    pub async fn connect(stream: TcpStream, target: &Target) -> anyhow::Result<Self> {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get(target.path("/api/sse/notifications"))
            .header(header::HOST, &target.authority)
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))
            .context("building the SSE request")?;
        let response = sender
            .send_request(request)
            .await
            .context("GET /api/sse/notifications")?;
        if response.status() != StatusCode::OK {
            bail!("GET /api/sse/notifications answered {}", response.status());
        }
        let mut client = Self {
            body: response.into_body(),
            parser: Parser::default(),
            pending: VecDeque::new(),
            _sender: sender,
        };
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
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.parser.push(data, &mut self.pending)?;
                    }
                }
                Some(Err(error)) => return Err(error).context("reading the SSE stream"),
                None => return Ok(None),
            }
        }
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
    fn unbounded_lines_are_refused() {
        let mut parser = Parser::default();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(parser.push(&big, &mut VecDeque::new()).is_err());
    }
}
