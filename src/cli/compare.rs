//! Output shared by `pipe metrics`, `pipe params` and `pipe exp`: the
//! format flags, diff tables, warnings, and opening the repository.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;
use serde_json::{json, Value as Json};

use std::process::ExitCode;

use pipe::compare::diff::{diff, DiffRow};
use pipe::compare::table::{self, Table};
use pipe::compare::{self, Files, Reader, Side};
use pipe::git::Repo;

use super::{load_project, print, CliError};

/// How to print a table.
#[derive(Debug, Clone, Args)]
pub struct FormatArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "md")]
    pub json: bool,
    /// Print a Markdown table.
    #[arg(long)]
    pub md: bool,
    /// Round numbers to N decimal places.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub precision: usize,
}

impl FormatArgs {
    /// The table as text or Markdown.
    pub fn render(&self, table: &Table) -> String {
        if self.md {
            table.to_markdown()
        } else {
            table.to_text()
        }
    }
}

/// The repository of `root`, for the command `what`.
pub fn open_repo(root: &Path, what: &str) -> Result<Repo, CliError> {
    Ok(Repo::discover(root, what).map_err(pipe::Error::from)?)
}

/// `rev`, or `HEAD` (an empty side when the repository has no commits).
pub fn side_of(repo: &Repo, rev: Option<&str>) -> Result<Side, CliError> {
    match rev {
        None | Some("HEAD") if repo.head().map_err(pipe::Error::from)?.is_none() => {
            eprintln!("note: the repository has no commits yet; HEAD is shown as empty");
            Ok(Side::Empty("HEAD".into()))
        }
        None => Ok(Side::Commit(
            repo.resolve("HEAD").map_err(pipe::Error::from)?,
        )),
        Some(rev) => Ok(Side::Commit(repo.resolve(rev).map_err(pipe::Error::from)?)),
    }
}

/// The two sides of `metrics diff` and `params diff`, and how to print.
#[derive(Debug, Clone, Args)]
pub struct SidesArgs {
    /// The old side [default: HEAD].
    pub a: Option<String>,
    /// The new side [default: the workspace].
    pub b: Option<String>,
    /// Include what did not change.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// What a diff command compares.
pub struct DiffRequest<'a> {
    /// The command, for errors (`pipe metrics diff`).
    pub command: &'a str,
    /// The key column's heading (`Metric`, `Param`).
    pub column: &'a str,
    pub sides: &'a SidesArgs,
}

/// `pipe metrics diff` and `pipe params diff`: `read` gives the files of a
/// side; A defaults to HEAD, B to the workspace.
pub fn diff_command(
    cwd: &Path,
    request: DiffRequest,
    read: impl Fn(&mut Reader) -> Result<Files, pipe::Error>,
) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, request.command)?;
    let sides = request.sides;
    let a = side_of(&repo, sides.a.as_deref())?;
    let b = match sides.b.as_deref() {
        None => Side::Workspace,
        Some(rev) => side_of(&repo, Some(rev))?,
    };
    let old = read(&mut Reader::new(&project, Some(&repo), a.clone()))?;
    let new = read(&mut Reader::new(&project, Some(&repo), b.clone()))?;
    warn(&a, &old);
    warn(&b, &new);
    let rows = diff(&old, &new, sides.all);
    let format = &sides.format;
    if format.json {
        print(&pretty(&diff_json(&rows)))?;
    } else if rows.is_empty() {
        // On stderr: stdout stays empty, so that `[ -z "$(pipe metrics
        // diff)" ]` works in a script, as with `git diff` (and DVC, which
        // prints nothing at all for this reason).
        eprintln!("No changes.");
    } else {
        let t = diff_table(
            &rows,
            request.column,
            &a.label(),
            &b.label(),
            format.precision,
        );
        print(&format.render(&t))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the warnings about unreadable files of `side` to stderr.
pub fn warn(side: &Side, files: &Files) {
    for w in compare::warnings(side, files) {
        eprintln!("warning: {w}");
    }
}

/// A diff as a table: Path, `what` (Metric or Param), A, B, Change.
pub fn diff_table(rows: &[DiffRow], what: &str, a: &str, b: &str, precision: usize) -> Table {
    let mut t = Table::new(vec![
        "Path".into(),
        what.into(),
        a.into(),
        b.into(),
        "Change".into(),
    ]);
    for r in rows {
        t.rows.push(vec![
            r.path.clone(),
            r.key.clone(),
            table::cell(r.old.as_ref(), precision),
            table::cell(r.new.as_ref(), precision),
            table::change(r.change, precision),
        ]);
    }
    t
}

/// A diff as JSON: `{path: {key: {"old": …, "new": …, "diff": …}}}`.
pub fn diff_json(rows: &[DiffRow]) -> Json {
    let mut out: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
    for r in rows {
        out.entry(r.path.clone()).or_default().insert(
            r.key.clone(),
            json!({"old": r.old, "new": r.new, "diff": r.change}),
        );
    }
    json!(out)
}

/// Files as JSON: `{path: {key: value}}`; unreadable files are left out.
pub fn files_json(files: &Files) -> Json {
    let mut out = serde_json::Map::new();
    for (path, loaded) in files {
        if let Some(values) = loaded.values() {
            out.insert(path.to_string(), json!(values));
        }
    }
    Json::Object(out)
}

pub fn pretty(value: &Json) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("JSON serializes")
    )
}
