//! `pipe checkout`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::checkout::{checkout, checkout_tracked, CheckoutAction};
use pipe::graph::Selection;
use pipe::track;

use super::{load_data_project, lock_project, print, CliError};

/// Restore the outputs recorded in pipeline.lock, and the data .dvc files
/// track, from the cache (after deleting them by hand, or switching git
/// branches).
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// Stages whose outputs to restore, .dvc files (or the data they
    /// track); all when omitted.
    pub targets: Vec<String>,
    /// Also replace outputs that were edited since they were recorded and
    /// whose current content the cache does not hold (that content is
    /// lost). Without it, only outputs that are missing, or whose current
    /// content the cache holds, are replaced.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cwd: &Path, args: CheckoutArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, false)?;
    let files = track::discover(&project)?;
    let (stage_args, chosen) = track::split_targets(&project, cwd, &files, &args.targets);
    let selected = if !args.targets.is_empty() && stage_args.is_empty() {
        Vec::new()
    } else {
        let targets = super::stage_targets(&project, cwd, &stage_args, false, false)?;
        project
            .dag
            .select(&project.pipeline, &targets, Selection::Single)
            .map_err(pipe::Error::from)?
    };
    let files = if args.targets.is_empty() {
        files
    } else {
        chosen
    };
    let _guard = lock_project(&project)?;
    let mut report = checkout(&project, &selected, args.force)?;
    report.extend(checkout_tracked(&project, &files, args.force)?);
    let mut out = String::new();
    let mut kept = 0;
    let mut missing = 0;
    for item in &report {
        match item.action {
            CheckoutAction::Restored => out.push_str(&format!("restored {}\n", item.path)),
            CheckoutAction::KeptModified if item.tracked => {
                kept += 1;
                out.push_str(&format!(
                    "kept {0}: it was edited, and the cache has no copy of this version (record it with `pipe add {0}`, or replace it with `pipe checkout -f {1}`)\n",
                    item.path, item.stage
                ));
            }
            CheckoutAction::NotInCache | CheckoutAction::Damaged if item.tracked => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: {} (`pipe pull {}` fetches it from a remote)\n",
                    item.path,
                    if item.action == CheckoutAction::Damaged {
                        "the cache's copy is damaged and was moved aside"
                    } else {
                        "not in the cache"
                    },
                    item.stage
                ));
            }
            CheckoutAction::KeptModified => {
                kept += 1;
                out.push_str(&format!(
                    "kept {0}: it was edited, and the cache has no copy of this version (record it with `pipe commit {1}`, or replace it with `pipe checkout -f {1}`)\n",
                    item.path, item.stage
                ));
            }
            CheckoutAction::NotInCache => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: not in the cache (run `pipe repro {}`)\n",
                    item.path, item.stage
                ));
            }
            CheckoutAction::NotCached => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: it is not cached (cache: false); run `pipe repro {}`\n",
                    item.path, item.stage
                ));
            }
            CheckoutAction::Damaged => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: the cache's copy is damaged and was moved aside (run `pipe repro {}`)\n",
                    item.path, item.stage
                ));
            }
            CheckoutAction::UpToDate => {}
        }
    }
    if out.is_empty() {
        out.push_str("Every output is in place.\n");
    }
    print(&out)?;
    Ok(if kept + missing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
