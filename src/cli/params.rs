//! `pipe params diff`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::compare::{diff_command, DiffRequest, SidesArgs};
use super::CliError;

/// Compare the params the pipeline uses (the params files its stages read).
#[derive(Debug, Args)]
pub struct ParamsArgs {
    #[command(subcommand)]
    pub command: ParamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ParamsCommand {
    Diff(DiffArgs),
}

/// Compare params between two revisions: HEAD and the workspace by
/// default; a revision is a branch, tag, commit, `HEAD~2` or an
/// experiment name.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    /// Only the params that stages depend on (not every key of the files).
    #[arg(long)]
    pub deps: bool,
}

pub fn run(cwd: &Path, args: ParamsArgs) -> Result<ExitCode, CliError> {
    let ParamsCommand::Diff(args) = args.command;
    let request = DiffRequest {
        command: "pipe params diff",
        column: "Param",
        sides: &args.sides,
    };
    diff_command(cwd, request, |reader| reader.params(args.deps))
}
