//! The batch jobs (cleanup, report, user-sync) and their in-process schedule. The processor
//! runs them once per CronJob pod (`processor job ...`) or on a schedule (`processor
//! schedule`); the api-server's embedded mode runs the same schedule in process.
//!
//! Every job works in keyset-paginated batches of `batch_size` rows (bounded memory), is
//! idempotent (a re-run, also after a crash, converges to the same result) and records its
//! run in `job_runs`.

pub mod cleanup;
mod options;
mod progress;
pub mod report;
pub mod schedule;
pub mod user_sync;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::Instrument;
use uuid::Uuid;

use crate::db::{Db, JobStatus};

pub use cleanup::{CleanupParams, CleanupResult, RetentionArgs};
pub use options::{JobError, JobOptions, MAX_BATCH_SIZE};
pub use progress::{LogProgress, Progress};
pub use report::{Report, ReportParams, ReportPeriod};
pub use user_sync::UserSyncResult;

/// A job and what it was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Cleanup(CleanupParams),
    Report(ReportParams),
    UserSync,
}

impl Job {
    /// The name in `job_runs.job` and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cleanup(_) => "cleanup",
            Self::Report(_) => "report",
            Self::UserSync => "user-sync",
        }
    }
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JobOutput {
    Cleanup(CleanupResult),
    Report(Report),
    UserSync(UserSyncResult),
}

impl JobOutput {
    /// The counters stored in `job_runs.counts`.
    pub fn counts(&self) -> serde_json::Value {
        match self {
            Self::Cleanup(result) => serde_json::to_value(result),
            Self::Report(report) => serde_json::to_value(report.counts()),
            Self::UserSync(result) => serde_json::to_value(result),
        }
        .unwrap_or_default()
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub run_id: Uuid,
    pub output: JobOutput,
}

/// Runs `job` once, recording the run in `job_runs` (status, counts, error).
pub async fn run_job(
    db: &Db,
    job: &Job,
    options: JobOptions,
    progress: &dyn Progress,
) -> Result<JobResult, JobError> {
    if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
        return Err(JobError::Invalid(format!(
            "batch size must be 1 to {MAX_BATCH_SIZE}, not {}",
            options.batch_size
        )));
    }
    let now = Utc::now();
    let parameters = parameters(job, options, now)?;
    let run_id = db
        .start_job_run(job.name(), options.dry_run, &parameters)
        .await?;
    let span = tracing::info_span!("job", job = job.name(), %run_id, dry_run = options.dry_run);
    let result = execute(db, job, options, now, progress)
        .instrument(span.clone())
        .await;
    record(db, run_id, result).instrument(span).await
}

async fn execute(
    db: &Db,
    job: &Job,
    options: JobOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<JobOutput, JobError> {
    Ok(match job {
        Job::Cleanup(params) => {
            JobOutput::Cleanup(cleanup::run(db, params, options, now, progress).await?)
        }
        Job::Report(params) => {
            JobOutput::Report(report::run(db, params, options, now, progress).await?)
        }
        Job::UserSync => JobOutput::UserSync(user_sync::run(db, options, now, progress).await?),
    })
}

/// Stores how the run ended in its `job_runs` row and logs it.
async fn record(
    db: &Db,
    run_id: Uuid,
    result: Result<JobOutput, JobError>,
) -> Result<JobResult, JobError> {
    match result {
        Ok(output) => {
            let counts = output.counts();
            db.finish_job_run(run_id, JobStatus::Succeeded, &counts, None)
                .await?;
            tracing::info!(counts = %counts, "job succeeded");
            Ok(JobResult { run_id, output })
        }
        Err(error) => {
            let message = error.to_string();
            // Best effort: the database may be what failed.
            let empty = serde_json::json!({});
            if let Err(record) = db
                .finish_job_run(run_id, JobStatus::Failed, &empty, Some(&message))
                .await
            {
                tracing::warn!(error = %record, "could not record the failed run");
            }
            tracing::error!(error = %message, "job failed");
            Err(error)
        }
    }
}

fn parameters(
    job: &Job,
    options: JobOptions,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, JobError> {
    let mut parameters = serde_json::json!({ "batchSize": options.batch_size });
    match job {
        Job::Cleanup(params) => {
            parameters["retentionSeconds"] = params.retention.as_secs().into();
        }
        Job::Report(params) => {
            let (from, to) = params.period.resolve(now)?;
            parameters["from"] = from.to_rfc3339().into();
            parameters["to"] = to.to_rfc3339().into();
        }
        Job::UserSync => {}
    }
    Ok(parameters)
}
