//! Socket.IO sessions served by socketioxide: every client that does not open a WebSocket
//! straight away (long-polling, and the upgrade from it).
//!
//! A socket whose packet buffer (`STREAM_BUFFER` packets) is full is waited for while it drains;
//! once it is more than `STREAM_BUFFER` events behind the live stream it is a slow consumer.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio_util::sync::CancellationToken;

use super::super::replay::{ConnectionGauge, Delivery, Feed, StreamCounters};
use super::super::wire::{Closing, Reset};
use super::{Resume, TRANSPORT, event_name, parse_auth};
use crate::state::SharedState;

/// Clients send next to nothing (pongs, the connect packet), so a small read buffer does;
/// engineioxide's default (4 KiB) is allocated for every connection.
const WS_READ_BUFFER: usize = 1024;
/// How often a socket with a full packet buffer is checked for room.
const DRAIN_CHECK: Duration = Duration::from_millis(10);
/// How long a socket's stream waits at shutdown for its connection to close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// socketioxide's service, with the namespace `/` and closing every connection at shutdown.
pub fn service(
    state: &SharedState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ 'static {
    let (service, io) = SocketIo::builder()
        .max_buffer_size(state.streams.buffer)
        .ping_interval(state.streams.keepalive)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .with_state(state.clone())
        .build_svc();
    io.ns("/", connect.with(check_auth));
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        // Closes the connections without a disconnect packet, which would tell clients not
        // to reconnect.
        io.close().await;
    });
    tower::ServiceExt::<Request>::map_response(service, IntoResponse::into_response)
}

/// socketioxide keeps every connection's request head for as long as the connection lives.
/// hyper parses the URI and header values without copying, as views of the connection's read
/// buffer (16 KiB), which they would keep alive; copies of them take a few hundred bytes.
pub fn own_request_head(mut request: Request) -> Request {
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
    let resume_from = resume.last_sequence();
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
                let name = event_name(event.event.kind);
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
                // `service` closes the connection; the gauge stays until it did.
                let _ = tokio::time::timeout(CLOSE_GRACE, gone.cancelled()).await;
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

    use super::*;

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
}
