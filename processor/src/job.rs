//! `processor job ...` (one run, as a CronJob pod) and `processor schedule` (runs on cron
//! schedules in process). The jobs themselves live in `herald_core::jobs`, shared with the
//! api-server's embedded mode.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use herald_core::config::DatabaseArgs;
use herald_core::jobs::schedule;
use herald_core::jobs::{
    Job, JobError, JobOptions, JobOutput, LogProgress, MAX_BATCH_SIZE, Progress, ReportParams,
    ReportPeriod, RetentionArgs, run_job,
};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::connections::connect_db;
use crate::failure::Failure;

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    job: JobCommand,
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Delete notifications and their events older than the retention period, processed-event
    /// records as old, and Idempotency-Keys older than 24 hours.
    Cleanup {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        retention: RetentionArgs,
    },
    /// Count notifications per hour, type and status over a period into the `reports` table
    /// (replacing that period's rows) and print the report.
    Report {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        period: PeriodArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the `users` table (per user: notification count, unread count, last
    /// notification time; last-seen time is kept) from the notifications.
    UserSync {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Args)]
struct CommonArgs {
    #[command(flatten)]
    database: DatabaseArgs,

    /// Only count what would change; write nothing but the run record.
    #[arg(long)]
    dry_run: bool,

    /// Rows per batch (1 to 10000): bounds memory and transaction size.
    #[arg(long, env = "JOB_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BATCH_SIZE)))]
    batch_size: u32,
}

impl CommonArgs {
    fn options(&self) -> JobOptions {
        JobOptions {
            dry_run: self.dry_run,
            batch_size: self.batch_size,
        }
    }
}

#[derive(Debug, Clone, Args)]
struct PeriodArgs {
    /// Report on the last N hours, the current one included.
    #[arg(
        long,
        env = "REPORT_HOURS",
        default_value_t = 24,
        conflicts_with = "from"
    )]
    hours: u32,

    /// Start of the period (RFC 3339, rounded down to the hour); needs --to.
    #[arg(long, requires = "to")]
    from: Option<DateTime<Utc>>,

    /// End of the period (RFC 3339, exclusive, rounded up to the hour); needs --from.
    #[arg(long, requires = "from")]
    to: Option<DateTime<Utc>>,
}

impl PeriodArgs {
    fn params(&self) -> ReportParams {
        let period = match (self.from, self.to) {
            (Some(from), Some(to)) => ReportPeriod::Between { from, to },
            _ => ReportPeriod::LastHours(self.hours),
        };
        ReportParams { period }
    }
}

/// A progress bar on stderr, for jobs run by hand on a terminal.
struct BarProgress(ProgressBar);

impl BarProgress {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl Progress for BarProgress {
    fn update(&self, job: &str, done: u64, total: Option<u64>) {
        if let Some(total) = total {
            self.0.set_length(total);
        }
        self.0.set_message(job.to_owned());
        self.0.set_position(done);
    }
}

fn progress() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(BarProgress::new())
    } else {
        Box::new(LogProgress::default())
    }
}

pub async fn run_once(args: JobArgs) -> Result<(), Failure> {
    let (common, job, json) = match args.job {
        JobCommand::Cleanup { common, retention } => {
            (common, Job::Cleanup(retention.params()), false)
        }
        JobCommand::Report {
            common,
            period,
            json,
        } => (common, Job::Report(period.params()), json),
        JobCommand::UserSync { common } => (common, Job::UserSync, true),
    };
    let db = connect_db(&common.database).await?;
    let progress = progress();
    let result = run_job(&db, &job, common.options(), progress.as_ref())
        .await
        .map_err(|error| match error {
            JobError::Invalid(message) => Failure::Usage(message),
            JobError::Db(error) => Failure::Runtime(
                anyhow::Error::new(error).context(format!("{} failed", job.name())),
            ),
        })?;
    match &result.output {
        JobOutput::Report(report) if !json => println!("{report}"),
        output => println!(
            "{}",
            serde_json::to_string_pretty(output).unwrap_or_default()
        ),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ScheduleCommand {
    #[command(flatten)]
    database: DatabaseArgs,

    #[command(flatten)]
    schedule: schedule::ScheduleArgs,
}

pub async fn run_schedule(args: ScheduleCommand) -> Result<(), Failure> {
    let jobs = args
        .schedule
        .jobs()
        .map_err(|error| Failure::usage(error.to_string()))?;
    if jobs.is_empty() {
        return Err(Failure::usage("every schedule is off: nothing to run"));
    }
    let db = connect_db(&args.database).await?;
    let shutdown = CancellationToken::new();
    herald_runtime::shutdown::on_signal({
        let shutdown = shutdown.clone();
        move || shutdown.cancel()
    });
    schedule::run_schedule(db, jobs, shutdown)
        .await
        .map_err(|error| Failure::Runtime(error.into()))?;
    tracing::info!("schedule stopped");
    Ok(())
}
