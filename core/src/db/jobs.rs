//! Queries of the batch jobs: their run records, cleanup, reports and the users table.
//! Each works on one bounded batch; the loops live in `crate::jobs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{Db, DbError, from_micros, to_micros};

/// How a job run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Started and not finished; a run whose process died stays here.
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// One row of `job_runs`, as `GET /api/jobs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    pub id: Uuid,
    /// `cleanup`, `report` or `user-sync`.
    pub job: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub parameters: serde_json::Value,
    pub counts: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct JobRunRow {
    id: String,
    job: String,
    status: String,
    dry_run: i64,
    parameters: String,
    counts: String,
    error: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<JobRunRow> for JobRun {
    type Error = DbError;

    fn try_from(row: JobRunRow) -> Result<Self, DbError> {
        let corrupt = |what: &str| DbError::Corrupt(format!("job run {}: {what}", row.id));
        Ok(JobRun {
            id: Uuid::parse_str(&row.id).map_err(|_| corrupt("id"))?,
            status: JobStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            dry_run: row.dry_run != 0,
            parameters: serde_json::from_str(&row.parameters).map_err(|_| corrupt("parameters"))?,
            counts: serde_json::from_str(&row.counts).map_err(|_| corrupt("counts"))?,
            started_at: from_micros(row.started_at)?,
            finished_at: row.finished_at.map(from_micros).transpose()?,
            job: row.job,
            error: row.error,
        })
    }
}

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

/// A user's counters computed from the notifications (see `crate::jobs::user_sync`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserCounts {
    pub user_id: String,
    pub notification_count: i64,
    pub unread_count: i64,
    pub last_notification_at: Option<i64>,
}

