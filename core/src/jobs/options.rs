//! What every job takes and how it can fail: options, the batch-size bound, [`JobError`].

use crate::db::DbError;

/// Largest batch: bounds memory and the number of bind parameters (SQLite allows 32,766).
pub const MAX_BATCH_SIZE: u32 = 10_000;

/// Options every job takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// Count what would change, write nothing (except the `job_runs` record).
    pub dry_run: bool,
    /// Rows per batch, 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: u32,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            batch_size: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("invalid job options: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}
