//! `cleanup`: deletes notifications (and their events) older than the retention period, the
//! processed-event records as old, and Idempotency-Keys older than 24 hours.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::options::{JobError, JobOptions};
use super::progress::Progress;
use crate::db::{CleanupCounts, Db};

/// How long an Idempotency-Key is kept: a retried request within this time gets the first
/// response.
pub const IDEMPOTENCY_KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// `--retention-days`, for the cleanup job run once or on a schedule.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Keep notifications this many days (at least 1: Idempotency-Keys live 24 hours).
    #[arg(long, env = "CLEANUP_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_days: u32,
}

impl RetentionArgs {
    pub fn params(&self) -> CleanupParams {
        CleanupParams {
            retention: Duration::from_secs(u64::from(self.retention_days) * 86_400),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupParams {
    /// Notifications created longer ago than this are deleted. At least
    /// [`IDEMPOTENCY_KEY_RETENTION`], so a kept key always finds its notification.
    pub retention: Duration,
}

/// What was deleted, or with `--dry-run` what would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupResult {
    pub dry_run: bool,
    #[serde(flatten)]
    pub counts: CleanupCounts,
}

pub(super) async fn run(
    db: &Db,
    params: &CleanupParams,
    options: JobOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<CleanupResult, JobError> {
    if params.retention < IDEMPOTENCY_KEY_RETENTION {
        return Err(JobError::Invalid(format!(
            "retention must be at least {} hours: Idempotency-Keys are kept that long and \
             must still find their notification",
            IDEMPOTENCY_KEY_RETENTION.as_secs() / 3600
        )));
    }
    let cutoff = before(now, params.retention)?;
    let keys_cutoff = before(now, IDEMPOTENCY_KEY_RETENTION)?;
    let expected = db.count_cleanup(cutoff, keys_cutoff).await?;
    tracing::info!(cutoff = %cutoff, notifications = expected.notifications, "cleanup starts");
    if options.dry_run {
        return Ok(CleanupResult {
            dry_run: true,
            counts: expected,
        });
    }

    let mut deleted = CleanupCounts::default();
    let mut after = i64::MIN;
    loop {
        let (batch, last) = db
            .delete_old_notifications(cutoff, after, options.batch_size)
            .await?;
        let Some(last) = last else { break };
        after = last;
        deleted.notifications += batch.notifications;
        deleted.events += batch.events;
        progress.update(
            "cleanup",
            deleted.notifications,
            Some(expected.notifications),
        );
    }
    loop {
        let count = db
            .delete_old_processed_events(cutoff, options.batch_size)
            .await?;
        deleted.processed_events += count;
        if count < u64::from(options.batch_size) {
            break;
        }
    }
    loop {
        let count = db
            .delete_old_idempotency_keys(keys_cutoff, options.batch_size)
            .await?;
        deleted.idempotency_keys += count;
        if count < u64::from(options.batch_size) {
            break;
        }
    }
    Ok(CleanupResult {
        dry_run: false,
        counts: deleted,
    })
}

fn before(now: DateTime<Utc>, age: Duration) -> Result<DateTime<Utc>, JobError> {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| JobError::Invalid(format!("retention {age:?} is out of range")))
}
