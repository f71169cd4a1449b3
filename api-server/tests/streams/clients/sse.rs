//! A Server-Sent Events client over reqwest.

use futures::StreamExt;
use serde_json::Value;

use super::patience::within;
use super::seen::Seen;

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    pub retry: Option<String>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("{self:?} has no JSON data: {e}"))
    }

    pub fn sequence(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{self:?} has no numeric id"))
    }
}

pub struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
    seen: Seen,
}

impl SseClient {
    /// Opens `url`; fails the test unless the answer is a 200 event stream.
    pub async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = within("opening the SSE stream", request.send())
            .await
            .expect("GET SSE stream");
        assert_eq!(response.status(), 200, "SSE answered {}", response.status());
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content-type {content_type}"
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            seen: Seen::default(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        within("waiting for an SSE event", async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(event) = parse_block(&block) {
                        if event.event.starts_with("notification") {
                            self.seen.record(event.sequence());
                        }
                        return Some(event);
                    }
                    continue;
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }

    /// The next event, which must exist and have this name. Status updates (from the
    /// processing that marks notifications delivered) are skipped unless asked for.
    pub async fn expect(&mut self, name: &str) -> SseEvent {
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the SSE stream ended before `{name}`"));
            if event.event == "notification.updated" && name != event.event {
                continue;
            }
            assert_eq!(event.event, name, "expected `{name}`, got {event:?}");
            return event;
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        ..SseEvent::default()
    };
    let mut data = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => {} // a comment: keep-alive
            "event" => event.event = value.into(),
            "id" => event.id = Some(value.into()),
            "data" => data.push(value),
            "retry" => event.retry = Some(value.into()),
            _ => {}
        }
    }
    if data.is_empty() && event.id.is_none() {
        return None;
    }
    event.data = data.join("\n");
    Some(event)
}
