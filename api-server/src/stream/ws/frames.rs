//! How each delivery goes out on a plain WebSocket: JSON text frames, pings and closes.

use herald_core::db::DbError;
use herald_core::event::EventType;
use herald_core::fanout::Broadcast;
use serde::Serialize;
use serde_json::value::RawValue;
use stream_protocols::websocket::close_code;

use crate::stream::replay::Delivery;
use crate::stream::wire::{Closing, Recovered, Reset};

pub const TRANSPORT: &str = "websocket";
/// The close code after a `token_expired` error frame (4000-4999 are the application's).
pub const TOKEN_EXPIRED: u16 = 4001;

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
    #[serde(rename = "error")]
    Error(Closing),
}

impl Frame<'_> {
    fn text(&self) -> String {
        // Our frames are plain data; serializing them cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a delivery other than an event becomes on a WebSocket.
pub enum Outgoing {
    Text(String),
    Ping,
    /// Send this close frame and end.
    Close(u16, &'static str),
    /// Send this text, then this close frame, and end.
    Last(String, u16, &'static str),
}

/// `last_sequence` is the feed's, after the delivery.
pub fn outgoing(delivery: Result<Delivery, DbError>, last_sequence: i64) -> Outgoing {
    match delivery {
        Ok(Delivery::Event(event)) => Outgoing::Text(event_text(&event)),
        Ok(Delivery::Recovered(recovered)) => Outgoing::Text(Frame::Recovered(recovered).text()),
        Ok(Delivery::Reset { latest }) => Outgoing::Text(Frame::Reset(Reset::new(latest)).text()),
        Ok(Delivery::KeepAlive) => Outgoing::Ping,
        Ok(Delivery::SlowConsumer) => Outgoing::Close(close_code::POLICY, "slow consumer"),
        Ok(Delivery::Shutdown) => Outgoing::Close(close_code::RESTART, "service restart"),
        Ok(Delivery::Expired) => Outgoing::Last(
            Frame::Error(Closing::token_expired(last_sequence)).text(),
            TOKEN_EXPIRED,
            "token expired",
        ),
        Err(error) => {
            tracing::warn!(%error, "WebSocket stream ends: the event log is unavailable");
            Outgoing::Close(close_code::ERROR, "event log unavailable")
        }
    }
}

/// A `notification` or `notification.updated` frame's text; the same for every client.
pub fn event_text(event: &Broadcast) -> String {
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
