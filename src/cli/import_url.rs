//! `pipe import-url` and `pipe update`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::cache::human_bytes;
use pipe::gitignore::GitIgnorer;
use pipe::track::{self, import, Tracker};

use super::{load_data_project, lock_project, print, CliError};

/// Download a file into the project and track it with the URL and version
/// it came from, as `dvc import-url` does: PATH.dvc records the source
/// (`deps`) and the data's hash (`outs`), so that `pipe update` fetches it
/// again only when the source changed. URLs: s3://, gs://, azure://,
/// http(s)://, remote://NAME/path, or a local path.
#[derive(Debug, Args)]
pub struct ImportUrlArgs {
    /// Where the data is.
    pub url: String,
    /// Where to put it in the project [default: the URL's file name, here].
    pub path: Option<String>,
    /// Replace PATH and PATH.dvc if they exist.
    #[arg(short, long)]
    pub force: bool,
}

/// Download imported data again where its source changed: asks each
/// source for its version (one HEAD request; a local source is read) and
/// downloads only what differs from the version the .dvc file records.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The .dvc files of imports (or the paths they import); every import
    /// in the project when omitted.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Replace imported data that was edited since it was imported.
    #[arg(short, long)]
    pub force: bool,
}

pub fn import_url(cwd: &Path, args: ImportUrlArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, true)?;
    let name = args.path.clone().unwrap_or_else(|| {
        args.url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let path = track::project_path(&project, cwd, &name).ok_or_else(|| CliError {
        message: format!(
            "{name} is not inside the project ({})",
            project.root.display()
        ),
        hints: vec!["give a PATH inside the project".into()],
        code: 2,
    })?;
    let _guard = lock_project(&project)?;
    project.cache.clean_staging();
    let hasher = project.hasher();
    let tracker = Tracker::new(&project, &hasher);
    let files = track::discover(&project)?;
    let mut ignorer = GitIgnorer::new(&project.root);
    let done = import::import_url(
        &project,
        &tracker,
        &files,
        (cwd, &args.url),
        &path,
        args.force,
        &mut ignorer,
    );
    tracker.save();
    let done = done?;
    project.cache.save_verified();
    print(&format!(
        "Imported {} ({}): {}\n",
        done.path,
        human_bytes(done.size),
        done.file
    ))?;
    let mut to_git = vec![done.file.to_string()];
    to_git.extend(done.gitignore.map(|g| g.to_string()));
    eprintln!(
        "To track the changes with git, run:\n\n    git add {}\n",
        to_git.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn update(cwd: &Path, args: UpdateArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, false)?;
    let _guard = lock_project(&project)?;
    project.cache.clean_staging();
    let hasher = project.hasher();
    let tracker = Tracker::new(&project, &hasher);
    let files = track::discover(&project)?;
    let chosen: Vec<track::DvcFile> = if args.targets.is_empty() {
        files
            .iter()
            .filter(|f| !f.deps.is_empty())
            .cloned()
            .collect()
    } else {
        let (unknown, chosen) = track::split_targets(&project, cwd, &files, &args.targets);
        if let Some(t) = unknown.first() {
            return Err(CliError {
                message: format!("{t} is not a .dvc file of this project, nor data one tracks"),
                hints: vec![
                    "name the .dvc file of an import (`pipe import-url` writes PATH.dvc)".into(),
                ],
                code: 2,
            });
        }
        chosen
    };
    let mut ignorer = GitIgnorer::new(&project.root);
    let mut out = String::new();
    let mut to_git = Vec::new();
    let mut result = Ok(());
    for file in &chosen {
        match import::update(&project, &tracker, &file.file, args.force, &mut ignorer) {
            Ok(done) if done.downloaded => {
                out.push_str(&format!(
                    "Updated {} ({}): {}\n",
                    done.path,
                    human_bytes(done.size),
                    done.file
                ));
                to_git.push(done.file.to_string());
                to_git.extend(done.gitignore.map(|g| g.to_string()));
            }
            Ok(done) => out.push_str(&format!("{} is up to date with its source\n", done.path)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    tracker.save();
    let _ = hasher.save();
    project.cache.save_verified();
    if chosen.is_empty() {
        out.push_str("No imports to update.\n");
    }
    print(&out)?;
    if !to_git.is_empty() {
        eprintln!(
            "To track the changes with git, run:\n\n    git add {}\n",
            to_git.join(" ")
        );
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
