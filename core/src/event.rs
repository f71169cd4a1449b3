//! The event log: every change to a notification is an event, stored append-only in the
//! `events` table (event sourcing), published to Kafka and streamed to clients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::notification::Notification;
use crate::string_enum::string_enum;

string_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
    pub enum EventType {
        Created = "notification.created",
        Delivered = "notification.delivered",
        Failed = "notification.failed",
    }
}

/// One entry of the event log. The payload is the whole notification as it is after the
/// event, so a consumer or a reconnecting client needs nothing else, and replaying the events
/// of a notification in sequence order rebuilds its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    /// Position in the platform-wide log; streams use it as their resume point.
    pub sequence: i64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub notification_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub notification: Notification,
}

/// Kafka record headers carried by every published event.
pub mod headers {
    pub const EVENT_ID: &str = "event-id";
    pub const EVENT_TYPE: &str = "event-type";
    pub const TRACEPARENT: &str = "traceparent";
}
