//! Socket.IO v4 at `/socket.io/` (namespace `/`), compatible with an unmodified
//! `socket.io-client` 4.
//!
//! Handshake `auth` (all optional): `{"lastSequence": N, "userId": "..."}`; `since` and
//! `offset` are accepted as other names for `lastSequence`, as a number or a numeric string.
//! Invalid `auth` fails the connection with a `connect_error` saying why. Events to the client:
//! - `notification` `(notification, sequence)`: created; the first argument is the plain
//!   notification object, as the seed emitted it, the second the event's sequence (the
//!   position to resume from, which for status events differs from `notification.sequence`);
//! - `notification:updated` `(notification, sequence)`: status changed (delivered or failed);
//! - `recovered` `{"complete", "lastSequence"}`: after the replay that follows every connect
//!   (also when nothing was missed); live from here;
//! - `reset` `{"lastSequence", "message"}`: missed events are no longer kept, refetch;
//! - `error` `{"code": "slow_consumer" | "unavailable", "message", "lastSequence"}` just
//!   before the server disconnects the socket. On shutdown the server disconnects every socket
//!   (`io server disconnect`), so clients reconnect on their own terms.
//!
//! A socket whose packet buffer (`STREAM_BUFFER` packets) is full is waited for while it drains;
//! once it is more than `STREAM_BUFFER` events behind the live stream it is a slow consumer.

use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderValue, Uri};
use herald_core::event::EventType;
use herald_core::notification::MAX_USER_ID_CHARS;
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio_util::sync::CancellationToken;

use super::params::parse_sequence;
use super::replay::{ConnectionGauge, Delivery, Feed, Start, StreamCounters};
use super::wire::{Closing, Reset};
use crate::state::SharedState;

const TRANSPORT: &str = "socketio";
/// Clients send next to nothing (pongs, the connect packet), so a small read buffer does;
/// engineioxide's default (4 KiB) is allocated for every connection.
const WS_READ_BUFFER: usize = 1024;
/// Where socketioxide serves (its default).
const PATH: &str = "/socket.io/";
/// How often a socket with a full packet buffer is checked for room.
const DRAIN_CHECK: Duration = Duration::from_millis(10);

pub fn attach(router: Router, state: &SharedState) -> Router {
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(state.streams.buffer)
        .ping_interval(state.streams.keepalive)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .with_state(state.clone())
        .build_layer();
    io.ns("/", connect.with(check_auth));
    router
        .layer(layer)
        // Synchronous, so it costs the other routes next to nothing (axum's async
        // `map_request` took 11 % of the throughput of cached GETs).
        .layer(tower::util::MapRequestLayer::new(own_request_head))
}

/// socketioxide keeps every connection's request head for as long as the connection lives.
/// hyper parses the URI and header values without copying, as views of the connection's read
/// buffer (16 KiB), which they would keep alive; copies of them take a few hundred bytes.
fn own_request_head(mut request: Request) -> Request {
    if !request.uri().path().starts_with(PATH) {
        return request;
    }
    if let Ok(uri) = request.uri().to_string().parse::<Uri>() {
        // axum's copy of the URI, from before any middleware, too.
        if let Some(original) = request.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *request.uri_mut() = uri;
    }
    for value in request.headers_mut().values_mut() {
        if let Ok(copy) = HeaderValue::from_bytes(value.as_bytes()) {
            *value = copy;
        }
    }
    request
}

/// Where a client resumes and what it wants, from the handshake `auth`.
#[derive(Debug, PartialEq, Eq)]
struct Resume {
    start: Start,
    user_id: Option<String>,
}

