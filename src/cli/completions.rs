//! `aos completions`: shell completion scripts.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CliError};

/// Print a completion script for SHELL to stdout.
///
/// For example: `aos completions bash > /etc/bash_completion.d/aos`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Runs `aos completions`.
pub fn run(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "aos", &mut buf);
    super::out(&buf)
}
