//! `pipe gc`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::lock::LockFile;

use super::{load_project, lock_project, print, CliError};

/// Remove from the cache every object that pipeline.lock does not record,
/// neither in the workspace nor in any experiment (refs/exps/*).
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Also keep everything the run cache records (so that any fingerprint
    /// seen before can still be restored without running).
    #[arg(long)]
    pub keep_runs: bool,
    /// Count what would be removed, remove nothing.
    #[arg(long)]
    pub dry: bool,
}

/// The outputs recorded by the lock of every experiment (none outside git).
/// A repository or an experiment lock that cannot be read is an error: gc
/// would otherwise remove what experiments need.
fn experiment_roots(root: &Path) -> Result<Vec<pipe::lock::PathRecord>, pipe::Error> {
    let repo = match pipe::git::Repo::discover(root, "pipe gc") {
        Ok(repo) => repo,
        Err(pipe::git::GitError::NotARepo { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let lock_path = pipe::paths::RelPath::from_normalized(pipe::lock::LOCK_FILE);
    let mut out = Vec::new();
    for exp in pipe::exp::list(&repo)? {
        let Some(bytes) = repo.read(exp.commit, &lock_path)? else {
            continue;
        };
        let lock = LockFile::from_bytes(&bytes).map_err(|e| pipe::Error::Refused {
            message: format!(
                "cannot read the pipeline.lock of experiment {}: {e}",
                exp.name
            ),
            hint: Some(format!(
                "nothing was removed; `pipe exp remove {}` if it is not needed",
                exp.name
            )),
        })?;
        out.extend(lock.stages.into_values().flat_map(|s| s.outs));
    }
    Ok(out)
}

pub fn run(cwd: &Path, args: GcArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let _guard = lock_project(&project)?;
    // Running experiments write to this cache: wait for none.
    let experiments = pipe::exp::isolated::experiments_lock(&project.cache_root())?;
    if experiments.try_lock().is_err() {
        return Err(CliError {
            message:
                "experiments are running (`pipe exp run`), and gc could remove what they write"
                    .into(),
            hints: vec!["run `pipe gc` when they have finished".into()],
            code: 1,
        });
    }
    let lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let mut roots: Vec<_> = lock
        .stages
        .values()
        .flat_map(|s| s.outs.iter().cloned())
        .collect();
    // Experiments keep their outputs: `pipe exp apply` restores them.
    let kept = experiment_roots(&project.root).map_err(CliError::from)?;
    roots.extend(kept);
    let report = project
        .cache
        .gc(&roots, args.keep_runs, args.dry)
        .map_err(pipe::Error::from)?;
    let verb = if args.dry { "would remove" } else { "removed" };
    if report.quarantined_removed > 0 {
        print(&format!(
            "removed {} damaged objects set aside in quarantine/\n",
            report.quarantined_removed
        ))?;
    }
    print(&format!(
        "{verb} {} objects ({:.1} MB) and {} run-cache entries; kept {} objects\n",
        report.objects_removed,
        report.bytes_removed as f64 / 1e6,
        report.runs_removed,
        report.objects_kept
    ))?;
    Ok(ExitCode::SUCCESS)
}
