//! `GET /api/sse/notifications`: Server-Sent Events.
//!
//! Events (every one but `error` and `shutdown` carries `id:`, the position to resume from):
//! - `notification`: a notification was created; `id:` is the event's sequence, `data:` the
//!   notification as the REST API returns it.
//! - `notification.updated`: a notification's status changed (delivered or failed); same shape,
//!   `data:` the notification after the change.
//! - `recovered`: the catch-up is over and the stream is live: `{"complete", "lastSequence"}`.
//! - `reset`: missed events are no longer kept; refetch, the stream continues after
//!   `lastSequence`.
//! - `error` (`{"code": "slow_consumer" | "unavailable", "message", "lastSequence"}`) and
//!   `shutdown` (with `retry:`): the server ends the stream; reconnect (browsers do) and resume.
//!
//! Resume with the `Last-Event-ID` header (sent by browsers when they reconnect) or `?since=`;
//! the header wins. Without either the stream is live only.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use herald_core::event::EventType;
use serde::Serialize;

use super::params::{RawQuery, StreamParams, parse_sequence};
use super::replay::{ConnectionGauge, Delivery, Feed, Start};
use super::stall::{Stalls, Watched};
use super::wire::{Closing, Reset};
use crate::connection::{Kill, Peer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::SharedState;

const TRANSPORT: &str = "sse";
/// How long browsers wait before reconnecting after a shutdown or error.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Live notifications as Server-Sent Events, replaying what a reconnecting client missed.
///
/// Events: `notification` (created), `notification.updated` (status changed), `recovered`,
/// `reset`, `error`, `shutdown`; each notification event's `id:` is its sequence number.
#[utoipa::path(get, path = "/api/sse/notifications", tag = "streams",
    params(
        ("since" = Option<i64>, Query, description = "Replay events after this sequence, then go live"),
        ("userId" = Option<String>, Query, description = "Only broadcasts and this user's notifications"),
        ("Last-Event-ID" = Option<i64>, Header, description = "As `since`; wins over it (browsers send it when reconnecting)"),
    ),
    responses(
        (status = OK, content_type = "text/event-stream", body = String,
            description = "`notification`, `notification.updated`, `recovered`, `reset`, `error` and `shutdown` events"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A bad query parameter or Last-Event-ID"),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn notifications(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    query: RawQuery,
) -> ApiResult<Response> {
    let params = StreamParams::parse(query)?;
    let start = match last_event_id(&headers)? {
        Some(after) => Start::After(after),
        None => params.start(),
    };
    let feed = Feed::open(state.clone(), params.user_id, start).await?;
    Ok(Sse::new(events(feed, state, peer.kill)).into_response())
}

struct Connection {
    feed: Feed,
    state: SharedState,
    _gauge: ConnectionGauge,
    _watched: Watched,
}

/// The SSE events of one connection; ends after an `error` or `shutdown` event.
///
/// hyper polls this body directly: an event reaches the socket without passing through
/// another task, and events that are ready together go out in one write. A client that
/// stops reading is cut by [`stall`](super::stall), since its body is no longer polled.
fn events(
    feed: Feed,
    state: SharedState,
    kill: Kill,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let connection = Connection {
        _gauge: ConnectionGauge::open(&state, TRANSPORT),
        _watched: Stalls::watch(&state, feed.progress(), kill),
        feed,
        state,
    };
    futures::stream::unfold(Some(connection), |connection| async move {
        let mut connection = connection?;
        let delivery = connection.feed.next().await;
        let (event, more) = to_sse(&connection, delivery);
        Some((Ok(event), more.then_some(connection)))
    })
}

/// The SSE event for a delivery, and whether the stream goes on after it.
fn to_sse(
    connection: &Connection,
    delivery: Result<Delivery, herald_core::db::DbError>,
) -> (Event, bool) {
    match delivery {
        Ok(Delivery::Event(event)) => {
            let name = match event.event.kind {
                EventType::Created => "notification",
                EventType::Delivered | EventType::Failed => "notification.updated",
            };
            connection
                .state
                .metrics
                .stream_deliveries
                .with_label_values(&[TRANSPORT])
                .inc();
            let sse = Event::default()
                .event(name)
                .data(event.notification_json().get())
                .id(event.event.sequence.to_string());
            (sse, true)
        }
        Ok(Delivery::Recovered(recovered)) => {
            let sse = json_event("recovered", &recovered).id(recovered.last_sequence.to_string());
            (sse, true)
        }
        Ok(Delivery::Reset { latest }) => {
            let sse = json_event("reset", &Reset::new(latest)).id(latest.to_string());
            (sse, true)
        }
        Ok(Delivery::SlowConsumer) => {
            connection
                .state
                .metrics
                .slow_consumer_disconnects
                .with_label_values(&[TRANSPORT])
                .inc();
            let closing = Closing::slow_consumer(connection.feed.last_sequence());
            (json_event("error", &closing).retry(RECONNECT_AFTER), false)
        }
        // An empty comment, as browsers expect it.
        Ok(Delivery::KeepAlive) => (Event::default().comment(""), true),
        Ok(Delivery::Shutdown) => {
            let closing = Closing::shutdown(connection.feed.last_sequence());
            (
                json_event("shutdown", &closing).retry(RECONNECT_AFTER),
                false,
            )
        }
        Err(error) => {
            tracing::warn!(%error, "SSE stream ends: the event log is unavailable");
            let closing = Closing::unavailable(connection.feed.last_sequence());
            (json_event("error", &closing).retry(RECONNECT_AFTER), false)
        }
    }
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    // Our payloads are plain data; serializing them cannot fail.
    let data = serde_json::to_string(data).unwrap_or_default();
    Event::default().event(name).data(data)
}

fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let raw = String::from_utf8_lossy(value.as_bytes());
    // EventSource sends an empty header when the stream had no id yet.
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_sequence(&raw).map(Some).ok_or_else(|| ApiError {
        field: Some("Last-Event-ID"),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!(
                "Last-Event-ID must be a sequence number (a whole number, 0 or more), not {raw:?}"
            ),
        )
    })
}
