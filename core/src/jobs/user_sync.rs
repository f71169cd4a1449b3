//! `user-sync`: keeps the `users` table in step with the notifications.
//!
//! For every user id that notifications are addressed to (broadcasts belong to nobody):
//! - `notification_count`: notifications addressed to the user;
//! - `unread_count`: those with status `delivered` created after the user's `last_seen_at`
//!   (all delivered ones while `last_seen_at` is unset); pending and failed notifications
//!   never reached the user, so they are not unread;
//! - `last_notification_at`: creation time of the newest one;
//! - `last_seen_at`: written only by the api-server ([`Db::mark_user_seen`]), kept as is.
//!
//! Users are visited in batches ordered by id (keyset) and written with absolute values, so
//! a re-run (also after a crash half-way) converges to the same table. A user whose
//! notifications have all been deleted keeps its row with zero counts and its `last_seen_at`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::options::{JobError, JobOptions};
use super::progress::Progress;
use crate::db::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSyncResult {
    pub dry_run: bool,
    /// Users with notifications, written (or with `--dry-run` computed).
    pub users_synced: u64,
    /// Users without notifications any more whose counters were zeroed (0 with `--dry-run`).
    pub users_cleared: u64,
}

pub(super) async fn run(
    db: &Db,
    options: JobOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<UserSyncResult, JobError> {
    let mut synced = 0;
    let mut after = String::new();
    loop {
        let batch = db.user_counts(&after, options.batch_size).await?;
        let Some(last) = batch.last() else { break };
        after = last.user_id.clone();
        if !options.dry_run {
            db.upsert_user_counts(&batch, now).await?;
        }
        synced += batch.len() as u64;
        progress.update("user-sync", synced, None);
    }
    let cleared = if options.dry_run {
        0
    } else {
        db.clear_unsynced_users(now).await?
    };
    Ok(UserSyncResult {
        dry_run: options.dry_run,
        users_synced: synced,
        users_cleared: cleared,
    })
}
