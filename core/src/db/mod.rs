//! The database: PostgreSQL in production, an embedded SQLite file when no server is
//! configured. One set of queries serves both through sqlx's `Any` driver; only some of the
//! migrations differ (see [`migrations`]).

mod api_keys;
mod backend;
mod events;
mod job_runs;
mod jobs;
mod migrations;
mod notifications;
mod rows;
mod status;
mod users;

pub use api_keys::StoredApiKey;
pub use backend::Backend;
pub use events::{EventsPage, OutboxBatch, Pending, ReplayWindow};
pub use job_runs::{JobRun, JobStatus};
pub use jobs::{CleanupCounts, ReportCell, ReportSource};
pub use notifications::{Created, ListQuery, NewEntry, RequestFingerprint};
pub use status::{StatusDecision, StatusOutcome};
pub use users::{UserCounts, UserSummary};

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("running database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("Idempotency-Key {0:?} was already used for a different request")]
    IdempotencyKeyReused(String),
    /// One failure reported to every caller that shared the query.
    #[error(transparent)]
    Shared(std::sync::Arc<DbError>),
}

impl DbError {
    /// True when the database could not be reached (as opposed to a bad query or row), so a
    /// caller should retry later rather than give up on the work.
    pub fn is_unavailable(&self) -> bool {
        if let Self::Shared(error) = self {
            return error.is_unavailable();
        }
        matches!(
            self,
            Self::Sqlx(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        ) || matches!(self, Self::Sqlx(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
    }
}

/// A pool of connections to the platform's database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// PostgreSQL: a small pool whose commits do not wait for the disk, for bookkeeping that
    /// a crash may lose without harm (removing published events from the outbox).
    relaxed: Option<AnyPool>,
    backend: Backend,
}

impl Db {
    /// Connects to `url`: `postgres://...`, or `sqlite://PATH` (created when missing).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DbError::UnsupportedUrl(crate::config::redacted(url)));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Readers do not block the writer; concurrent writers wait their turn.
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let relaxed = (backend == Backend::Postgres).then(|| {
            AnyPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(5))
                .test_before_acquire(false)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        connection.execute("SET synchronous_commit = off").await?;
                        Ok(())
                    })
                })
                .connect_lazy(&url)
        });
        let relaxed = relaxed.transpose()?;
        Ok(Self {
            pool,
            relaxed,
            backend,
        })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for writes a crash may lose without harm; the main pool on SQLite.
    pub(crate) fn relaxed_pool(&self) -> &AnyPool {
        self.relaxed.as_ref().unwrap_or(&self.pool)
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Microseconds since the Unix epoch: how the schema stores times.
pub(crate) fn to_micros(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn from_micros(micros: i64) -> Result<chrono::DateTime<chrono::Utc>, DbError> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| DbError::Corrupt(format!("time {micros} is out of range")))
}
