//! `pipe params diff`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pipe::compare::diff::diff;
use pipe::compare::{Reader, Side};

use super::compare::{diff_json, diff_table, open_repo, pretty, side_of, warn, FormatArgs};
use super::{load_project, print, CliError};

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
    /// The old side [default: HEAD].
    pub a: Option<String>,
    /// The new side [default: the workspace].
    pub b: Option<String>,
    /// Include params that did not change.
    #[arg(long)]
    pub all: bool,
    /// Only the params that stages depend on (not every key of the files).
    #[arg(long)]
    pub deps: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

pub fn run(cwd: &Path, args: ParamsArgs) -> Result<ExitCode, CliError> {
    let ParamsCommand::Diff(args) = args.command;
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe params diff")?;
    let a = side_of(&repo, args.a.as_deref())?;
    let b = match args.b.as_deref() {
        None => Side::Workspace,
        Some(rev) => side_of(&repo, Some(rev))?,
    };
    let old = Reader::new(&project, Some(&repo), a.clone())
        .params(args.deps)
        .map_err(CliError::from)?;
    let new = Reader::new(&project, Some(&repo), b.clone())
        .params(args.deps)
        .map_err(CliError::from)?;
    warn(&a, &old);
    warn(&b, &new);
    let rows = diff(&old, &new, args.all);
    if args.format.json {
        print(&pretty(&diff_json(&rows)))?;
    } else if !rows.is_empty() {
        let t = diff_table(
            &rows,
            "Param",
            &a.label(),
            &b.label(),
            args.format.precision,
        );
        print(&args.format.render(&t))?;
    }
    Ok(ExitCode::SUCCESS)
}
