//! Rows as the schema stores them, and their conversion to the domain types.

use uuid::Uuid;

use super::{DbError, from_micros};
use crate::event::{Event, EventType};
use crate::notification::{Notification, NotificationType, Status};

/// The columns every notification query selects, in this order.
pub(super) const NOTIFICATION_COLUMNS: &str = "n.id, n.sequence, n.message, n.type, n.user_id, \
     n.metadata, n.status, n.created_at, n.updated_at";

/// An event joined with its notification's current state.
pub(super) const EVENT_COLUMNS: &str = "e.sequence AS event_sequence, e.id AS event_id, \
     e.type AS event_type, e.occurred_at AS event_occurred_at, n.id, n.sequence, n.message, \
     n.type, n.user_id, n.metadata, n.status, n.created_at, n.updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct NotificationRow {
    id: String,
    sequence: i64,
    message: String,
    #[sqlx(rename = "type")]
    kind: String,
    user_id: Option<String>,
    metadata: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = DbError;

    fn try_from(row: NotificationRow) -> Result<Self, DbError> {
        let corrupt = |what: &str, value: &str| {
            DbError::Corrupt(format!("notification {}: {what} {value:?}", row.id))
        };
        Ok(Notification {
            id: Uuid::parse_str(&row.id).map_err(|_| corrupt("id", &row.id))?,
            sequence: row.sequence,
            kind: NotificationType::parse(&row.kind).ok_or_else(|| corrupt("type", &row.kind))?,
            status: Status::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
            metadata: row
                .metadata
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("metadata", &e.to_string()))?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
            message: row.message,
            user_id: row.user_id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    event_sequence: i64,
    event_id: String,
    event_type: String,
    event_occurred_at: i64,
    #[sqlx(flatten)]
    notification: NotificationRow,
}

impl TryFrom<EventRow> for Event {
    type Error = DbError;

    fn try_from(row: EventRow) -> Result<Self, DbError> {
        let notification = Notification::try_from(row.notification)?;
        Ok(Event {
            id: Uuid::parse_str(&row.event_id)
                .map_err(|_| DbError::Corrupt(format!("event id {:?}", row.event_id)))?,
            sequence: row.event_sequence,
            kind: EventType::parse(&row.event_type)
                .ok_or_else(|| DbError::Corrupt(format!("event type {:?}", row.event_type)))?,
            notification_id: notification.id,
            occurred_at: from_micros(row.event_occurred_at)?,
            notification,
        })
    }
}
