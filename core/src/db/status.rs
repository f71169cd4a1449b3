//! The processor's write: a notification's status change, applied at most once per source
//! event (the event id is recorded in `processed_events` in the same transaction).

use chrono::Utc;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::rows::{NOTIFICATION_COLUMNS, NotificationRow};
use super::{Db, DbError, from_micros, to_micros};
use crate::event::{Event, EventType};
use crate::notification::{Notification, Status};

/// What to do with a notification, decided from its current state (or its absence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusDecision {
    Deliver,
    Fail {
        reason: String,
    },
    /// Change nothing (the event is still recorded as processed).
    Skip {
        reason: String,
    },
}

/// The result of [`Db::apply_status_once`].
#[derive(Debug, Clone, PartialEq)]
pub enum StatusOutcome {
    /// The status changed; the appended `notification.delivered`/`notification.failed` event.
    Changed(Event),
    /// The source event had been processed before: nothing was written.
    AlreadyProcessed,
    /// Recorded as processed without a change (the decision was to skip, or the notification
    /// was no longer pending when the update ran).
    Skipped { reason: String },
}

impl Db {
    /// In one transaction: records `source_event_id` as processed, reads the notification,
    /// asks `decide`, and for a delivery or failure updates the notification and appends the
    /// status event. The status event never enters the outbox: it goes to clients through
    /// the fan-out, not back through Kafka.
    pub async fn apply_status_once(
        &self,
        source_event_id: Uuid,
        notification_id: Uuid,
        traceparent: Option<&str>,
        decide: impl FnOnce(Option<&Notification>) -> StatusDecision,
    ) -> Result<StatusOutcome, DbError> {
        let mut tx = self.pool().begin().await?;
        let outcome = apply_in(
            &mut tx,
            source_event_id,
            notification_id,
            traceparent,
            decide,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// [`Db::apply_status_once`] for several source events in one transaction (one flush to
    /// disk for all), in order. Each item is (source event id, notification id, traceparent).
    pub async fn apply_statuses_once(
        &self,
        items: &[(Uuid, Uuid, Option<&str>)],
        decide: impl Fn(Option<&Notification>) -> StatusDecision,
    ) -> Result<Vec<StatusOutcome>, DbError> {
        let mut tx = self.pool().begin().await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for (source_event_id, notification_id, traceparent) in items {
            outcomes.push(
                apply_in(
                    &mut tx,
                    *source_event_id,
                    *notification_id,
                    *traceparent,
                    &decide,
                )
                .await?,
            );
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// The body of [`Db::apply_status_once`], inside the caller's transaction. Writes nothing
/// but the processed record when there is nothing to change, so it never needs a rollback.
async fn apply_in(
    tx: &mut sqlx::AnyConnection,
    source_event_id: Uuid,
    notification_id: Uuid,
    traceparent: Option<&str>,
    decide: impl FnOnce(Option<&Notification>) -> StatusDecision,
) -> Result<StatusOutcome, DbError> {
    let now = to_micros(Utc::now());
    // First, so a concurrent processor of the same event waits on this row and then finds it
    // taken.
    let claimed = sqlx::query(
        "INSERT INTO processed_events (event_id, processed_at) VALUES ($1, $2) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(source_event_id.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(StatusOutcome::AlreadyProcessed);
    }

    let row: Option<NotificationRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.id = $1"
    )))
    .bind(notification_id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let notification = row.map(Notification::try_from).transpose()?;
    let (status, kind, reason) = match decide(notification.as_ref()) {
        StatusDecision::Deliver => (Status::Delivered, EventType::Delivered, None),
        StatusDecision::Fail { reason } => (Status::Failed, EventType::Failed, Some(reason)),
        StatusDecision::Skip { reason } => return Ok(StatusOutcome::Skipped { reason }),
    };
    let Some(mut notification) = notification else {
        return Ok(StatusOutcome::Skipped {
            reason: format!("notification {notification_id} does not exist"),
        });
    };

    // Only a pending notification moves: another event may have settled it meanwhile (no row
    // lock, so this works on SQLite too).
    let updated = sqlx::query(
        "UPDATE notifications SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(notification_id.to_string())
    .bind(Status::Pending.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(StatusOutcome::Skipped {
            reason: format!("notification {notification_id} is no longer pending"),
        });
    }

    let event_id = Uuid::now_v7();
    let payload = serde_json::json!({
        "reason": reason,
        "sourceEventId": source_event_id,
    })
    .to_string();
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO events \
         (id, notification_id, type, occurred_at, payload, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING sequence",
    )
    .bind(event_id.to_string())
    .bind(notification_id.to_string())
    .bind(kind.as_str())
    .bind(now)
    .bind(payload)
    .bind(traceparent)
    .fetch_one(&mut *tx)
    .await?;

    let stored_time = from_micros(now)?;
    notification.status = status;
    notification.updated_at = stored_time;
    Ok(StatusOutcome::Changed(Event {
        id: event_id,
        sequence,
        kind,
        notification_id,
        occurred_at: stored_time,
        notification,
    }))
}
