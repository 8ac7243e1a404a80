//! `consentkit completions SHELL` and `consentkit man`: generated from the argument definitions,
//! so they cannot drift from the tool.

use std::io::Write;

use clap::CommandFactory;

use crate::args::{Cli, Shell};
use crate::failure::{Failure, OUTPUT};

fn write_all(bytes: &[u8]) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Failure { code: OUTPUT, message: format!("cannot write to stdout: {e}") }),
    }
}

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> Result<u8, Failure> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "consentkit", &mut script);
    write_all(&script)
}

/// Prints the man page (synopsis, options, subcommands, exit codes) as roff.
pub fn man() -> Result<u8, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Failure { code: OUTPUT, message: format!("cannot render the man page: {e}") })?;
    write_all(&page)
}
