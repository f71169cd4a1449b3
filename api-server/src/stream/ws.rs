//! `GET /api/ws`: plain WebSocket with JSON text frames, for clients without Socket.IO.
//!
//! Server frames:
//! - `{"type": "notification", "sequence": N, "notification": {...}}`: created;
//! - `{"type": "notification.updated", "sequence": N, "notification": {...}}`: status changed;
//! - `{"type": "recovered", "complete": bool, "lastSequence": N}`: catch-up over, live now
//!   (always sent first after connecting; wait for it before relying on live delivery);
//! - `{"type": "reset", "lastSequence": N, "message"}`: missed events are gone, refetch.
//!
//! `sequence` is the event's position in the log; resume with `?since=<last sequence seen>`.
//! The server pings every keep-alive interval. It closes with 1008 "slow consumer" when the
//! client falls more than the stream buffer behind, 1012 "service restart" on shutdown, 1011
//! when the event log is unavailable. Frames from the client are ignored.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, SinkExt, StreamExt};
use herald_core::event::EventType;
use herald_core::fanout::Broadcast;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::direct;
use super::params::{RawQuery, StreamParams};
use super::replay::{ConnectionGauge, Delivery, Feed};
use super::wire::{Recovered, Reset};
use super::ws_codec;
use crate::accept::Takeover;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::SharedState;

pub(super) const TRANSPORT: &str = "websocket";
/// Clients only need to send control frames.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Frames that are ready together are written together, up to this many bytes per write.
const WRITE_BUFFER: usize = 4 * 1024;
/// A client that cannot take a close frame within this is dropped without one.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A WebSocket of JSON frames: `notification`, `notification.updated`, `recovered`, `reset`.
#[utoipa::path(get, path = "/api/ws", tag = "streams",
    params(
        ("since" = Option<i64>, Query, description = "Replay events after this sequence, then go live"),
        ("userId" = Option<String>, Query, description = "Only broadcasts and this user's notifications"),
    ),
    responses(
        (status = SWITCHING_PROTOCOLS, description = "JSON text frames `{\"type\": \"notification\" | \"notification.updated\", \"sequence\", \"notification\"}`, `{\"type\": \"recovered\", \"complete\", \"lastSequence\"}` and `{\"type\": \"reset\", \"lastSequence\", \"message\"}`"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A bad query parameter, or not a WebSocket handshake"),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn upgrade(
    State(state): State<SharedState>,
    takeover: Option<Extension<Takeover>>,
    method: Method,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    query: RawQuery,
) -> ApiResult<Response> {
    let params = StreamParams::parse(query)?;
    if let Some(Extension(takeover)) = takeover {
        // The usual case: the handshake is answered here and the socket served directly.
        let accept = handshake(&method, &headers)?;
        let start = params.start();
        let feed = Feed::open(state.clone(), params.user_id, start).await?;
        let head = (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, "upgrade"),
                (header::UPGRADE, "websocket"),
            ],
            [(header::SEC_WEBSOCKET_ACCEPT, accept)],
        );
        return Ok(takeover.respond(head.into_response(), move |socket| {
            let protocol = direct::Protocol::WebSocket(ws_codec::Inbound::default());
            direct::serve(socket, protocol, feed, state);
        }));
    }
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "websocket_required",
            rejection.body_text(),
        )
    })?;
    // Subscribed before the handshake completes, so a client may rely on everything that
    // happens after it connected.
    let start = params.start();
    let feed = Feed::open(state.clone(), params.user_id, start).await?;
    // Clients send next to nothing and frames are flushed as soon as no other is ready, so
    // small buffers do: tungstenite's defaults (128 KiB each way) would dominate the memory of
    // an idle connection.
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + 64 * 1024)
        .on_upgrade(move |socket| serve(socket, feed, state)))
}

