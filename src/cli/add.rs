//! `pipe add`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::cache::human_bytes;
use pipe::gitignore::GitIgnorer;
use pipe::track::{self, Tracker};

use super::{load_data_project, lock_project, print, CliError};

/// Track data files or directories by content, as `dvc add` does: each
/// goes into the cache, PATH.dvc (DVC's format) records its hash for git,
/// and PATH goes into .gitignore. `pipe checkout` restores the version a
/// commit's .dvc file records; `pipe push`/`pull` move it; adding a
/// changed file again records its new version.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or directories to track.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

pub fn run(cwd: &Path, args: AddArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, true)?;
    let _guard = lock_project(&project)?;
    project.cache.clean_staging();
    let hasher = project.hasher();
    let tracker = Tracker::new(&project, &hasher);
    let mut files = track::discover(&project)?;
    let mut ignorer = GitIgnorer::new(&project.root);
    let mut out = String::new();
    let mut to_git = Vec::new();
    for text in &args.paths {
        let path = track::project_path(&project, cwd, text).ok_or_else(|| CliError {
            message: format!(
                "{text} is not inside the project ({})",
                project.root.display()
            ),
            hints: vec!["pipe tracks data inside the project: copy it in first".into()],
            code: 2,
        })?;
        let added = track::add(&project, &tracker, &files, &path, &mut ignorer);
        let _ = hasher.save();
        tracker.save();
        let added = added?;
        let what = match added.nfiles {
            Some(n) => format!("{n} files, {}", human_bytes(added.size)),
            None => human_bytes(added.size),
        };
        if added.unchanged {
            out.push_str(&format!(
                "{} is unchanged ({what}): {}\n",
                added.path, added.file
            ));
        } else {
            out.push_str(&format!("Added {} ({what}): {}\n", added.path, added.file));
        }
        to_git.push(added.file.to_string());
        to_git.extend(added.gitignore.map(|g| g.to_string()));
        files = track::discover(&project)?;
    }
    project.cache.save_verified();
    print(&out)?;
    to_git.sort();
    to_git.dedup();
    eprintln!(
        "To track the changes with git, run:\n\n    git add {}\n",
        to_git.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}
