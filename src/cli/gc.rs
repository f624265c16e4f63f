//! `pipe gc`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::lock::LockFile;
use pipe::run::{Event, Reporter, ReproLock};

use super::progress::Progress;
use super::{load_project, print, CliError};

/// Remove from the cache every object that pipeline.lock does not record.
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

pub fn run(cwd: &Path, args: GcArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let progress = Progress::new();
    let _guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(Event::WaitingForLock { holder });
    })?;
    progress.finish();
    let lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let roots: Vec<_> = lock
        .stages
        .values()
        .flat_map(|s| s.outs.iter().cloned())
        .collect();
    let report = project
        .cache
        .gc(&roots, args.keep_runs, args.dry)
        .map_err(pipe::Error::from)?;
    let verb = if args.dry { "would remove" } else { "removed" };
    print(&format!(
        "{verb} {} objects ({:.1} MB) and {} run-cache entries; kept {} objects\n",
        report.objects_removed,
        report.bytes_removed as f64 / 1e6,
        report.runs_removed,
        report.objects_kept
    ))?;
    Ok(ExitCode::SUCCESS)
}