/// The `Sec-WebSocket-Accept` for a valid WebSocket handshake; the same checks as axum's
/// `WebSocketUpgrade`, with its messages.
fn handshake(method: &Method, headers: &HeaderMap) -> ApiResult<String> {
    let reject = |status, message: &str| {
        Err(ApiError::new(
            status,
            "websocket_required",
            message.to_owned(),
        ))
    };
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request method must be `GET`",
        );
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return reject(
            StatusCode::BAD_REQUEST,
            "Connection header did not include 'upgrade'",
        );
    }
    if !has_token(header::UPGRADE, "websocket") {
        return reject(
            StatusCode::BAD_REQUEST,
            "`Upgrade` header did not include 'websocket'",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return reject(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Version` header did not include '13'",
        );
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(ws_codec::accept_key(key.as_bytes())),
        None => reject(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        ),
    }
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Frame<'a> {
    #[serde(rename = "notification")]
    Created {
        sequence: i64,
        notification: &'a RawValue,
    },
    #[serde(rename = "notification.updated")]
    Updated {
        sequence: i64,
        notification: &'a RawValue,
    },
    #[serde(rename = "recovered")]
    Recovered(Recovered),
    #[serde(rename = "reset")]
    Reset(Reset),
}

impl Frame<'_> {
    fn text(&self) -> String {
        // Our frames are plain data; serializing them cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a delivery other than an event becomes on a WebSocket.
pub(super) enum Outgoing {
    Text(String),
    Ping,
    /// Send this close frame and end.
    Close(u16, &'static str),
}

pub(super) fn outgoing(delivery: Result<Delivery, herald_core::db::DbError>) -> Outgoing {
    match delivery {
        Ok(Delivery::Event(event)) => Outgoing::Text(event_text(&event)),
        Ok(Delivery::Recovered(recovered)) => Outgoing::Text(Frame::Recovered(recovered).text()),
        Ok(Delivery::Reset { latest }) => Outgoing::Text(Frame::Reset(Reset::new(latest)).text()),
        Ok(Delivery::KeepAlive) => Outgoing::Ping,
        Ok(Delivery::SlowConsumer) => Outgoing::Close(close_code::POLICY, "slow consumer"),
        Ok(Delivery::Shutdown) => Outgoing::Close(close_code::RESTART, "service restart"),
        Err(error) => {
            tracing::warn!(%error, "WebSocket stream ends: the event log is unavailable");
            Outgoing::Close(close_code::ERROR, "event log unavailable")
        }
    }
}

enum Sent {
    Done,
    Gone,
    /// The server is going down while the client does not read.
    ShuttingDown,
    /// The client fell more than the stream buffer behind while this frame waited.
    Behind,
}

async fn serve(socket: WebSocket, mut feed: Feed, state: SharedState) {
    let _gauge = ConnectionGauge::open(&state, TRANSPORT);
    let (mut sink, incoming) = socket.split();
    // The client's frames are read by a task of their own: otherwise every delivery would
    // also poll the read side, which perf put at 7 % of the CPU of a 10,000-client fan-out.
    let (closed_tx, mut closed) = oneshot::channel::<()>();
    let _reader = AbortOnDropHandle::new(tokio::spawn(async move {
        read_until_closed(incoming).await;
        let _ = closed_tx.send(());
    }));
    // A delivery taken from the feed while gathering frames for one write, not yet sent.
    let mut ready: Option<Result<Delivery, herald_core::db::DbError>> = None;
    loop {
        let delivery = tokio::select! {
            delivery = next(&mut feed, &mut ready) => delivery,
            _ = &mut closed => return,
        };
        let is_event = matches!(delivery, Ok(Delivery::Event(_)));
        let message = match outgoing(delivery) {
            Outgoing::Text(text) => Message::text(text),
            Outgoing::Ping => Message::Ping(Default::default()),
            Outgoing::Close(close_code::POLICY, _) => return slow_consumer(sink, &state).await,
            Outgoing::Close(code, reason) => return close(&mut sink, code, reason).await,
        };
        // Events already waiting go out in the same write: under a burst (a notification
        // and its delivered update) that halves the system calls.
        let mut events = u64::from(is_event);
        let mut frames = vec![message];
        while ready.is_none() {
            match feed.next().now_or_never() {
                Some(Ok(Delivery::Event(event))) => {
                    frames.push(Message::text(event_text(&event)));
                    events += 1;
                }
                Some(other) => ready = Some(other),
                None => break,
            }
        }
        let write = async {
            for frame in frames {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        let sent = tokio::select! {
            biased;
            result = write => if result.is_ok() { Sent::Done } else { Sent::Gone },
            () = feed.fell_behind() => Sent::Behind,
            () = state.shutdown.cancelled() => Sent::ShuttingDown,
        };
        match sent {
            Sent::Done => state
                .metrics
                .stream_deliveries
                .with_label_values(&[TRANSPORT])
                .inc_by(events),
            Sent::Gone => return,
            Sent::ShuttingDown => {
                return close(&mut sink, close_code::RESTART, "service restart").await;
            }
            Sent::Behind => return slow_consumer(sink, &state).await,
        }
    }
}

/// Returns once the client closed the connection or it failed. Pings are answered by the
/// WebSocket layer; other frames mean nothing here.
async fn read_until_closed(mut incoming: futures::stream::SplitStream<WebSocket>) {
    while let Some(Ok(message)) = incoming.next().await {
        if let Message::Close(_) = message {
            return;
        }
    }
}

/// The delivery set aside while gathering frames, else the feed's next one.
async fn next(
    feed: &mut Feed,
    ready: &mut Option<Result<Delivery, herald_core::db::DbError>>,
) -> Result<Delivery, herald_core::db::DbError> {
    match ready.take() {
        Some(delivery) => delivery,
        None => feed.next().await,
    }
}

/// A `notification` or `notification.updated` frame's text; the same for every client.
pub(super) fn event_text(event: &Broadcast) -> String {
    let (sequence, notification) = (event.event.sequence, event.notification_json());
    let frame = match event.event.kind {
        EventType::Created => Frame::Created {
            sequence,
            notification,
        },
        EventType::Delivered | EventType::Failed => Frame::Updated {
            sequence,
            notification,
        },
    };
    frame.text()
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

async fn slow_consumer(mut sink: Sink, state: &SharedState) {
    state
        .metrics
        .slow_consumer_disconnects
        .with_label_values(&[TRANSPORT])
        .inc();
    close(&mut sink, close_code::POLICY, "slow consumer").await;
}

/// Sends a close frame if the client takes it soon; the connection ends either way.
async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
}
