//! `pipe plots show` and `pipe plots diff`: the pipeline's plots on one
//! self-contained HTML page (or as JSON with a Vega-Lite spec per plot).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

use pipe::compare::Side;
use pipe::paths::RelPath;
use pipe::plots::{self, Plot};
use pipe::project::Project;

use super::compare::{open_repo, pretty, side_of};
use super::{load_project, print, CliError};

/// Draw the pipeline's plots (its stages' `plots:` outputs, the top-level
/// `plots:` section, the built-in `score` stage's ROC curve and confusion
/// matrix) on one HTML page that needs no network and no server.
#[derive(Debug, Args)]
pub struct PlotsArgs {
    #[command(subcommand)]
    pub command: PlotsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlotsCommand {
    Show(ShowArgs),
    Diff(DiffArgs),
}

/// Draw the plots of the workspace, all of them or the TARGETs, into
/// DIR/index.html (default: pipe_plots/index.html) and print its URL.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Plot ids, plot files, or directories holding them [default: every plot].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Draw the plots with one series per revision or experiment: HEAD and the
/// workspace by default; one revision alone is compared with the workspace.
/// A revision is a branch, tag, commit, `HEAD~2` or an experiment name.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Revisions to compare.
    #[arg(value_name = "REV")]
    pub revisions: Vec<String>,
    /// An experiment to compare (repeatable); with revisions, after them.
    #[arg(short = 'e', long = "exp", value_name = "NAME")]
    pub exps: Vec<String>,
    /// Plot ids, plot files, or directories holding them [default: every plot].
    #[arg(long, value_name = "TARGET", num_args = 1..)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The directory to write index.html into.
    #[arg(
        short = 'o',
        long = "out",
        value_name = "DIR",
        default_value = "pipe_plots"
    )]
    pub out: PathBuf,
    /// Open the page in the default browser.
    #[arg(long, conflicts_with = "json")]
    pub open: bool,
    /// Print the plots as JSON (their data, warnings, and a Vega-Lite spec
    /// each) instead of writing the page.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cwd: &Path, args: PlotsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        PlotsCommand::Show(a) => {
            let project = load_project(cwd)?;
            let sides = [Side::Workspace];
            draw(cwd, &project, None, &sides, &a.targets, &a.output, "Plots")
        }
        PlotsCommand::Diff(a) => {
            let project = load_project(cwd)?;
            let repo = open_repo(&project.root, "pipe plots diff")?;
            let mut sides = Vec::new();
            for rev in &a.revisions {
                sides.push(side_of(&repo, Some(rev))?);
            }
            for name in &a.exps {
                let exp = pipe::exp::find(&repo, name).map_err(CliError::from)?;
                sides.push(Side::Commit(pipe::git::Rev {
                    oid: exp.commit,
                    label: exp.name,
                }));
            }
            match sides.len() {
                0 => sides = vec![side_of(&repo, None)?, Side::Workspace],
                1 => sides.push(Side::Workspace),
                _ => {}
            }
            let title = format!(
                "Plots: {}",
                sides
                    .iter()
                    .map(Side::label)
                    .collect::<Vec<_>>()
                    .join(" vs ")
            );
            draw(
                cwd,
                &project,
                Some(&repo),
                &sides,
                &a.targets,
                &a.output,
                &title,
            )
        }
    }
}

fn draw(
    cwd: &Path,
    project: &Project,
    repo: Option<&pipe::git::Repo>,
    sides: &[Side],
    targets: &[String],
    output: &OutputArgs,
    title: &str,
) -> Result<ExitCode, CliError> {
    let all = plots::requests(&project.pipeline);
    if all.is_empty() {
        eprintln!(
            "The pipeline declares no plots (list files under a stage's `plots:`, or in a top-level `plots:` section)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut chosen = Vec::new();
    for target in targets {
        let found: Vec<_> = all.iter().filter(|r| r.matches(target)).collect();
        if found.is_empty() {
            let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
            return Err(CliError {
                message: format!("no plot is named `{target}` or reads it"),
                hints: vec![format!("the pipeline's plots: {}", ids.join(", "))],
                code: 2,
            });
        }
        for r in found {
            if !chosen.contains(r) {
                chosen.push(r.clone());
            }
        }
    }
    let requests = if targets.is_empty() { all } else { chosen };
    let drawn = plots::collect(project, repo, sides, &requests).map_err(CliError::from)?;
    for plot in &drawn {
        for w in &plot.warnings {
            eprintln!("warning: plot {}: {w}", plot.id);
        }
    }
    if output.json {
        print(&pretty(&to_json(&drawn)))?;
        return Ok(ExitCode::SUCCESS);
    }
    let html = plots::page::render(title, &drawn);
    let file = write_page(cwd, project, &output.out, &html)?;
    let url = format!("file://{}", file.display());
    print(&format!("{url}\n"))?;
    if output.open {
        open(&url);
    }
    Ok(ExitCode::SUCCESS)
}

/// The plots as JSON: each with its data and its Vega-Lite spec.
pub fn to_json(drawn: &[Plot]) -> Json {
    let list: Vec<Json> = drawn
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).expect("plots serialize");
            if let Some(spec) = plots::vega::spec(p) {
                v["vega_lite"] = spec;
            }
            v
        })
        .collect();
    json!({ "plots": list })
}

/// Writes `html` to DIR/index.html (through the workspace when DIR is in
/// the project) and returns its absolute path.
pub fn write_page(
    cwd: &Path,
    project: &Project,
    dir: &Path,
    html: &str,
) -> Result<PathBuf, CliError> {
    write_file(cwd, project, &dir.join("index.html"), html)
}

/// Writes `text` to `path` (relative to `cwd`): through the workspace when
/// it is inside the project, else atomically where it says.
pub fn write_file(
    cwd: &Path,
    project: &Project,
    path: &Path,
    text: &str,
) -> Result<PathBuf, CliError> {
    let absolute = cwd.join(path);
    let failed = |e: String| CliError {
        message: format!("cannot write {}: {e}", absolute.display()),
        hints: vec!["choose another directory with -o".into()],
        code: 1,
    };
    let inside = absolute
        .strip_prefix(&project.root)
        .ok()
        .and_then(|rel| RelPath::normalized(&rel.to_string_lossy()).ok());
    match inside {
        Some(rel) => {
            project
                .workspace
                .write(&rel, text.as_bytes(), false)
                .map_err(|e| failed(e.to_string()))?;
            Ok(rel.to_path(&project.root))
        }
        None => {
            if let Some(parent) = absolute.parent() {
                std::fs::create_dir_all(parent).map_err(|e| failed(e.to_string()))?;
            }
            pipe::atomic_write::write(&absolute, text.as_bytes(), false)
                .map_err(|e| failed(e.to_string()))?;
            Ok(absolute)
        }
    }
}

/// Opens `url` in the default browser, without waiting for it.
pub fn open(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("warning: cannot open the page with {opener}: {e}; open {url} yourself");
    }
}
