//! `loadgen`: Herald's load-test tool. See `loadgen --help`.
//!
//! Exit codes: 0 the run completed (its figures may still show errors), 1 the run failed,
//! 2 bad usage (including a target that is not loopback without `--allow-remote`).

mod ceiling;
mod clock;
mod duration;
mod e2e;
mod failure;
mod fanout;
mod floor;
mod http;
mod latency;
mod limits;
mod probe;
mod proc_stats;
mod report;
mod rest;
mod stream;
mod tally;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// Load tests for Herald's api-server: REST throughput, stream fan-out and end-to-end latency.
///
/// Every run is bounded in time and count. Targets must be loopback (127.0.0.0/8, ::1,
/// localhost) unless --allow-remote is given. Results print as a table, or as JSON with --json.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Closed-loop HTTP load: N keep-alive connections each sending one request after another;
    /// reports requests/s, errors by kind and latency percentiles.
    Rest(rest::RestArgs),
    /// Opens N stream clients, publishes M notifications through the REST API and measures each
    /// delivery: publish-to-receipt latency, delivered ratio, duplicates, out-of-order.
    Fanout(fanout::FanoutArgs),
    /// POSTs at a steady rate and measures, per notification, the time until a stream client
    /// sees it marked delivered (api-server -> Kafka -> processor -> broadcast).
    E2e(e2e::E2eArgs),
    /// A minimal hyper "hello world" HTTP server: the ceiling that HTTP figures are read against.
    CeilingServer(ceiling::CeilingArgs),
    /// Writes one frame to each of N plain TCP connections from a single loop, M times, and
    /// reports its CPU per write: the floor that fan-out figures are read against.
    FloorServer(floor::FloorServerArgs),
    /// The N connections floor-server writes to: reads until it closes them.
    FloorClient(floor::FloorClientArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Rest(args) => rest::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::E2e(args) => e2e::run(args).await,
            Command::CeilingServer(args) => ceiling::run(args).await,
            Command::FloorServer(args) => floor::serve(args).await,
            Command::FloorClient(args) => floor::read(args).await,
        }
    });
    // Client tasks still blocked on sockets must not delay the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("loadgen: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
