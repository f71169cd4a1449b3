//! The command line: which face of the processor runs, and the exit code it ends with
//! (0 success, 1 failure at run time, 2 bad usage or configuration).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald_runtime::telemetry::{self, TelemetryArgs};

use crate::failure::Failure;
use crate::{consume, dead_letter, job};

#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
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

/// Runs the command `cli` names, with telemetry and an async runtime, and says how the process
/// exits.
pub fn run(cli: Cli) -> ExitCode {
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
    let result = runtime.block_on(run_command(cli.command));
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

async fn run_command(command: Command) -> Result<(), Failure> {
    match command {
        Command::Consume(args) => consume::run(args).await,
        Command::Job(args) => job::run_once(args).await,
        Command::Schedule(args) => job::run_schedule(args).await,
        Command::Dlq(command) => dead_letter::run(command).await,
    }
}
