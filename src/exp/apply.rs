//! `pipe exp apply`: an experiment's changes and outputs into the workspace.
//!
//! What is written is what the experiment changed: the files that differ
//! between its baseline and its commit (params, `pipeline.lock`, metrics,
//! and any code it ran with), files it deleted are deleted; then the
//! outputs its lock records are checked out from the cache. `HEAD`, the
//! branch and the index are left alone, so `git status` shows the applied
//! changes, ready to commit.
//!
//! Nothing that could be lost is overwritten without `force`. Before
//! anything is written, apply refuses, naming each path, when:
//!
//! - a file it would write is tracked and differs from `HEAD` (uncommitted
//!   work), or is untracked, not an output, and differs from the
//!   experiment's version;
//! - `HEAD` moved past the experiment's baseline and changed the same file
//!   (applying would silently undo that change);
//! - an output (in the workspace's lock or the experiment's) holds content
//!   that neither lock records (a hand edit);
//! - the cache lacks an output the experiment recorded (apply could not
//!   finish; rerun the experiment).

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::Experiment;
use crate::checkout::{checkout, CheckoutItem};
use crate::error::Error;
use crate::git::{Change, GitError, Repo};
use crate::lock::{LockFile, PathRecord, LOCK_FILE};
use crate::paths::RelPath;
use crate::project::Project;

/// What apply changed.
#[derive(Debug)]
pub struct Applied {
    pub written: Vec<RelPath>,
    pub deleted: Vec<RelPath>,
    pub outputs: Vec<CheckoutItem>,
}

/// The experiment's lock (empty when it has none).
fn experiment_lock(repo: &Repo, exp: &Experiment) -> Result<LockFile, Error> {
    let path = RelPath::from_normalized(LOCK_FILE);
    match repo.read(exp.commit, &path)? {
        Some(bytes) => Ok(LockFile::from_bytes(&bytes)?),
        None => Ok(LockFile::default()),
    }
}

fn outs(lock: &LockFile) -> impl Iterator<Item = &PathRecord> {
    lock.stages.values().flat_map(|s| s.outs.iter())
}

/// Everything that stops apply without `force`, one line each, given the
/// experiment's `changes` against its baseline and its lock.
fn blockers(
    project: &Project,
    repo: &Repo,
    exp: &Experiment,
    changes: &[Change],
    exp_lock: &LockFile,
) -> Result<Vec<String>, Error> {
    let changed: BTreeSet<&RelPath> = changes.iter().map(|(p, _)| p).collect();
    let workspace_lock = LockFile::read(&project.root)?;
    let output_paths: BTreeSet<&RelPath> = outs(&workspace_lock)
        .chain(outs(exp_lock))
        .map(|r| &r.path)
        .collect();
    let mut out = Vec::new();

    let dirty: BTreeSet<RelPath> = repo.changed_tracked_files()?.into_iter().collect();
    let head = repo.head()?;
    let moved: BTreeSet<RelPath> = match head {
        Some(head) if head != exp.baseline => repo
            .changed_between(exp.baseline, head)?
            .into_iter()
            .map(|(p, _)| p)
            .collect(),
        _ => BTreeSet::new(),
    };
    for (path, content) in changes {
        if dirty.contains(path) {
            out.push(format!("{path} (uncommitted changes)"));
        } else if moved.contains(path) {
            out.push(format!(
                "{path} (changed in HEAD since the experiment's baseline)"
            ));
        } else if !output_paths.contains(path) && !is_tracked(repo, head, path)? {
            // An untracked file that is not an output: keep it unless it
            // already equals what would be written.
            let now = std::fs::read(path.to_path(&project.root)).ok();
            let new = match content {
                Some((blob, _)) => Some(blob_bytes(repo, *blob, path)?),
                None => None,
            };
            if now.is_some() && now != new {
                out.push(format!("{path} (untracked file)"));
            }
        }
    }

    let hasher = project.hasher();
    for path in &output_paths {
        if changed.contains(path) && dirty.contains(*path) {
            continue; // listed above
        }
        let Some(now) = hasher.hash_output(path)? else {
            continue;
        };
        let known = outs(&workspace_lock)
            .chain(outs(exp_lock))
            .any(|r| &r.path == *path && r.blake3 == now.hash);
        if !known {
            out.push(format!("{path} (output modified since it was recorded)"));
        }
    }
    let _ = hasher.save();
    Ok(out)
}