fn parse_auth(auth: &Value) -> Result<Resume, String> {
    let fields = match auth {
        Value::Null => {
            return Ok(Resume {
                start: Start::Live,
                user_id: None,
            });
        }
        Value::Object(fields) => fields,
        _ => {
            return Err(
                "auth must be an object like {\"lastSequence\": 42, \"userId\": \"u1\"}".into(),
            );
        }
    };
    let mut start = Start::Live;
    for name in ["lastSequence", "since", "offset"] {
        let after = match fields.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(number)) => number.as_i64().filter(|n| *n >= 0),
            Some(Value::String(text)) => parse_sequence(text),
            Some(_) => None,
        };
        let after = after.ok_or_else(|| {
            format!("auth.{name} must be a sequence number (a whole number, 0 or more)")
        })?;
        start = Start::After(after);
        break;
    }
    let user_id = match fields.get("userId") {
        None | Some(Value::Null) => None,
        Some(Value::String(user))
            if !user.is_empty() && user.chars().count() <= MAX_USER_ID_CHARS =>
        {
            Some(user.clone())
        }
        Some(_) => {
            return Err(format!(
                "auth.userId must be a non-empty string of at most {MAX_USER_ID_CHARS} characters"
            ));
        }
    };
    Ok(Resume { start, user_id })
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadAuth(String);

async fn check_auth(TryData(auth): TryData<Value>) -> Result<(), BadAuth> {
    parse_auth(&auth.unwrap_or(Value::Null))
        .map(drop)
        .map_err(BadAuth)
}

async fn connect(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<SharedState>,
) {
    // `check_auth` let only valid auth through.
    let Ok(resume) = parse_auth(&auth.unwrap_or(Value::Null)) else {
        return;
    };
    let gone = CancellationToken::new();
    socket.on_disconnect({
        let gone = gone.clone();
        async move || gone.cancel()
    });
    tokio::spawn(serve(socket, state, resume, gone));
}

enum Sent {
    Done,
    Gone,
    Behind,
}

async fn serve(socket: SocketRef, state: SharedState, resume: Resume, gone: CancellationToken) {
    let _gauge = ConnectionGauge::open(&state, TRANSPORT);
    let counters = StreamCounters::new(&state, TRANSPORT);
    let resume_from = match resume.start {
        Start::After(after) => after,
        Start::Live => 0,
    };
    let mut feed = match Feed::open(state.clone(), resume.user_id, resume.start).await {
        Ok(feed) => feed,
        Err(error) => {
            tracing::warn!(%error, "Socket.IO stream cannot start: the event log is unavailable");
            let _ = socket.emit("error", &Closing::unavailable(resume_from));
            let _ = socket.disconnect();
            return;
        }
    };
    loop {
        let delivery = tokio::select! {
            () = gone.cancelled() => return,
            delivery = feed.next() => delivery,
        };
        let (sent, is_event) = match delivery {
            Ok(Delivery::Event(event)) => {
                let name = match event.event.kind {
                    EventType::Created => "notification",
                    EventType::Delivered | EventType::Failed => "notification:updated",
                };
                let data = (event.notification_json(), event.event.sequence);
                (emit(&socket, &feed, &state, &gone, name, &data).await, true)
            }
            Ok(Delivery::Recovered(recovered)) => (
                emit(&socket, &feed, &state, &gone, "recovered", &recovered).await,
                false,
            ),
            Ok(Delivery::Reset { latest }) => (
                emit(&socket, &feed, &state, &gone, "reset", &Reset::new(latest)).await,
                false,
            ),
            Ok(Delivery::SlowConsumer) => (Sent::Behind, false),
            // socketioxide pings on its own.
            Ok(Delivery::KeepAlive) => continue,
            Ok(Delivery::Shutdown) => {
                let _ = socket.disconnect();
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Socket.IO stream ends: the event log is unavailable");
                let _ = socket.emit("error", &Closing::unavailable(feed.last_sequence()));
                let _ = socket.disconnect();
                return;
            }
        };
        match sent {
            Sent::Done if is_event => counters.deliveries.inc(),
            Sent::Done => {}
            Sent::Gone => return,
            Sent::Behind => {
                counters.slow_consumers.inc();
                return slow_consumer(socket, &state, &feed, &gone).await;
            }
        }
    }
}

