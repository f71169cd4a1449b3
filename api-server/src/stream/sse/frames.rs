//! How each delivery goes out as Server-Sent Events.

use std::time::Duration;

use axum::body::Bytes;
use herald_core::db::DbError;
use herald_core::event::EventType;
use herald_core::fanout::Broadcast;
use serde::Serialize;
use stream_protocols::sse::{Event, KEEP_ALIVE};

use crate::stream::replay::Delivery;
use crate::stream::wire::{Closing, Reset};

pub const TRANSPORT: &str = "sse";
/// How long browsers wait before reconnecting after a shutdown or error.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The SSE text for a delivery, and whether the stream goes on after it. `last_sequence` is
/// the feed's, after the delivery.
pub fn frame(delivery: Result<Delivery, DbError>, last_sequence: i64) -> (Bytes, bool) {
    match delivery {
        Ok(Delivery::Event(event)) => (event_frame(&event), true),
        Ok(Delivery::Recovered(recovered)) => (
            json_frame("recovered", &recovered, Some(recovered.last_sequence)),
            true,
        ),
        Ok(Delivery::Reset { latest }) => {
            (json_frame("reset", &Reset::new(latest), Some(latest)), true)
        }
        Ok(Delivery::SlowConsumer) => {
            let closing = Closing::slow_consumer(last_sequence);
            (json_frame("error", &closing, None), false)
        }
        Ok(Delivery::KeepAlive) => (Bytes::from_static(KEEP_ALIVE), true),
        Ok(Delivery::Expired) => {
            let closing = Closing::token_expired(last_sequence);
            (json_frame("error", &closing, None), false)
        }
        Ok(Delivery::Shutdown) => {
            let closing = Closing::shutdown(last_sequence);
            (json_frame("shutdown", &closing, None), false)
        }
        Err(error) => {
            tracing::warn!(%error, "SSE stream ends: the event log is unavailable");
            let closing = Closing::unavailable(last_sequence);
            (json_frame("error", &closing, None), false)
        }
    }
}

/// A `notification` or `notification.updated` event; the same text for every client.
pub fn event_frame(event: &Broadcast) -> Bytes {
    let name = match event.event.kind {
        EventType::Created => "notification",
        EventType::Delivered | EventType::Failed => "notification.updated",
    };
    Event {
        event: Some(name),
        data: event.notification_json().get(),
        id: Some(&event.event.sequence.to_string()),
        retry: None,
    }
    .encode()
}

/// An event with a JSON payload: with `id:` when it moves the client's position, else with
/// `retry:`, as it is the last before the server ends the stream.
fn json_frame(name: &str, data: &impl Serialize, id: Option<i64>) -> Bytes {
    // Our payloads are plain data; serializing them cannot fail.
    let data = serde_json::to_string(data).unwrap_or_default();
    let id = id.map(|id| id.to_string());
    let retry = u64::try_from(RECONNECT_AFTER.as_millis()).unwrap_or(u64::MAX);
    Event {
        event: Some(name),
        data: &data,
        retry: id.is_none().then_some(retry),
        id: id.as_deref(),
    }
    .encode()
}
