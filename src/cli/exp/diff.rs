//! `pipe exp diff`: the metrics and params of two experiments or
//! revisions, as `dvc exp diff` compares them: A (default HEAD) then B
//! (default the workspace), Change = B − A, the same columns as `pipe
//! metrics diff`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use pipe::compare::diff::diff;
use pipe::compare::{Reader, Side};

use super::find;
use crate::cli::compare::{diff_json, diff_table, open_repo, pretty, side_of, FormatArgs};
use crate::cli::{load_project, print, CliError};

/// Compare the metrics and params of two experiments or revisions: A, B,
/// and Change = B − A.
///
/// A and B are each an experiment name (as `pipe exp show` lists them, or
/// its ref `refs/exps/…`) or anything git resolves (`main`, `v1.2`,
/// `HEAD~2`, a short hash). `pipe exp diff NAME` compares the experiment
/// with the workspace; to see what an experiment changed from its baseline,
/// name both: `pipe exp diff HEAD NAME`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side: an experiment or a revision [default: HEAD].
    #[arg(value_name = "A")]
    pub a: Option<String>,
    /// The new side: an experiment or a revision [default: the workspace].
    #[arg(value_name = "B")]
    pub b: Option<String>,
    /// Include what did not change.
    #[arg(long)]
    pub all: bool,
    /// Only the params that stages depend on.
    #[arg(long)]
    pub param_deps: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

pub(super) fn diff_cmd(cwd: &Path, args: DiffArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp diff")?;
    let side = |rev: Option<&str>| -> Result<Side, CliError> {
        match side_of(&repo, rev) {
            Ok(side) => Ok(side),
            Err(e) => {
                // A queued experiment is named as such.
                if let Some(rev) = rev {
                    find(&project, &repo, rev)?;
                }
                Err(e)
            }
        }
    };
    let a = side(args.a.as_deref())?;
    let b = match args.b.as_deref() {
        None => Side::Workspace,
        Some(rev) => side(Some(rev))?,
    };
    let mut old = Reader::new(&project, Some(&repo), a.clone());
    let mut new = Reader::new(&project, Some(&repo), b.clone());
    let (old_metrics, new_metrics) = (
        old.metrics().map_err(CliError::from)?,
        new.metrics().map_err(CliError::from)?,
    );
    let (old_params, new_params) = (
        old.params(args.param_deps).map_err(CliError::from)?,
        new.params(args.param_deps).map_err(CliError::from)?,
    );
    for (side, files) in [
        (&a, &old_metrics),
        (&b, &new_metrics),
        (&a, &old_params),
        (&b, &new_params),
    ] {
        crate::cli::compare::warn(side, files);
    }
    let metrics = diff(&old_metrics, &new_metrics, args.all);
    let params = diff(&old_params, &new_params, args.all);
    if args.format.json {
        print(&pretty(
            &json!({"metrics": diff_json(&metrics), "params": diff_json(&params)}),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = args.format.precision;
    let (a_label, b_label) = (a.label(), b.label());
    let mut out = String::new();
    if !metrics.is_empty() {
        out.push_str(
            &args
                .format
                .render(&diff_table(&metrics, "Metric", &a_label, &b_label, p)),
        );
    }
    if !params.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            &args
                .format
                .render(&diff_table(&params, "Param", &a_label, &b_label, p)),
        );
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