/// Emits unless the client stops draining its packet buffer and falls too far behind.
async fn emit(
    socket: &SocketRef,
    feed: &Feed,
    state: &SharedState,
    gone: &CancellationToken,
    event: &str,
    data: &impl Serialize,
) -> Sent {
    loop {
        match socket.emit(event, data) {
            Ok(()) => return Sent::Done,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                // socketioxide offers no way to await room in the buffer, so look again shortly.
                tokio::select! {
                    () = tokio::time::sleep(DRAIN_CHECK) => {}
                    () = feed.fell_behind() => return Sent::Behind,
                    () = gone.cancelled() => return Sent::Gone,
                    () = state.shutdown.cancelled() => return Sent::Gone,
                }
            }
            Err(SendError::Socket(SocketError::Closed)) => return Sent::Gone,
            Err(SendError::Serialize(error)) => {
                tracing::error!(%error, event, "cannot encode a Socket.IO event; skipping it");
                return Sent::Done;
            }
        }
    }
}

async fn slow_consumer(
    socket: SocketRef,
    state: &SharedState,
    feed: &Feed,
    gone: &CancellationToken,
) {
    // Both need room in the full buffer; without it the engine's heartbeat, which the stalled
    // client does not answer either, closes the connection.
    let _ = socket.emit("error", &Closing::slow_consumer(feed.last_sequence()));
    loop {
        match socket.clone().disconnect() {
            Err(SocketError::InternalChannelFull) => tokio::select! {
                () = tokio::time::sleep(DRAIN_CHECK) => {}
                () = gone.cancelled() => return,
                () = state.shutdown.cancelled() => return,
            },
            Ok(()) | Err(SocketError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use serde_json::json;

    #[test]
    fn the_kept_request_head_does_not_hold_the_read_buffer() {
        // What hyper hands over: views of the bytes it read from the socket.
        let read = Bytes::from(b"/socket.io/?EIO=4&transport=websocket websocket".to_vec());
        let within_read = |bytes: &[u8]| read.as_ptr_range().contains(&bytes.as_ptr());
        let uri = Uri::from_maybe_shared(read.slice(..37)).unwrap();
        let mut request = Request::builder()
            .uri(uri.clone())
            .header(
                "upgrade",
                HeaderValue::from_maybe_shared(read.slice(38..)).unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(OriginalUri(uri));
        assert!(within_read(request.uri().path().as_bytes()));
        assert!(within_read(request.headers()["upgrade"].as_bytes()));

        let request = own_request_head(request);
        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(request.headers()["upgrade"], "websocket");
        assert!(!within_read(request.uri().path().as_bytes()));
        assert!(!within_read(request.headers()["upgrade"].as_bytes()));
        let original = request.extensions().get::<OriginalUri>().unwrap();
        assert!(!within_read(original.0.path().as_bytes()));
    }

    use super::*;

    #[test]
    fn auth_names_the_resume_point_and_user() {
        let resume = parse_auth(&json!({"lastSequence": 42, "userId": "u1"})).unwrap();
        assert_eq!(
            resume,
            Resume {
                start: Start::After(42),
                user_id: Some("u1".into())
            }
        );
        assert_eq!(
            parse_auth(&json!({"offset": "7"})).unwrap().start,
            Start::After(7)
        );
        assert_eq!(
            parse_auth(&json!({"since": 0})).unwrap().start,
            Start::After(0)
        );
        assert_eq!(parse_auth(&Value::Null).unwrap().start, Start::Live);
        assert_eq!(parse_auth(&json!({})).unwrap().start, Start::Live);
    }

    #[test]
    fn bad_auth_is_refused_with_a_reason() {
        for auth in [
            json!({"lastSequence": -1}),
            json!({"lastSequence": "soon"}),
            json!({"lastSequence": 1.5}),
            json!({"userId": ""}),
            json!({"userId": 7}),
            json!("token"),
        ] {
            assert!(parse_auth(&auth).is_err(), "{auth} was accepted");
        }
    }
}
