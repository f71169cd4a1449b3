//! The event log: every change to a notification is an event, stored append-only in the
//! `events` table (event sourcing), published to Kafka and streamed to clients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::notification::Notification;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "notification.created")]
    Created,
    #[serde(rename = "notification.delivered")]
    Delivered,
    #[serde(rename = "notification.failed")]
    Failed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "notification.created",
            Self::Delivered => "notification.delivered",
            Self::Failed => "notification.failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Created, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|t| t.as_str() == value)
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
