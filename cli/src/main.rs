//! `consentkit`: the support tool over ConsentKit's core.
//! Exit codes: 0 success, 1 denied (`check`), 2 bad input or usage, 3 store problem.

mod args;
mod commands;
mod demo;
mod output;
mod remote;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("consentkit: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
