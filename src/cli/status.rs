//! `pipe status`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::graph::Selection;
use pipe::lock::LockFile;
use pipe::plan::{self, DecideOptions, Verdict};
use pipe::track::{self, TrackedState, Tracker};

use super::{load_data_project, print, stage_targets, CliError};

/// Show which stages `pipe repro` would run, and why, and which tracked
/// data (.dvc files) changed.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Stages to check (with their upstream stages; the same forms as
    /// `pipe repro` takes), .dvc files (or the data they track); all when
    /// omitted.
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
    let project = load_data_project(cwd, false)?;
    if args.cloud {
        return cloud(cwd, &project, &args);
    }
    let files = track::discover(&project)?;
    let (stage_args, chosen) = track::split_targets(&project, cwd, &files, &args.targets);
    let selected = if !args.targets.is_empty() && stage_args.is_empty() {
        Vec::new()
    } else {
        let targets = stage_targets(&project, cwd, &stage_args, args.recursive, args.glob)?;
        project
            .dag
            .select(&project.pipeline, &targets, Selection::WithUpstream)
            .map_err(pipe::Error::from)?
    };
    let files = if args.targets.is_empty() {
        files
    } else {
        chosen
    };
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
    let tracker = Tracker::new(&project, &hasher);
    let mut tracked = Vec::new();
    for file in &files {
        let mut changes = Vec::new();
        for out in &file.outs {
            let (state, _) = tracker.state(out)?;
            if state != TrackedState::UpToDate {
                changes.push((out.path.clone(), state));
            }
        }
        if !changes.is_empty() {
            tracked.push((file.file.clone(), changes));
        }
    }
    // Read-only command: the stat cache and the md5s learnt are the only
    // things it may write, and losing them only costs time.
    let _ = hasher.save();
    tracker.save();

    if args.quiet {
        let stale = plans.iter().any(|p| p.verdict.needs_work()) || !tracked.is_empty();
        return Ok(if stale {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if args.json {
        let mut rows: Vec<JsonRow> = plans.iter().map(JsonRow::Stage).collect();
        rows.extend(tracked.iter().map(|(file, changes)| {
            JsonRow::Tracked {
                stage: file.to_string(),
                verdict: "changed",
                reasons: changes
                    .iter()
                    .map(|(path, state)| TrackedReason {
                        reason: reason_of(*state),
                        path: path.to_string(),
                    })
                    .collect(),
            }
        }));
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).expect("plans serialize")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut fresh = Vec::new();
    let jobs = pipe::run::recorded_jobs(&project);
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
                if let Some(job) = jobs.iter().find(|j| j.record.stage == p.stage) {
                    out.push_str(&format!("    {}\n", job_line(job)));
                }
            }
        }
    }
    for (file, changes) in &tracked {
        out.push_str(&format!("{file}:\n"));
        for (path, state) in changes {
            let what = match state {
                TrackedState::Modified => "modified",
                TrackedState::Missing => "missing",
                _ => "not recorded yet",
            };
            out.push_str(&format!("    output {path} {what}\n"));
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

/// What a stage's cluster job is doing, for `pipe status`.
fn job_line(job: &pipe::run::RecordedJob) -> String {
    use pipe::executor::JobState;
    let name = match job.scheduler {
        "the scheduler" => format!("job {}", job.record.job_id),
        s => format!("{s} job {}", job.record.job_id),
    };
    match &job.state {
        Ok(JobState::Queued { reason: Some(r) }) => format!("queued as {name} ({r})"),
        Ok(JobState::Queued { reason: None }) => format!("queued as {name}"),
        Ok(JobState::Running) => format!("running as {name}"),
        Ok(JobState::Ended(_) | JobState::Unknown) => {
            format!("{name} has ended; `pipe repro` records what it did")
        }
        Err(e) => format!("{name}: cannot tell its state: {e}"),
    }
}

/// A row of `--json`: a stage's plan, or a `.dvc` file whose data changed
/// (its file as `stage`, with reasons shaped as a stage's).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum JsonRow<'a> {
    Stage(&'a plan::StagePlan),
    Tracked {
        stage: String,
        verdict: &'static str,
        reasons: Vec<TrackedReason>,
    },
}

#[derive(serde::Serialize)]
struct TrackedReason {
    reason: &'static str,
    path: String,
}

/// The `reason` of a tracked change in `--json`, as a stage's.
fn reason_of(state: TrackedState) -> &'static str {
    match state {
        TrackedState::Modified => "output_modified",
        TrackedState::Missing => "output_missing",
        _ => "output_not_recorded",
    }
}

/// `pipe status --cloud`: the outputs of pipeline.lock and the tracked
/// data the remote lacks.
fn cloud(
    cwd: &Path,
    project: &pipe::project::Project,
    args: &StatusArgs,
) -> Result<ExitCode, CliError> {
    let remote = super::transfer::open_remote(project, args.remote.as_deref(), None)?;
    let scope = pipe::remote::scope::Scope {
        targets: args.targets.clone(),
        cwd: Some(cwd.to_path_buf()),
        ..Default::default()
    };
    let set = pipe::remote::scope::collect(project, &scope)?;
    let missing = remote
        .missing(&project.cache, &set)
        .map_err(pipe::Error::from)?;
    let lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let files = track::discover(project)?;
    // The stage that records a path, or the `.dvc` file that tracks it.
    let stage_of = |path: &pipe::paths::RelPath| {
        lock.stages
            .iter()
            .find(|(_, s)| s.outs.iter().any(|o| &o.path == path))
            .map(|(n, _)| format!("stage {n}"))
            .or_else(|| {
                files
                    .iter()
                    .find(|f| f.outs.iter().any(|o| &o.path == path))
                    .map(|f| f.file.to_string())
            })
            .unwrap_or_default()
    };
    if args.json {
        let rows: Vec<serde_json::Value> = missing
            .iter()
            .map(|p| serde_json::json!({"path": p, "stage": stage_of(p).trim_start_matches("stage "), "status": "not pushed"}))
            .collect();
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for p in &missing {
        out.push_str(&format!("not pushed: {p} ({})\n", stage_of(p)));
    }
    if missing.is_empty() {
        out.push_str(&format!(
            "{} on remote {} ({} checked).\n",
            if files.is_empty() {
                "Every cached output of pipeline.lock is"
            } else {
                "Every cached output of pipeline.lock and all tracked data are"
            },
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
