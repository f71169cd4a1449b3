//! Runs jobs on cron schedules in process (tokio-cron-scheduler): `processor schedule`, and
//! the api-server's embedded mode. In Kubernetes the operator makes one CronJob per schedule
//! instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_cron_scheduler::{JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use super::cleanup::RetentionArgs;
use super::options::{JobOptions, MAX_BATCH_SIZE};
use super::progress::LogProgress;
use super::report::{ReportParams, ReportPeriod};
use super::{Job, run_job};
use crate::db::Db;

/// A job and when to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledJob {
    /// Cron expression with seconds, in UTC: `sec min hour day-of-month month day-of-week`,
    /// e.g. `0 0 3 * * *` (03:00 daily) or `*/10 * * * * *` (every ten seconds).
    pub cron: String,
    pub job: Job,
    pub options: JobOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {cron:?} for {job}: {error}")]
    InvalidCron {
        cron: String,
        job: &'static str,
        error: JobSchedulerError,
    },
    #[error("job scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
}

/// When each job runs: `processor schedule`, and the api-server when it processes events in
/// process (no Kafka). Cron expressions have seconds and run in UTC; `off` disables a job.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// When to run cleanup: cron with seconds, in UTC (`sec min hour day month weekday`), or
    /// `off`.
    #[arg(
        long = "schedule-cleanup",
        env = "SCHEDULE_CLEANUP",
        default_value = "0 0 3 * * *"
    )]
    pub cleanup: String,

    /// When to run report (over the last --report-hours), or `off`.
    #[arg(
        long = "schedule-report",
        env = "SCHEDULE_REPORT",
        default_value = "0 5 * * * *"
    )]
    pub report: String,

    /// When to run user-sync, or `off`.
    #[arg(
        long = "schedule-user-sync",
        env = "SCHEDULE_USER_SYNC",
        default_value = "0 */10 * * * *"
    )]
    pub user_sync: String,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Hours each scheduled report covers, the current one included.
    #[arg(long = "report-hours", env = "REPORT_HOURS", default_value_t = 24)]
    pub report_hours: u32,

    /// Rows per batch (1 to 10000).
    #[arg(long = "job-batch-size", env = "JOB_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BATCH_SIZE)))]
    pub batch_size: u32,
}

impl ScheduleArgs {
    /// The jobs that are not `off`, with their cron expressions checked.
    pub fn jobs(&self) -> Result<Vec<ScheduledJob>, ScheduleError> {
        let options = JobOptions {
            dry_run: false,
            batch_size: self.batch_size,
        };
        let mut jobs = Vec::new();
        for (cron, job) in [
            (&self.cleanup, Job::Cleanup(self.retention.params())),
            (
                &self.report,
                Job::Report(ReportParams {
                    period: ReportPeriod::LastHours(self.report_hours),
                }),
            ),
            (&self.user_sync, Job::UserSync),
        ] {
            if cron.trim().eq_ignore_ascii_case("off") {
                continue;
            }
            validate_cron(cron).map_err(|error| ScheduleError::InvalidCron {
                cron: cron.clone(),
                job: job.name(),
                error,
            })?;
            jobs.push(ScheduledJob {
                cron: cron.clone(),
                job,
                options,
            });
        }
        Ok(jobs)
    }
}

/// Checks a cron expression without scheduling anything.
pub fn validate_cron(cron: &str) -> Result<(), JobSchedulerError> {
    tokio_cron_scheduler::Job::new_async(cron, |_, _| Box::pin(async {})).map(drop)
}

/// Runs `jobs` on their schedules until `shutdown` is cancelled. A run that is still going
/// when its next time comes is not started twice (that time is skipped); runs are recorded
/// in `job_runs` like one-shot runs, and a failed run is logged and retried at its next time.
pub async fn run_schedule(
    db: Db,
    jobs: Vec<ScheduledJob>,
    shutdown: CancellationToken,
) -> Result<(), ScheduleError> {
    let mut scheduler = JobScheduler::new().await?;
    for scheduled in jobs {
        let name = scheduled.job.name();
        let cron = scheduled.cron.clone();
        let running = Arc::new(AtomicBool::new(false));
        let db = db.clone();
        let entry = tokio_cron_scheduler::Job::new_async(&cron, move |_, _| {
            let db = db.clone();
            let scheduled = scheduled.clone();
            let running = running.clone();
            Box::pin(async move {
                if running.swap(true, Ordering::AcqRel) {
                    tracing::warn!(job = name, "previous run still going; skipping this one");
                    return;
                }
                let progress = LogProgress::default();
                // run_job logs and records the outcome; a failure waits for the next time.
                let _ = run_job(&db, &scheduled.job, scheduled.options, &progress).await;
                running.store(false, Ordering::Release);
            })
        })
        .map_err(|error| ScheduleError::InvalidCron {
            cron: cron.clone(),
            job: name,
            error,
        })?;
        scheduler.add(entry).await?;
        tracing::info!(job = name, cron, "scheduled");
    }
    scheduler.start().await?;
    shutdown.cancelled().await;
    scheduler.shutdown().await?;
    Ok(())
}
