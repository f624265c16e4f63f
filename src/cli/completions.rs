//! `pipe completions`.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{print, Cli, CliError};

/// Print the completion script for a shell, e.g.
/// `pipe completions bash > ~/.local/share/bash-completion/completions/pipe`,
/// `pipe completions zsh > "${fpath[1]}/_pipe"`,
/// `pipe completions fish > ~/.config/fish/completions/pipe.fish`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<ExitCode, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "pipe", &mut script);
    print(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}
