//! The `users` table: counters written by the user-sync job, `last_seen_at` by the api-server.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, DbError, from_micros, to_micros};
use crate::notification::Status;

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

impl Db {
    /// Counters of up to `limit` users whose id sorts after `after` (keyset), computed from
    /// the notifications addressed to them and their stored `last_seen_at`.
    pub async fn user_counts(&self, after: &str, limit: u32) -> Result<Vec<UserCounts>, DbError> {
        Ok(sqlx::query_as(
            "SELECT n.user_id AS user_id, COUNT(*) AS notification_count, \
               SUM(CASE WHEN n.status = $3 \
                 AND n.created_at > COALESCE(u.last_seen_at, -1) THEN 1 ELSE 0 END) \
                 AS unread_count, \
               MAX(n.created_at) AS last_notification_at \
             FROM notifications n LEFT JOIN users u ON u.user_id = n.user_id \
             WHERE n.user_id IS NOT NULL AND n.user_id > $1 \
             GROUP BY n.user_id ORDER BY n.user_id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .bind(Status::Delivered.as_str())
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
