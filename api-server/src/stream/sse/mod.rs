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
//! - `error` (`{"code": "slow_consumer" | "unavailable" | "token_expired", "message",
//!   "lastSequence"}`) and `shutdown` (with `retry:`): the server ends the stream; reconnect
//!   (browsers do; after `token_expired`, with a new token and `?since=<lastSequence>`).
//!
//! Resume with the `Last-Event-ID` header (sent by browsers when they reconnect) or `?since=`;
//! the header wins. Without either the stream is live only.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};

use super::audience::Audience;
use super::direct::{self, Protocol};
use super::gauges::{ConnectionGauge, StreamCounters};
use super::hub::Hub;
use super::params::{RawQuery, StreamParams, parse_sequence};
use super::replay::{Delivery, Feed, Start};
use super::stall::Watched;
use crate::auth::Subscriber;
use crate::connection::{Kill, Peer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use frames::{TRANSPORT, frame};

pub mod frames;

/// Live notifications as Server-Sent Events, replaying what a reconnecting client missed.
///
/// Events: `notification` (created), `notification.updated` (status changed), `recovered`,
/// `reset`, `error`, `shutdown`; each notification event's `id:` is its sequence number.
#[utoipa::path(get, path = "/api/sse/notifications", tag = "streams",
    security(("userToken" = []), ("apiKey" = []), ("accessTokenQuery" = [])),
    params(
        ("since" = Option<i64>, Query, description = "Replay events after this sequence, then go live"),
        ("userId" = Option<String>, Query, description = "Only broadcasts and this user's notifications (a user token: always its own)"),
        ("access_token" = Option<String>, Query, description = "The credential, for clients that cannot set Authorization (EventSource)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "As `since`; wins over it (browsers send it when reconnecting)"),
    ),
    responses(
        (status = OK, content_type = "text/event-stream", body = String,
            description = "`notification`, `notification.updated`, `recovered`, `reset`, `error` and `shutdown` events"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A bad query parameter or Last-Event-ID"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, body = ErrorBody, description = "Another user's userId, a key without read:all, or an origin not allowed"),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn notifications(
    Subscriber(caller): Subscriber,
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    version: Version,
    headers: HeaderMap,
    query: RawQuery,
) -> ApiResult<Response> {
    let params = StreamParams::parse(query)?;
    let start = match last_event_id(&headers)? {
        Some(after) => Start::After(after),
        None => params.start(),
    };
    let audience = Audience::of(&caller, params.user_id)?;
    let feed = Feed::open(&hub.feeds, audience, start).await?;
    if version == Version::HTTP_11 {
        // The usual case: after the head, the socket is served directly. It serves nothing
        // after the stream, so the head says so: a client that pooled the connection once the
        // stream ended (its last chunk is a proper end) would send its next request to a
        // socket the server has closed.
        let body = peer.detach.body(move |socket| {
            direct::serve(socket, Protocol::Sse, Vec::new(), feed, &hub.direct);
        });
        let close = [(header::CONNECTION, "close")];
        return Ok((head(), close, body).into_response());
    }
    // HTTP/1.0 (no chunked body to continue) and HTTP/2 (a shared connection) stay with
    // hyper.
    let body = Body::from_stream(events(feed, &hub, peer.kill));
    Ok((head(), body).into_response())
}

fn head() -> [(header::HeaderName, &'static str); 3] {
    [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // Tells nginx (and ingress controllers built on it) to pass events on at once.
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ]
}

struct Connection {
    feed: Feed,
    counters: StreamCounters,
    _gauge: ConnectionGauge,
    _watched: Watched,
}

/// The body of a stream served by hyper; ends after an `error` or `shutdown` event.
///
/// hyper polls this body directly: an event reaches the socket without passing through
/// another task, and events that are ready together go out in one write. A client that
/// stops reading is cut by [`stall`](crate::stream::stall), since its body is no longer polled.
fn events(
    feed: Feed,
    hub: &Hub,
    kill: Kill,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + use<> {
    let connection = Connection {
        counters: hub.open.counters(TRANSPORT),
        _gauge: hub.open.open(TRANSPORT),
        _watched: hub.stalls.watch(feed.progress(), kill),
        feed,
    };
    futures::stream::unfold(Some(connection), |connection| async move {
        let mut connection = connection?;
        let delivery = connection.feed.next().await;
        match &delivery {
            Ok(Delivery::Event(_)) => connection.counters.deliveries.inc(),
            Ok(Delivery::SlowConsumer) => connection.counters.slow_consumers.inc(),
            _ => {}
        }
        let (frame, more) = frame(delivery, connection.feed.last_sequence());
        Some((Ok(frame), more.then_some(connection)))
    })
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