/// A row of the `users` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub user_id: String,
    pub notification_count: i64,
    pub unread_count: i64,
    pub last_notification_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// `$first, $first+1, ...` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// Records the start of a run; returns its id.
    pub async fn start_job_run(
        &self,
        job: &str,
        dry_run: bool,
        parameters: &serde_json::Value,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO job_runs (id, job, status, dry_run, parameters, counts, started_at) \
             VALUES ($1, $2, $3, $4, $5, '{}', $6)",
        )
        .bind(id.to_string())
        .bind(job)
        .bind(JobStatus::Running.as_str())
        .bind(i64::from(dry_run))
        .bind(parameters.to_string())
        .bind(to_micros(Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn finish_job_run(
        &self,
        id: Uuid,
        status: JobStatus,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE job_runs SET status = $1, counts = $2, error = $3, finished_at = $4 \
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(counts.to_string())
        .bind(error)
        .bind(to_micros(Utc::now()))
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Runs newest first, at most `limit`, optionally of one job and older than `before`
    /// (a run id: ids are UUIDv7, so they order by start time).
    pub async fn job_runs(
        &self,
        limit: u32,
        job: Option<&str>,
        before: Option<Uuid>,
    ) -> Result<Vec<JobRun>, DbError> {
        let mut conditions = Vec::new();
        if job.is_some() {
            conditions.push(format!("job = ${}", conditions.len() + 1));
        }
        if before.is_some() {
            conditions.push(format!("id < ${}", conditions.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, job, status, dry_run, parameters, counts, error, started_at, finished_at \
             FROM job_runs {filter} ORDER BY id DESC LIMIT ${}",
            conditions.len() + 1
        );
        let mut select = sqlx::query_as::<_, JobRunRow>(AssertSqlSafe(sql));
        if let Some(job) = job {
            select = select.bind(job.to_owned());
        }
        if let Some(before) = before {
            select = select.bind(before.to_string());
        }
        let rows = select.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(JobRun::try_from).collect()
    }

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
        let deleted = sqlx::query(
            "DELETE FROM processed_events WHERE event_id IN \
             (SELECT event_id FROM processed_events WHERE processed_at < $1 LIMIT $2)",
        )
        .bind(to_micros(before))
        .bind(i64::from(limit))
        .execute(self.pool())
        .await?;
        Ok(deleted.rows_affected())
    }

    /// Deletes up to `limit` Idempotency-Keys created before `before`; returns how many.
    pub async fn delete_old_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, DbError> {
        let deleted = sqlx::query(
            "DELETE FROM idempotency_keys WHERE key IN \
             (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
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

    /// Counters of up to `limit` users whose id sorts after `after` (keyset), computed from
    /// the notifications addressed to them and their stored `last_seen_at`.
    pub async fn user_counts(&self, after: &str, limit: u32) -> Result<Vec<UserCounts>, DbError> {
        Ok(sqlx::query_as(
            "SELECT n.user_id AS user_id, COUNT(*) AS notification_count, \
               SUM(CASE WHEN n.status = 'delivered' \
                 AND n.created_at > COALESCE(u.last_seen_at, -1) THEN 1 ELSE 0 END) \
                 AS unread_count, \
               MAX(n.created_at) AS last_notification_at \
             FROM notifications n LEFT JOIN users u ON u.user_id = n.user_id \
             WHERE n.user_id IS NOT NULL AND n.user_id > $1 \
             GROUP BY n.user_id ORDER BY n.user_id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Writes users' counters (absolute values, so a re-run converges), stamping `synced_at`.
    pub async fn upsert_user_counts(
        &self,
        users: &[UserCounts],
        synced_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        for user in users {
            sqlx::query(
                "INSERT INTO users (user_id, notification_count, unread_count, \
                   last_notification_at, last_seen_at, synced_at) \
                 VALUES ($1, $2, $3, $4, NULL, $5) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                   notification_count = excluded.notification_count, \
                   unread_count = excluded.unread_count, \
                   last_notification_at = excluded.last_notification_at, \
                   synced_at = excluded.synced_at",
            )
            .bind(&user.user_id)
            .bind(user.notification_count)
            .bind(user.unread_count)
            .bind(user.last_notification_at)
            .bind(to_micros(synced_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Zeroes the counters of users not synced since `synced_before` (none of their
    /// notifications is left) unless they are zero already; returns how many changed. Their
    /// `last_seen_at` is kept.
    pub async fn clear_unsynced_users(&self, synced_before: DateTime<Utc>) -> Result<u64, DbError> {
        let cleared = sqlx::query(
            "UPDATE users SET notification_count = 0, unread_count = 0, \
               last_notification_at = NULL, synced_at = $1 \
             WHERE synced_at < $1 AND (notification_count <> 0 OR unread_count <> 0 \
               OR last_notification_at IS NOT NULL)",
        )
        .bind(to_micros(synced_before))
        .execute(self.pool())
        .await?;
        Ok(cleared.rows_affected())
    }

    /// Records that `user_id` has seen everything created up to `at` (never moves back). The
    /// api-server calls this; `unread_count` follows at the next user-sync.
    pub async fn mark_user_seen(&self, user_id: &str, at: DateTime<Utc>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO users (user_id, notification_count, unread_count, \
               last_notification_at, last_seen_at, synced_at) \
             VALUES ($1, 0, 0, NULL, $2, 0) \
             ON CONFLICT (user_id) DO UPDATE SET last_seen_at = \
               CASE WHEN users.last_seen_at IS NULL OR users.last_seen_at < excluded.last_seen_at \
                 THEN excluded.last_seen_at ELSE users.last_seen_at END",
        )
        .bind(user_id)
        .bind(to_micros(at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The `users` table row of `user_id`.
    pub async fn user_summary(&self, user_id: &str) -> Result<Option<UserSummary>, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            user_id: String,
            notification_count: i64,
            unread_count: i64,
            last_notification_at: Option<i64>,
            last_seen_at: Option<i64>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT user_id, notification_count, unread_count, last_notification_at, \
               last_seen_at FROM users WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(UserSummary {
                user_id: row.user_id,
                notification_count: row.notification_count,
                unread_count: row.unread_count,
                last_notification_at: row.last_notification_at.map(from_micros).transpose()?,
                last_seen_at: row.last_seen_at.map(from_micros).transpose()?,
            })
        })
        .transpose()
    }
}
