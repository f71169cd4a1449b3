//! Queries of the cleanup and report jobs. Each works on one bounded batch; the loops live in
//! `crate::jobs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::{Db, DbError, to_micros};

/// Counts of rows a cleanup would delete (or did).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupCounts {
    pub notifications: u64,
    pub events: u64,
    pub processed_events: u64,
    pub idempotency_keys: u64,
}

/// One notification as the report job reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportSource {
    pub sequence: i64,
    pub created_at: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
}

/// One stored report row: notifications created in `hour` (start, microseconds) with this
/// type and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportCell {
    pub hour: i64,
    pub kind: String,
    pub status: String,
}

/// Tables whose rows expire by age alone, without touching any other table.
#[derive(Debug, Clone, Copy)]
enum Expiring {
    ProcessedEvents,
    IdempotencyKeys,
}

impl Expiring {
    /// The table, its key column and the column of the time it expires by.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::ProcessedEvents => ("processed_events", "event_id", "processed_at"),
            Self::IdempotencyKeys => ("idempotency_keys", "key", "created_at"),
        }
    }
}

/// `$first, $first+1, ...` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// What a cleanup with these cutoffs would delete.
    pub async fn count_cleanup(
        &self,
        notifications_before: DateTime<Utc>,
        idempotency_keys_before: DateTime<Utc>,
    ) -> Result<CleanupCounts, DbError> {
        let cutoff = to_micros(notifications_before);
        let (notifications, events, processed, keys): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM notifications WHERE created_at < $1), \
               (SELECT COUNT(*) FROM events e JOIN notifications n ON n.id = e.notification_id \
                  WHERE n.created_at < $1), \
               (SELECT COUNT(*) FROM processed_events WHERE processed_at < $1), \
               (SELECT COUNT(*) FROM idempotency_keys WHERE created_at < $2)",
        )
        .bind(cutoff)
        .bind(to_micros(idempotency_keys_before))
        .fetch_one(self.pool())
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(CleanupCounts {
            notifications: count(notifications),
            events: count(events),
            processed_events: count(processed),
            idempotency_keys: count(keys),
        })
    }

    /// Deletes up to `limit` notifications created before the cutoff with a sequence above
    /// `after` (keyset), and their events, in one transaction. Returns the counts and the
    /// last sequence deleted (`None` when nothing was left).
    pub async fn delete_old_notifications(
        &self,
        before: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<(CleanupCounts, Option<i64>), DbError> {
        let mut tx = self.pool().begin().await?;
        let batch: Vec<(i64, String)> = sqlx::query_as(
            "SELECT sequence, id FROM notifications WHERE created_at < $1 AND sequence > $2 \
             ORDER BY sequence LIMIT $3",
        )
        .bind(to_micros(before))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(last, _)) = batch.last() else {
            tx.rollback().await?;
            return Ok((CleanupCounts::default(), None));
        };
        let list = placeholders(1, batch.len());
        // An event never published by now is past retention: it leaves the outbox too.
        let mut outbox = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE sequence IN \
             (SELECT sequence FROM events WHERE notification_id IN ({list}))"
        )));
        let mut events = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM events WHERE notification_id IN ({list})"
        )));
        let mut notifications = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM notifications WHERE id IN ({list})"
        )));
        for (_, id) in &batch {
            outbox = outbox.bind(id.clone());
            events = events.bind(id.clone());
            notifications = notifications.bind(id.clone());
        }
        outbox.execute(&mut *tx).await?;
        let events = events.execute(&mut *tx).await?.rows_affected();
        let notifications = notifications.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok((
            CleanupCounts {
                notifications,
                events,
                ..CleanupCounts::default()
            },
            Some(last),
        ))
    }

    /// Deletes up to `limit` processed-event records older than `before`; returns how many.
    pub async fn delete_old_processed_events(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, DbError> {
        self.delete_batch_before(Expiring::ProcessedEvents, before, limit)
            .await
    }

    /// Deletes up to `limit` Idempotency-Keys created before `before`; returns how many.
    pub async fn delete_old_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, DbError> {
        self.delete_batch_before(Expiring::IdempotencyKeys, before, limit)
            .await
    }

    /// Deletes up to `limit` rows of `table` stamped before `before`; returns how many.
    async fn delete_batch_before(
        &self,
        table: Expiring,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, DbError> {
        let (name, key, time) = table.columns();
        // The names are constants of ours, so formatting them into the statement is safe.
        let deleted = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {name} WHERE {key} IN \
             (SELECT {key} FROM {name} WHERE {time} < $1 LIMIT $2)"
        )))
        .bind(to_micros(before))
        .bind(i64::from(limit))
        .execute(self.pool())
        .await?;
        Ok(deleted.rows_affected())
    }

    /// How many notifications were created in `[from, to)`.
    pub async fn count_created_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Up to `limit` notifications created in `[from, to)` with a sequence above `after`.
    pub async fn report_sources(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ReportSource>, DbError> {
        Ok(sqlx::query_as(
            "SELECT sequence, created_at, type, status FROM notifications \
             WHERE created_at >= $1 AND created_at < $2 AND sequence > $3 \
             ORDER BY sequence LIMIT $4",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Replaces the stored report rows of the hours in `[from, to)` with `cells`.
    pub async fn replace_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cells: &BTreeMap<ReportCell, u64>,
    ) -> Result<(), DbError> {
        let now = to_micros(Utc::now());
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM reports WHERE hour >= $1 AND hour < $2")
            .bind(to_micros(from))
            .bind(to_micros(to))
            .execute(&mut *tx)
            .await?;
        for (cell, count) in cells {
            sqlx::query(
                "INSERT INTO reports (hour, type, status, count, generated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(cell.hour)
            .bind(&cell.kind)
            .bind(&cell.status)
            .bind(i64::try_from(*count).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored report rows of the hours in `[from, to)`, with their counts.
    pub async fn report_rows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(ReportCell, u64)>, DbError> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT hour, type, status, count FROM reports WHERE hour >= $1 AND hour < $2 \
             ORDER BY hour, type, status",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, kind, status, count)| {
                let count = u64::try_from(count).unwrap_or(0);
                (ReportCell { hour, kind, status }, count)
            })
            .collect())
    }
}
