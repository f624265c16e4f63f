//! `pipe exp apply`: an experiment's files and outputs into the workspace.
//!
//! Every project file of the experiment's commit that differs from the
//! workspace is written (params, `pipeline.lock`, metrics, and any code the
//! experiment changed), then the outputs its lock records are checked out
//! from the cache. `HEAD`, the branch and the index are left alone, so
//! `git status` shows the applied changes, ready to commit.
//!
//! Nothing is overwritten without `force` when the workspace has work that
//! would be lost: tracked files that differ from `HEAD`, or outputs that
//! differ from what `pipeline.lock` records.

use std::path::Path;

use super::Experiment;
use crate::checkout::{checkout, CheckoutItem};
use crate::error::Error;
use crate::git::Repo;
use crate::lock::LockFile;
use crate::paths::RelPath;
use crate::project::Project;

/// What apply changed.
#[derive(Debug)]
pub struct Applied {
    pub files: Vec<RelPath>,
    pub outputs: Vec<CheckoutItem>,
}

/// The workspace changes that apply would overwrite: tracked files that
/// differ from `HEAD`, and outputs that differ from the lock.
pub fn blockers(project: &Project, repo: &Repo) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = repo
        .changed_tracked_files()?
        .into_iter()
        .map(|p| p.to_string())
        .collect();
    let lock = LockFile::read(&project.root)?;
    let hasher = project.hasher();
    for record in lock.stages.values().flat_map(|s| s.outs.iter()) {
        if let Some(now) = hasher.hash(&record.path)? {
            if now.hash != record.blake3 && !out.contains(&record.path.to_string()) {
                out.push(format!("{} (output)", record.path));
            }
        }
    }
    let _ = hasher.save();
    Ok(out)
}

/// Applies `exp` to the workspace at `root`; see the module docs.
pub fn apply(root: &Path, repo: &Repo, exp: &Experiment, force: bool) -> Result<Applied, Error> {
    let project = Project::load(root)?;
    if !force {
        let blockers = blockers(&project, repo)?;
        if !blockers.is_empty() {
            return Err(Error::Refused {
                message: format!(
                    "the workspace has changes that applying {} would overwrite:\n  {}",
                    exp.name,
                    blockers.join("\n  ")
                ),
                hint: Some("commit or stash them first, or pass --force to overwrite them".into()),
            });
        }
    }
    let mut files = Vec::new();
    for (path, blob_id, mode) in repo.tree_files(exp.commit)? {
        if mode == 0o120000 {
            continue;
        }
        let blob = repo.raw().find_blob(blob_id).map_err(|source| {
            Error::Git(crate::git::GitError::Git {
                action: format!("read {path}"),
                source,
            })
        })?;
        let abs = path.to_path(root);
        if std::fs::read(&abs).is_ok_and(|now| now == blob.content()) {
            continue;
        }
        write_file(&abs, blob.content(), mode == 0o100755).map_err(|source| Error::Io {
            message: format!("cannot write {path}"),
            source,
        })?;
        files.push(path);
    }
    let project = Project::load(root)?;
    let all: Vec<usize> = (0..project.pipeline.stages.len()).collect();
    let outputs = checkout(&project, &all, true)?;
    Ok(Applied { files, outputs })
}

/// Replaces `abs` whole, by rename: a reader never sees half a file.
fn write_file(abs: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = abs.parent().expect("a project file has a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    tmp.persist(abs).map_err(|e| e.error)?;
    Ok(())
}
