//! The processing step for a `notification.created` event, independent of its transport: the
//! processor calls it for each Kafka record, the api-server's embedded mode for each event its
//! outbox relay hands over in process.
//!
//! Effects are idempotent by event id: processing the same event again changes nothing and
//! returns [`Outcome::Duplicate`], so the caller must broadcast only [`Outcome::broadcast`].

use crate::db::{Db, DbError, StatusDecision, StatusOutcome};
use crate::event::{Event, EventType};
use crate::notification::{MAX_USER_ID_CHARS, Notification};

/// What processing an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The notification was marked delivered or failed; broadcast this status event.
    Changed(Event),
    /// The event had been processed before; nothing changed and nothing must be broadcast.
    Duplicate,
    /// Recorded as processed without a change, e.g. the notification no longer exists.
    Skipped { reason: String },
    /// Not an event the processor acts on (only `notification.created` is).
    Ignored,
}

impl Outcome {
    /// The event to send to connected clients, if any.
    pub fn broadcast(&self) -> Option<&Event> {
        match self {
            Self::Changed(event) => Some(event),
            _ => None,
        }
    }

    /// A short name for logs and metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            // The status it moved to: delivered or failed.
            Self::Changed(event) => event.notification.status.as_str(),
            Self::Duplicate => "duplicate",
            Self::Skipped { .. } => "skipped",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The record is not a valid event; retrying cannot help.
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ProcessError {
    /// True when the database could not be reached: retry later, the event is fine.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Db(error) if error.is_unavailable())
    }
}

/// Decodes and validates a record's value (JSON of [`Event`]).
pub fn decode(payload: &[u8]) -> Result<Event, ProcessError> {
    let event: Event = serde_json::from_slice(payload)
        .map_err(|error| ProcessError::Invalid(format!("undecodable event JSON: {error}")))?;
    validate(&event)?;
    Ok(event)
}

/// Checks what the schema cannot express.
pub fn validate(event: &Event) -> Result<(), ProcessError> {
    if event.notification_id != event.notification.id {
        return Err(ProcessError::Invalid(format!(
            "event {} is about notification {} but carries notification {}",
            event.id, event.notification_id, event.notification.id
        )));
    }
    Ok(())
}

/// Applies `event`: for `notification.created`, resolves the target and marks the
/// notification delivered (a broadcast, or a valid user id) or failed (an invalid user id),
/// appending the status event in the same transaction that records `event.id` as processed.
/// `traceparent` is stored with the status event so its trace continues the producer's.
pub async fn process_event(
    db: &Db,
    event: &Event,
    traceparent: Option<&str>,
) -> Result<Outcome, ProcessError> {
    validate(event)?;
    if event.kind != EventType::Created {
        return Ok(Outcome::Ignored);
    }
    let outcome = db
        .apply_status_once(event.id, event.notification_id, traceparent, decide)
        .await?;
    Ok(match outcome {
        StatusOutcome::Changed(status_event) => Outcome::Changed(status_event),
        StatusOutcome::AlreadyProcessed => Outcome::Duplicate,
        StatusOutcome::Skipped { reason } => Outcome::Skipped { reason },
    })
}

/// [`process_event`] for several events in one transaction (one flush to disk for all), in
/// order. The outer error is the database's (the whole batch is to be retried); the inner
/// results are each event's own: invalid, or what processing did.
pub async fn process_events(
    db: &Db,
    events: &[(&Event, Option<&str>)],
) -> Result<Vec<Result<Outcome, ProcessError>>, ProcessError> {
    let mut results: Vec<Option<Result<Outcome, ProcessError>>> = Vec::with_capacity(events.len());
    let mut to_apply = Vec::new();
    for (event, traceparent) in events {
        match validate(event) {
            Err(error) => results.push(Some(Err(error))),
            Ok(()) if event.kind != EventType::Created => results.push(Some(Ok(Outcome::Ignored))),
            Ok(()) => {
                to_apply.push((event.id, event.notification_id, *traceparent));
                results.push(None);
            }
        }
    }
    let mut applied = db.apply_statuses_once(&to_apply, decide).await?.into_iter();
    Ok(results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                Ok(match applied.next() {
                    Some(StatusOutcome::Changed(status_event)) => Outcome::Changed(status_event),
                    Some(StatusOutcome::AlreadyProcessed) => Outcome::Duplicate,
                    Some(StatusOutcome::Skipped { reason }) => Outcome::Skipped { reason },
                    None => Outcome::Skipped {
                        reason: "the database returned fewer outcomes than events".into(),
                    },
                })
            })
        })
        .collect())
}

/// The stored notification, not the event's copy, is the truth: it may have been settled or
/// deleted (by the cleanup job) since the event was produced.
fn decide(current: Option<&Notification>) -> StatusDecision {
    let Some(notification) = current else {
        return StatusDecision::Skip {
            reason: "the notification no longer exists".into(),
        };
    };
    match &notification.user_id {
        None => StatusDecision::Deliver,
        Some(user) => match invalid_target(user) {
            None => StatusDecision::Deliver,
            Some(reason) => StatusDecision::Fail { reason },
        },
    }
}

/// Why a user id cannot be delivered to, if it cannot. The api-server validates user ids, but
/// events may come from elsewhere (other producers, `dlq replay`).
fn invalid_target(user: &str) -> Option<String> {
    let chars = user.chars().count();
    if user.trim().is_empty() || chars > MAX_USER_ID_CHARS {
        return Some(format!(
            "target userId must have 1 to {MAX_USER_ID_CHARS} non-blank characters"
        ));
    }
    if user.chars().any(char::is_control) {
        return Some("target userId contains control characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_resolved_from_the_user_id() {
        assert_eq!(invalid_target("alice"), None);
        assert!(invalid_target("  ").is_some());
        assert!(invalid_target("a\u{0}b").is_some());
        assert!(invalid_target(&"x".repeat(MAX_USER_ID_CHARS + 1)).is_some());
        assert!(matches!(decide(None), StatusDecision::Skip { .. }));
    }

    #[test]
    fn undecodable_and_inconsistent_records_are_invalid() {
        assert!(matches!(decode(b"{"), Err(ProcessError::Invalid(_))));
        assert!(matches!(
            decode(br#"{"id":"nope"}"#),
            Err(ProcessError::Invalid(_))
        ));
    }
}
