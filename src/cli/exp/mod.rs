//! `pipe exp`: run, list, compare, apply, branch and remove experiments.
//!
//! - `run`: `pipe exp run`, one experiment or a queue of them;
//! - `show`: `pipe exp show`;
//! - `diff`: `pipe exp diff`;
//! - `manage`: `pipe exp apply`, `branch` and `remove`;
//! - `share`: `pipe exp push` and `pipe exp pull`.

mod diff;
mod manage;
mod run;
mod share;
mod show;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pipe::exp as experiments;
use pipe::exp::queue;
use pipe::git::Repo;
use pipe::project::Project;

use super::CliError;

/// Run the pipeline with changed params and keep each result as an
/// experiment (a commit under refs/exps/, off your branch, in DVC's layout).
#[derive(Debug, Args)]
pub struct ExpArgs {
    #[command(subcommand)]
    pub command: ExpCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    Run(run::RunArgs),
    Show(show::ShowArgs),
    Diff(diff::DiffArgs),
    Apply(manage::ApplyArgs),
    Branch(manage::BranchArgs),
    Remove(manage::RemoveArgs),
    Push(share::PushArgs),
    Pull(share::PullArgs),
}

pub fn run(cwd: &Path, args: ExpArgs) -> Result<ExitCode, CliError> {
    match args.command {
        ExpCommand::Run(a) => run::run_cmd(cwd, a),
        ExpCommand::Show(a) => show::show(cwd, a),
        ExpCommand::Diff(a) => diff::diff_cmd(cwd, a),
        ExpCommand::Apply(a) => manage::apply_cmd(cwd, a),
        ExpCommand::Branch(a) => manage::branch(cwd, a),
        ExpCommand::Remove(a) => manage::remove(cwd, a),
        ExpCommand::Push(a) => share::push(cwd, a),
        ExpCommand::Pull(a) => share::pull(cwd, a),
    }
}

fn err(e: impl Into<pipe::Error>) -> CliError {
    CliError::from(e.into())
}

/// The recorded experiment `name`; a queued one is named as such.
fn find(project: &Project, repo: &Repo, name: &str) -> Result<experiments::Experiment, CliError> {
    let queued = queue::list(&project.cache_root()).map_err(err)?;
    if repo
        .experiment_names()
        .map_err(err)?
        .iter()
        .all(|n| n != name)
        && queued.iter().any(|e| e.queued.name == name)
    {
        return Err(CliError {
            message: format!("experiment {name} is queued and has not run yet"),
            hints: vec!["run the queue first: `pipe exp run --run-all`".into()],
            code: 2,
        });
    }
    experiments::find(repo, name).map_err(err)
}

fn pipe_exe() -> Result<PathBuf, CliError> {
    std::env::current_exe().map_err(|e| CliError {
        message: format!("cannot find the pipe executable: {e}"),
        hints: vec![],
        code: 1,
    })
}
