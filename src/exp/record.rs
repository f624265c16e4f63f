//! Recording an experiment: a commit on its baseline, and its ref.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use git2::Oid;

use super::overrides::Override;
use crate::error::Error;
use crate::git::{FileContent, FileKind, GitError, Repo};
use crate::paths::RelPath;

/// Commits the files `paths` as they are under `dir` (the project root of
/// the copy that ran) over the tree of `start` (see [`start_commit`]), as a
/// child of `baseline`, and points its ref (see
/// [`Repo::experiment_ref`]) at the commit. A path
/// absent from `dir` is removed from the tree. Those of `paths` that are
/// `outputs` are committed by content even when they are symlinks (links
/// into the cache, with `cache.link = symlink`). Returns the commit.
pub fn record(
    repo: &Repo,
    dir: &Path,
    (baseline, start): (Oid, Oid),
    name: &str,
    (paths, outputs): (&[RelPath], &BTreeSet<RelPath>),
    overrides: &[Override],
) -> Result<Oid, Error> {
    let files = read_files(dir, paths, &format!("experiment {name}"), |path| {
        outputs.contains(path)
    })?;
    let mut message = format!("pipe experiment {name}\n");
    if !overrides.is_empty() {
        message.push('\n');
        for o in overrides {
            message.push_str(&format!("-S {o}\n"));
        }
    }
    if let Some(trailer) = repo.project_trailer() {
        message.push_str(&format!("\n{trailer}\n"));
    }
    let commit = repo.commit_files(start, baseline, &files, &message)?;
    repo.raw()
        .reference(
            &repo.experiment_ref(baseline, name),
            commit,
            false,
            &format!("pipe exp run: {name}"),
        )
        .map_err(GitError::wrap(format!(
            "create the ref of experiment {name}"
        )))
        .map_err(Error::from)?;
    Ok(commit)
}

/// What an experiment starts from: `baseline` with the workspace's
/// uncommitted changes to tracked files (an unreferenced commit; the
/// baseline itself when there are none). Experiments run from a copy of
/// this tree, so that they see the code as it is in the workspace.
pub fn start_commit(repo: &Repo, root: &Path, baseline: Oid) -> Result<Oid, Error> {
    let changed = repo.changed_tracked_files()?;
    if changed.is_empty() {
        return Ok(baseline);
    }
    let files = read_files(root, &changed, "the experiment's start", |_| false)?;
    Ok(repo.commit_files(
        baseline,
        baseline,
        &files,
        "pipe experiment start: workspace changes",
    )?)
}

/// `paths` under `dir` as git would commit them: a file's bytes and
/// executable bit, a symlink's target (what it points to for the paths
/// `follow` picks), or `None` when absent.
fn read_files(
    dir: &Path,
    paths: &[RelPath],
    what: &str,
    follow: impl Fn(&RelPath) -> bool,
) -> Result<Vec<FileContent>, Error> {
    let mut files = Vec::new();
    for path in paths {
        let abs = path.to_path(dir);
        let io = |source| Error::Io {
            message: format!("cannot read {path} for {what}"),
            source,
        };
        let meta = if follow(path) {
            std::fs::metadata(&abs)
        } else {
            std::fs::symlink_metadata(&abs)
        };
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                files.push((path.clone(), None));
                continue;
            }
            Err(source) => return Err(io(source)),
        };
        if meta.is_dir() {
            // A tracked file replaced by a directory: to git the file is
            // gone (the directory's files are untracked).
            files.push((path.clone(), None));
            continue;
        }
        let content = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&abs).map_err(io)?;
            (
                target.into_os_string().into_encoded_bytes(),
                FileKind::Symlink,
            )
        } else {
            let kind = if meta.permissions().mode() & 0o111 != 0 {
                FileKind::Executable
            } else {
                FileKind::Regular
            };
            (std::fs::read(&abs).map_err(io)?, kind)
        };
        files.push((path.clone(), Some(content)));
    }
    Ok(files)
}
