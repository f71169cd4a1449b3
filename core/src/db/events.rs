//! Reading the event log: replay for reconnecting clients and the outbox for the relay.

use sqlx::{Any, AssertSqlSafe, Transaction};

use super::rows::{EVENT_COLUMNS, EventRow};
use super::{Backend, Db, DbError, to_micros};
use crate::event::Event;

/// The range of sequences the log still holds (older events are removed by the cleanup job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The oldest retained sequence; `None` when the log is empty.
    pub oldest: Option<i64>,
    pub latest: Option<i64>,
}

impl ReplayWindow {
    /// True when a client that has seen everything up to `after` has missed events that are
    /// no longer kept, so replay cannot be complete.
    pub fn has_gap_after(&self, after: i64) -> bool {
        after > 0 && self.oldest.is_some_and(|oldest| after + 1 < oldest)
    }
}

/// Events after a sequence, oldest first.
#[derive(Debug, Clone)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// True when more events follow the last one returned.
    pub more: bool,
}

impl Db {
    pub async fn replay_window(&self) -> Result<ReplayWindow, DbError> {
        let (oldest, latest): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(sequence), MAX(sequence) FROM events")
                .fetch_one(self.pool())
                .await?;
        Ok(ReplayWindow { oldest, latest })
    }

    /// Events with a sequence above `after`, at most `limit`; with `user_id`, only those a
    /// stream of that user carries (addressed to the user, or broadcasts).
    pub async fn events_after(
        &self,
        after: i64,
        user_id: Option<&str>,
        limit: u32,
    ) -> Result<EventsPage, DbError> {
        let user_filter = if user_id.is_some() {
            "AND (n.user_id IS NULL OR n.user_id = $3)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN notifications n ON n.id = e.notification_id \
             WHERE e.sequence > $1 {user_filter} ORDER BY e.sequence LIMIT $2"
        );
        let mut select = sqlx::query_as::<_, EventRow>(AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit) + 1);
        if let Some(user) = user_id {
            select = select.bind(user.to_owned());
        }
        let rows = select.fetch_all(self.pool()).await?;
        let more = rows.len() > limit as usize;
        let events = rows
            .into_iter()
            .take(limit as usize)
            .map(Event::try_from)
            .collect::<Result<_, _>>()?;
        Ok(EventsPage { events, more })
    }
}

/// Events claimed by the outbox relay: hold the transaction while publishing, then call
/// [`Db::mark_published`] with it. On PostgreSQL their outbox rows stay locked until then, so
/// several replicas' relays never publish the same event at once.
pub struct OutboxBatch {
    pub transaction: Transaction<'static, Any>,
    pub events: Vec<Pending>,
}

/// An event waiting in the outbox, with the `traceparent` of the request that created it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub event: Event,
    pub traceparent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    traceparent: Option<String>,
    #[sqlx(flatten)]
    event: EventRow,
}

impl Db {
    /// Claims up to `limit` events that have waited in the outbox since before
    /// `waiting_since`, oldest first: what no relay took over in memory (a crash, an outage,
    /// another replica's leftovers).
    pub async fn claim_unpublished(
        &self,
        limit: u32,
        waiting_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<OutboxBatch, DbError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF o SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut transaction = self.pool().begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT e.traceparent, {EVENT_COLUMNS} FROM outbox o \
             JOIN events e ON e.sequence = o.sequence \
             JOIN notifications n ON n.id = e.notification_id \
             WHERE e.occurred_at < $2 ORDER BY o.sequence LIMIT $1 {lock}"
        )))
        .bind(i64::from(limit))
        .bind(to_micros(waiting_since))
        .fetch_all(&mut *transaction)
        .await?;
        let events = rows
            .into_iter()
            .map(|row| {
                Ok(Pending {
                    event: Event::try_from(row.event)?,
                    traceparent: row.traceparent,
                })
            })
            .collect::<Result<_, DbError>>()?;
        Ok(OutboxBatch {
            transaction,
            events,
        })
    }

    /// Removes a claimed batch from the outbox and releases it.
    pub async fn mark_published(&self, batch: OutboxBatch) -> Result<(), DbError> {
        let OutboxBatch {
            mut transaction,
            events,
        } = batch;
        if self.backend() == Backend::Postgres {
            // Losing this commit in a crash only publishes the batch again, which consumers
            // tolerate; not waiting for the disk spares every sweep a flush.
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *transaction)
                .await?;
        }
        remove_from_outbox(&mut transaction, events.iter().map(|p| p.event.sequence)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Removes events from the outbox without a claim, in one statement that does not wait
    /// for the disk (a lost removal only publishes the events again): for events the relay
    /// was handed in memory and has published.
    pub async fn mark_events_published(&self, sequences: &[i64]) -> Result<(), DbError> {
        let mut connection = self.relaxed_pool().acquire().await?;
        remove_from_outbox(&mut connection, sequences.iter().copied()).await
    }

    /// Events not yet published, for the backlog metric.
    pub async fn unpublished_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.pool())
            .await?)
    }
}

/// Sequences are integers we hold ourselves, so listing them inline is safe.
fn sequence_list(sequences: impl Iterator<Item = i64>) -> String {
    sequences
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn remove_from_outbox(
    connection: &mut sqlx::AnyConnection,
    sequences: impl Iterator<Item = i64>,
) -> Result<(), DbError> {
    let list = sequence_list(sequences);
    if list.is_empty() {
        return Ok(());
    }
    // An inline list makes every statement new: do not fill the prepared-statement cache.
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM outbox WHERE sequence IN ({list})"
    )))
    .persistent(false)
    .execute(connection)
    .await?;
    Ok(())
}
