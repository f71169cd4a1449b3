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

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures::{FutureExt, SinkExt, StreamExt};
use herald_core::event::EventType;
use herald_core::fanout::Broadcast;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::params::{RawQuery, StreamParams};
use super::replay::{ConnectionGauge, Delivery, Feed};
use super::wire::{Recovered, Reset};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::SharedState;

const TRANSPORT: &str = "websocket";
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
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    query: RawQuery,
) -> ApiResult<Response> {
    let params = StreamParams::parse(query)?;
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
    fn message(&self) -> Message {
        // Our frames are plain data; serializing them cannot fail.
        Message::text(serde_json::to_string(self).unwrap_or_default())
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
        let (message, is_event) = tokio::select! {
            delivery = next(&mut feed, &mut ready) => match delivery {
                Ok(Delivery::Event(event)) => (event_frame(&event), true),
                Ok(Delivery::Recovered(recovered)) => (Frame::Recovered(recovered).message(), false),
                Ok(Delivery::Reset { latest }) => (Frame::Reset(Reset::new(latest)).message(), false),
                Ok(Delivery::KeepAlive) => (Message::Ping(Default::default()), false),
                Ok(Delivery::SlowConsumer) => return slow_consumer(sink, &state).await,
                Ok(Delivery::Shutdown) => {
                    return close(&mut sink, close_code::RESTART, "service restart").await;
                }
                Err(error) => {
                    tracing::warn!(%error, "WebSocket stream ends: the event log is unavailable");
                    return close(&mut sink, close_code::ERROR, "event log unavailable").await;
                }
            },
            _ = &mut closed => return,
        };
        // Events already waiting go out in the same write: under a burst (a notification
        // and its delivered update) that halves the system calls.
        let mut events = u64::from(is_event);
        let mut frames = vec![message];
        while ready.is_none() {
            match feed.next().now_or_never() {
                Some(Ok(Delivery::Event(event))) => {
                    frames.push(event_frame(&event));
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

fn event_frame(event: &Broadcast) -> Message {
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
    frame.message()
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
