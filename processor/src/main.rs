//! `processor`: parses the command line and hands it to the library (`processor::cli`).

use std::process::ExitCode;

use clap::Parser as _;
use processor::cli::{self, Cli};

fn main() -> ExitCode {
    cli::run(Cli::parse())
}
