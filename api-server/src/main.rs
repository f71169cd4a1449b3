//! Herald api-server: see `api-server --help`.

use std::process::ExitCode;

use api_server::config::{Cli, Command};
use api_server::server;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `keys` and `token` print their result on stdout: the logs go elsewhere.
    let output = match cli.command {
        Some(Command::Keys(_) | Command::Token(_)) => herald_runtime::telemetry::LogOutput::Stderr,
        _ => herald_runtime::telemetry::LogOutput::Stdout,
    };
    let _telemetry = match herald_runtime::telemetry::init("api-server", &cli.telemetry, output) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("api-server: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::serve(cli.server).await,
        Command::Migrate => server::migrate(&cli.server).await,
        Command::Keys(command) => server::keys(&cli.server, command).await,
        Command::Token(token) => server::token(&cli.server, &token),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "api-server failed");
            eprintln!("api-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}
