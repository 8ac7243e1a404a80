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
/// line on stderr (with clap's tip, if any) and exit 2, and with `--json` also the error object on
/// stdout, as any other failure. An argument that is not UTF-8 is named, its bad bytes as `\xNN`.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { failure::BAD_INPUT } else { failure::OK });
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut message = if e.kind() == ErrorKind::InvalidUtf8 {
        match args.iter().find(|a| a.to_str().is_none()) {
            Some(bad) => format!("argument '{}' is not valid UTF-8", text::escape_bytes(bad.as_encoded_bytes())),
            None => "an argument is not valid UTF-8".to_string(),
        }
    } else {
        let rendered = e.render().to_string();
        // The first paragraph is the error (continued on indented lines); later ones are usage and tips.
        let first: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
        let first = first.join(" ");
        let mut message = first.strip_prefix("error: ").unwrap_or(&first).to_string();
        if let Some(tip) = rendered.lines().map(str::trim).find(|l| l.starts_with("tip:")) {
            message.push_str("; ");
            message.push_str(tip);
        }
        message
    };
    message.push_str(" (see consentkit --help)");
    let message = format!("usage: {message}");
    output::error_line(&message);
    // The flags themselves, before any `--` (after it, `--json` is a value); `--quiet` wins.
    let flags: Vec<&std::ffi::OsString> = args.iter().take_while(|a| *a != "--").collect();
    let quiet =
        flags.iter().any(|a| *a == "--quiet" || a.to_str().is_some_and(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('q')));
    if flags.iter().any(|a| *a == "--json") && !quiet {
        output::print_json(serde_json::json!({
            "error": { "exit_code": failure::BAD_INPUT, "message": text::one_line(&message) }
        }));
        output::flush();
    }
    ExitCode::from(failure::BAD_INPUT)
}
