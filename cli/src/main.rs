//! `consentkit`: the support tool over ConsentKit's core. Exit codes: see [`failure`] (and
//! `consentkit --help`).

mod args;
mod commands;
mod demo;
mod docs;
mod failure;
mod output;
mod progress;
mod remote;
mod text;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    output::init(output::Style::detect(cli.json, cli.quiet));
    let result = match &cli.command {
        Command::Demo => demo::run(&cli),
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
        _ => commands::run(&cli),
    };
    output::flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            output::error_line(&failure.message);
            if cli.json && !output::json_printed() {
                // A script reading stdout gets the failure in the same envelope as a result.
                output::print_json(serde_json::json!({
                    "error": { "exit_code": failure.code, "message": text::one_line(&failure.message) }
                }));
                output::flush();
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Help and version go to stdout as clap writes them; a usage error becomes one bounded, escaped
/// line on stderr (with clap's tip, if any) and exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { failure::BAD_INPUT } else { failure::OK });
    }
    let rendered = e.render().to_string();
    // The first paragraph is the error (continued on indented lines); later ones are usage and tips.
    let first: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let first = first.join(" ");
    let mut message = first.strip_prefix("error: ").unwrap_or(&first).to_string();
    if let Some(tip) = rendered.lines().map(str::trim).find(|l| l.starts_with("tip:")) {
        message.push_str("; ");
        message.push_str(tip);
    }
    message.push_str(" (see consentkit --help)");
    output::error_line(&format!("usage: {message}"));
    ExitCode::from(failure::BAD_INPUT)
}
