//! Server-Sent Events, the `text/event-stream` format of the HTML standard: the events a
//! server writes, and a [`Parser`] of them as a browser reads them.

use bytes::Bytes;

/// An empty comment: sent on a quiet stream so that proxies and clients see it is alive.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// An event as written: `event:`, a `data:` line per line of data, `id:`, `retry:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event's type; browsers call it `message` when there is none.
    pub event: Option<&'a str>,
    /// Any text; each of its lines becomes a `data:` line. Browsers do not dispatch an event
    /// whose data is empty.
    pub data: &'a str,
    /// The position a reconnecting browser sends back as `Last-Event-ID`.
    pub id: Option<&'a str>,
    /// How long a browser waits before reconnecting, in milliseconds.
    pub retry: Option<u64>,
}

impl Event<'_> {
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.data.len() + 64);
        self.encode_into(&mut out);
        out.into()
    }

    /// Appends the event to `out`. Line breaks in `event` and `id` (and NUL in `id`, which
    /// makes browsers ignore it) are left out: they would end the field and start another.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if let Some(event) = self.event {
            field(out, "event", event, |c| matches!(c, '\r' | '\n'));
        }
        for line in lines(self.data) {
            field(out, "data", line, |_| false);
        }
        if let Some(id) = self.id {
            field(out, "id", id, |c| matches!(c, '\r' | '\n' | '\0'));
        }
        if let Some(retry) = self.retry {
            field(out, "retry", &retry.to_string(), |_| false);
        }
        out.push(b'\n');
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &str, dropped: impl Fn(char) -> bool) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    if value.contains(&dropped) {
        out.extend(
            value
                .chars()
                .filter(|c| !dropped(*c))
                .collect::<String>()
                .bytes(),
        );
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'\n');
}

/// The lines of `text`, split at any of the three line breaks the format knows.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

/// What a [`Parser`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An event, with the fields its block set; `data` without its last line break.
    Event {
        event: Option<String>,
        data: String,
        id: Option<String>,
        retry: Option<u64>,
    },
    /// A comment line, without its colon.
    Comment(String),
}

/// Reads an event stream in any pieces, as the HTML standard's parsing rules say (except
/// that each event reports only the fields of its own block, so a test can see them).
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The last piece ended with a CR: a LF starting the next belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl Parser {
    /// Takes the next bytes of the stream; returns what they completed.
    pub fn push(&mut self, mut input: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        if self.after_cr && input.first() == Some(&b'\n') {
            input = &input[1..];
        }
        self.after_cr = false;
        while let Some(at) = input.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            self.line.extend_from_slice(&input[..at]);
            let crlf = input[at] == b'\r' && input.get(at + 1) == Some(&b'\n');
            if input[at] == b'\r' && at + 1 == input.len() {
                self.after_cr = true;
            }
            input = &input[at + if crlf { 2 } else { 1 }..];
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            items.extend(self.line_done(&line));
        }
        self.line.extend_from_slice(input);
        items
    }

    fn line_done(&mut self, line: &str) -> Option<Item> {
        if line.is_empty() {
            let data = self.data.take();
            let (event, id, retry) = (self.event.take(), self.id.take(), self.retry.take());
            let mut data = data?;
            data.pop();
            return Some(Item::Event {
                event,
                data,
                id,
                retry,
            });
        }
        if let Some(comment) = line.strip_prefix(':') {
            return Some(Item::Comment(comment.to_owned()));
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_go_out_in_the_order_the_server_has_always_sent_them() {
        let event = Event {
            event: Some("notification"),
            data: r#"{"id":"n1"}"#,
            id: Some("42"),
            retry: None,
        };
        assert_eq!(
            &event.encode()[..],
            b"event: notification\ndata: {\"id\":\"n1\"}\nid: 42\n\n"
        );
        let last = Event {
            event: Some("shutdown"),
            data: "{}",
            id: None,
            retry: Some(1000),
        };
        assert_eq!(
            &last.encode()[..],
            b"event: shutdown\ndata: {}\nretry: 1000\n\n"
        );
        let plain = Event {
            data: "hi",
            ..Event::default()
        };
        assert_eq!(&plain.encode()[..], b"data: hi\n\n");
    }

    #[test]
    fn each_line_of_data_is_a_data_line_whatever_its_line_break() {
        let event = Event {
            data: "one\ntwo\r\nthree\rfour\n",
            ..Event::default()
        };
        assert_eq!(
            &event.encode()[..],
            b"data: one\ndata: two\ndata: three\ndata: four\ndata: \n\n"
        );
        let mut parser = Parser::default();
        assert_eq!(
            parser.push(&event.encode()),
            [Item::Event {
                event: None,
                data: "one\ntwo\nthree\nfour\n".into(),
                id: None,
                retry: None
            }]
        );
    }

    #[test]
    fn line_breaks_cannot_smuggle_a_field_into_the_name_or_id() {
        let event = Event {
            event: Some("a\nid: 9"),
            data: "x",
            id: Some("1\r\n\0retry: 5"),
            retry: None,
        };
        assert_eq!(
            &event.encode()[..],
            b"event: aid: 9\ndata: x\nid: 1retry: 5\n\n"
        );
    }

    #[test]
    fn the_parser_reads_comments_fields_and_any_line_break() {
        let mut parser = Parser::default();
        let items = parser.push(
            b":\n\n: hello\r\nevent: e\rdata:no space\r\ndata:  two spaces\nid: 7\nretry: 50\n\n",
        );
        assert_eq!(
            items,
            [
                Item::Comment(String::new()),
                Item::Comment(" hello".into()),
                Item::Event {
                    event: Some("e".into()),
                    data: "no space\n two spaces".into(),
                    id: Some("7".into()),
                    retry: Some(50)
                }
            ]
        );
        // Fields of their own and malformed values are ignored; a block without data is not
        // an event.
        let items = parser.push(b"event: x\nid: a\0b\nretry: 5s\nfoo: bar\ndata\n\nid: 1\n\n");
        assert_eq!(
            items,
            [Item::Event {
                event: Some("x".into()),
                data: String::new(),
                id: None,
                retry: None
            }]
        );
    }

    #[test]
    fn a_crlf_split_between_pieces_is_one_line_break() {
        let mut parser = Parser::default();
        assert!(parser.push(b"data: a\r").is_empty());
        assert_eq!(
            parser.push(b"\n\r\n"),
            [Item::Event {
                event: None,
                data: "a".into(),
                id: None,
                retry: None
            }]
        );
    }
}
