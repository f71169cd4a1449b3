//! Herald's processor: one binary with the faces Kubernetes needs. `consume` is the
//! Deployment (Kafka consumer), `job` one CronJob run, `schedule` the jobs on cron schedules
//! without Kubernetes, and `dlq` the operator's tool for the dead-letter topic.
//!
//! Exit codes: 0 success, 1 failure at run time, 2 bad usage or configuration.

mod consume;
mod dead_letter;
mod job;
mod kafka;
mod metrics;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald_core::config::{DatabaseArgs, KafkaArgs, RedisArgs};
use herald_core::db::Db;
use herald_runtime::telemetry::{self, TelemetryArgs};

#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume notification events from Kafka: mark each notification delivered or failed,
    /// then broadcast the change to connected clients. Needs DATABASE_URL, REDIS_URL and
    /// KAFKA_BROKERS.
    Consume(consume::ConsumeArgs),
    /// Run one batch job once and exit (0 on success), as a Kubernetes CronJob does.
    Job(job::JobArgs),
    /// Run the batch jobs in process on cron schedules (local use without Kubernetes).
    Schedule(job::ScheduleCommand),
    /// Inspect the dead-letter topic and re-publish records to their source topic.
    #[command(subcommand)]
    Dlq(dead_letter::DlqCommand),
}

/// Why the process failed: a usage error exits 2, anything else 1.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One-shot commands print their result on stdout; keep the logs out of it.
    let output = match cli.command {
        Command::Consume(_) | Command::Schedule(_) => telemetry::LogOutput::Stdout,
        Command::Job(_) | Command::Dlq(_) => telemetry::LogOutput::Stderr,
    };
    let guard = match telemetry::init("processor", &cli.telemetry, output) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            tracing::error!(error = format!("{error:#}"), "processor failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Consume(args) => consume::run(args).await,
        Command::Job(args) => job::run_once(args).await,
        Command::Schedule(args) => job::run_schedule(args).await,
        Command::Dlq(command) => dead_letter::run(command).await,
    }
}

/// Connects to DATABASE_URL and brings its schema up to date.
async fn connect_db(args: &DatabaseArgs) -> Result<Db, Failure> {
    let url = args.database_url.as_deref().ok_or_else(|| {
        Failure::usage(
            "DATABASE_URL (or --database-url) is required: postgres://... or sqlite://PATH",
        )
    })?;
    let db = Db::connect(url, args.database_max_connections)
        .await
        .map_err(|error| match error {
            herald_core::db::DbError::UnsupportedUrl(_) => Failure::usage(error.to_string()),
            error => {
                Failure::Runtime(anyhow::Error::new(error).context("connecting to the database"))
            }
        })?;
    db.migrate()
        .await
        .map_err(|e| anyhow::Error::new(e).context("migrating the database"))?;
    Ok(db)
}

fn require_brokers(args: &KafkaArgs) -> Result<&str, Failure> {
    args.kafka_brokers
        .as_deref()
        .ok_or_else(|| Failure::usage("KAFKA_BROKERS (or --kafka-brokers) is required"))
}

fn require_redis(args: &RedisArgs) -> Result<&str, Failure> {
    args.redis_url.as_deref().ok_or_else(|| {
        Failure::usage(
            "REDIS_URL (or --redis-url) is required: the fan-out to clients goes through it",
        )
    })
}