/// The cached outputs the experiment's `lock` records that the cache no
/// longer holds.
fn missing_from_cache(project: &Project, lock: &LockFile) -> Vec<RelPath> {
    let cached: BTreeSet<&RelPath> = project
        .pipeline
        .stages
        .iter()
        .flat_map(|s| s.outs.iter())
        .filter(|o| o.cache)
        .map(|o| &o.path)
        .collect();
    outs(lock)
        .filter(|r| cached.contains(&r.path) && !project.cache.contains(r))
        .map(|r| r.path.clone())
        .collect()
}

fn is_tracked(repo: &Repo, head: Option<git2::Oid>, path: &RelPath) -> Result<bool, Error> {
    Ok(match head {
        Some(head) => repo.read(head, path)?.is_some(),
        None => false,
    })
}

fn blob_bytes(repo: &Repo, blob: git2::Oid, path: &RelPath) -> Result<Vec<u8>, Error> {
    repo.raw()
        .find_blob(blob)
        .map(|b| b.content().to_vec())
        .map_err(GitError::wrap(format!("read {path}")))
        .map_err(Error::from)
}

/// Applies `exp` to the workspace at `root`; see the module docs.
pub fn apply(root: &Path, repo: &Repo, exp: &Experiment, force: bool) -> Result<Applied, Error> {
    let project = Project::load(root)?;
    let changes = repo.changed_between(exp.baseline, exp.commit)?;
    if !force {
        let exp_lock = experiment_lock(repo, exp)?;
        let blockers = blockers(&project, repo, exp, &changes, &exp_lock)?;
        if !blockers.is_empty() {
            return Err(Error::Refused {
                message: format!(
                    "applying {} would overwrite work in the workspace:\n  {}",
                    exp.name,
                    blockers.join("\n  ")
                ),
                hint: Some("commit or stash it first, or pass --force to overwrite it".into()),
            });
        }
        let missing = missing_from_cache(&project, &exp_lock);
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
            return Err(Error::Refused {
                message: format!(
                    "the cache no longer holds outputs of {}: {}",
                    exp.name,
                    names.join(", ")
                ),
                hint: Some(format!(
                    "run it again (`pipe exp diff {0}` shows its params), or pass --force to apply its files without those outputs",
                    exp.name
                )),
            });
        }
    }
    let mut written = Vec::new();
    let mut deleted = Vec::new();
    // Every write goes through the workspace handle: a path of the
    // experiment's commit never leads outside the project.
    let ws = &project.workspace;
    for (path, content) in changes {
        let abs = path.to_path(root);
        match content {
            None => {
                // A file the experiment deleted; a directory in its place
                // now is the user's, and stays.
                if std::fs::symlink_metadata(&abs).is_ok_and(|m| !m.is_dir()) {
                    ws.remove(&path)?;
                    deleted.push(path);
                }
            }
            Some((blob, 0o120000)) => {
                let target = std::path::PathBuf::from(std::ffi::OsString::from_vec(blob_bytes(
                    repo, blob, &path,
                )?));
                if std::fs::read_link(&abs).is_ok_and(|now| now == target) {
                    continue;
                }
                ws.symlink(&path, &target)?;
                written.push(path);
            }
            Some((blob, mode)) => {
                let bytes = blob_bytes(repo, blob, &path)?;
                if std::fs::read(&abs).is_ok_and(|now| now == bytes) {
                    continue;
                }
                ws.write(&path, &bytes, mode == 0o100755)?;
                written.push(path);
            }
        }
    }
    let project = Project::load(root)?;
    let all: Vec<usize> = (0..project.pipeline.stages.len()).collect();
    let outputs = checkout(&project, &all, true)?;
    Ok(Applied {
        written,
        deleted,
        outputs,
    })
}
