//! `pipe metrics show` and `pipe metrics diff`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value as Json;

use pipe::compare::table::{self, Table};
use pipe::compare::{metric_files, Loaded, Reader, Side};

use super::compare::{
    diff_command, files_json, open_repo, warn, DiffRequest, FormatArgs, SidesArgs,
};
use super::{load_project, print, CliError};

/// Show and compare the metrics files of the pipeline (its `metrics:`
/// outputs, JSON or YAML).
#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: MetricsCommand,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    Show(ShowArgs),
    Diff(DiffArgs),
}

/// Print every metric of the workspace (nested keys flattened as
/// `results.accuracy`).
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Also one column per commit of the current branch, newest first.
    #[arg(short = 'a', long)]
    pub all_commits: bool,
    /// With --all-commits, at most N commits.
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        default_value_t = 10,
        requires = "all_commits"
    )]
    pub num: usize,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Compare metrics between two revisions: HEAD and the workspace by
/// default; a revision is a branch, tag, commit, `HEAD~2` or an
/// experiment name.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
}

pub fn run(cwd: &Path, args: MetricsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        MetricsCommand::Show(a) => show(cwd, a),
        MetricsCommand::Diff(a) => diff_cmd(cwd, a),
    }
}

fn show(cwd: &Path, args: ShowArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    if metric_files(&project).is_empty() {
        eprintln!("The pipeline declares no metrics files (list them under a stage's `metrics:`).");
        return Ok(ExitCode::SUCCESS);
    }
    let repo = if args.all_commits {
        Some(open_repo(&project.root, "pipe metrics show --all-commits")?)
    } else {
        None
    };
    let mut sides = vec![Side::Workspace];
    if let Some(repo) = &repo {
        let history = repo.history(args.num).map_err(pipe::Error::from)?;
        sides.extend(history.into_iter().map(Side::Commit));
    }
    let mut columns = Vec::new();
    for side in &sides {
        let files = Reader::new(&project, repo.as_ref(), side.clone())
            .metrics()
            .map_err(CliError::from)?;
        warn(side, &files);
        if matches!(side, Side::Workspace) {
            for (path, loaded) in &files {
                if *loaded == Loaded::Missing {
                    eprintln!("note: {path} is not in the workspace (run `pipe repro`)");
                }
            }
        }
        columns.push((side.label(), files));
    }
    if args.format.json {
        print(&in_order_json(
            columns
                .iter()
                .map(|(label, files)| (label, files_json(files))),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut keys: Vec<(String, String)> = Vec::new();
    for (_, files) in &columns {
        for (path, loaded) in files {
            for key in loaded.values().into_iter().flat_map(|v| v.keys()) {
                keys.push((path.to_string(), key.clone()));
            }
        }
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        eprintln!("No metrics to show yet.");
        return Ok(ExitCode::SUCCESS);
    }
    let mut headers = vec!["Path".to_string(), "Metric".to_string()];
    headers.extend(columns.iter().map(|(label, _)| {
        if columns.len() == 1 {
            "Value".to_string()
        } else {
            label.clone()
        }
    }));
    let mut t = Table::new(headers);
    for (path, key) in keys {
        let mut row = vec![path.clone(), key.clone()];
        for (_, files) in &columns {
            let value = files
                .iter()
                .find(|(p, _)| p.as_str() == path)
                .and_then(|(_, l)| l.values())
                .and_then(|v| v.get(&key));
            row.push(table::cell(value, args.format.precision));
        }
        t.rows.push(row);
    }
    print(&args.format.render(&t))?;
    Ok(ExitCode::SUCCESS)
}

/// A pretty JSON object whose keys keep the order given (the workspace,
/// then commits newest first), as `dvc metrics show --json -A` does; a
/// `serde_json::Map` would sort them.
fn in_order_json<'a>(entries: impl Iterator<Item = (&'a String, Json)>) -> String {
    use serde::ser::{SerializeMap, Serializer};
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    let mut map = ser.serialize_map(None).expect("JSON serializes");
    for (key, value) in entries {
        map.serialize_entry(key, &value).expect("JSON serializes");
    }
    map.end().expect("JSON serializes");
    let mut text = String::from_utf8(out).expect("JSON is UTF-8");
    text.push('\n');
    text
}

fn diff_cmd(cwd: &Path, args: DiffArgs) -> Result<ExitCode, CliError> {
    let request = DiffRequest {
        command: "pipe metrics diff",
        column: "Metric",
        sides: &args.sides,
    };
    diff_command(cwd, request, |reader| reader.metrics())
}
