//! `pipe status`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::graph::Selection;
use pipe::lock::LockFile;
use pipe::plan::{self, DecideOptions, Verdict};

use super::{load_project, print, stage_targets, CliError};

/// Show which stages `pipe repro` would run, and why.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Stages to check (with their upstream stages); all when omitted
    /// (the same forms as `pipe repro` takes).
    pub targets: Vec<String>,
    /// Targets are directories: the stages of the pipeline files inside
    /// them.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Targets' stage names are wildcard patterns.
    #[arg(long)]
    pub glob: bool,
    /// Print every stage with its verdict and reasons as JSON.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Instead: which cached outputs of pipeline.lock a remote lacks (not
    /// pushed yet), asking the remote about each.
    #[arg(short = 'c', long)]
    pub cloud: bool,
    /// The remote for --cloud (default: the default remote).
    #[arg(short = 'r', long, value_name = "NAME", requires = "cloud")]
    pub remote: Option<String>,
    /// Print nothing; exit 1 if any stage would run (or be restored), 0 if
    /// every stage is up to date (as `dvc status -q`).
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(cwd: &Path, args: StatusArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    if args.cloud {
        return cloud(&project, &args);
    }
    let targets = stage_targets(&project, cwd, &args.targets, args.recursive, args.glob)?;
    let selected = project
        .dag
        .select(&project.pipeline, &targets, Selection::WithUpstream)
        .map_err(pipe::Error::from)?;
    let lock = super::repro::take_over_dvc_lock(&project, false, args.quiet || args.json)?;
    let hasher = project.hasher();
    let plans = plan::plan(
        &project,
        &lock,
        &hasher,
        &selected,
        DecideOptions {
            force: false,
            use_run_cache: true,
        },
    )?;
    // Read-only command: the stat cache is the one thing it may write, and
    // losing that write only costs time.
    let _ = hasher.save();

    if args.quiet {
        let stale = plans.iter().any(|p| p.verdict.needs_work());
        return Ok(if stale {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&plans).expect("plans serialize")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut fresh = Vec::new();
    for p in &plans {
        match &p.verdict {
            Verdict::UpToDate => fresh.push(p.stage.as_str()),
            Verdict::Frozen => out.push_str(&format!("{}: frozen\n", p.stage)),
            Verdict::Run | Verdict::Restore { .. } => {
                let note = if matches!(p.verdict, Verdict::Restore { .. }) {
                    " (will be restored from the run cache)"
                } else {
                    ""
                };
                out.push_str(&format!("{}:{note}\n", p.stage));
                for r in &p.reasons {
                    out.push_str(&format!("    {r}\n"));
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("Everything is up to date.\n");
    } else if !fresh.is_empty() {
        out.push_str(&format!("up to date: {}\n", fresh.join(", ")));
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `pipe status --cloud`: the outputs of pipeline.lock the remote lacks.
fn cloud(project: &pipe::project::Project, args: &StatusArgs) -> Result<ExitCode, CliError> {
    let remote = super::transfer::open_remote(project, args.remote.as_deref(), None)?;
    let scope = pipe::remote::scope::Scope {
        targets: args.targets.clone(),
        ..Default::default()
    };
    let set = pipe::remote::scope::collect(project, &scope)?;
    let missing = remote
        .missing(&project.cache, &set)
        .map_err(pipe::Error::from)?;
    let lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let stage_of = |path: &pipe::paths::RelPath| {
        lock.stages
            .iter()
            .find(|(_, s)| s.outs.iter().any(|o| &o.path == path))
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    };
    if args.json {
        let rows: Vec<serde_json::Value> = missing
            .iter()
            .map(|p| serde_json::json!({"path": p, "stage": stage_of(p), "status": "not pushed"}))
            .collect();
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for p in &missing {
        out.push_str(&format!("not pushed: {p} (stage {})\n", stage_of(p)));
    }
    if missing.is_empty() {
        out.push_str(&format!(
            "Every cached output of pipeline.lock is on remote {} ({} checked).\n",
            remote.name,
            set.records.len()
        ));
    } else {
        out.push_str(&format!(
            "run `pipe push` to upload them to remote {}\n",
            remote.name
        ));
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
