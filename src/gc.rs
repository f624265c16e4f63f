//! What `pipe gc` keeps: the outputs that the `pipeline.lock` of each
//! place in its scope records.
//!
//! The scopes are DVC's (`dvc gc`): the workspace (`-w`), the tip of every
//! branch (`-a`), every tag (`-T`), every commit reachable from a branch,
//! a tag or `HEAD` (`-A`), and chosen revisions (`--rev`, each with its
//! `n - 1` first-parent ancestors). The workspace is always in scope, and
//! so is every experiment (`refs/exps/`), whose outputs `pipe exp apply`
//! restores. A scope that names nothing is refused by the caller: gc
//! without one would have to guess what may go.
//!
//! Each lock is read from git (through [`Repo`], never by checking
//! anything out); commits that share a lock's content read it once, so
//! `-A` on a long history costs a tree lookup per commit. A lock in scope
//! that cannot be read is an error, and nothing is removed: gc cannot know
//! what it records. A commit without `pipeline.lock` records nothing.
//!
//! Tracked data is kept the same way: what the `.dvc` files of the
//! workspace and of each commit in scope record ([`crate::track`]). A
//! `.dvc` file in scope that cannot be read is an error too.

use std::collections::BTreeSet;

use crate::error::Error;
use crate::git::{GitError, Repo, Rev};
use crate::lock::{LockFile, PathRecord, LOCK_FILE};
use crate::paths::RelPath;
use crate::project::Project;
use crate::track::{self, Tracker};

/// The places whose locks `gc` keeps (besides the workspace and the
/// experiments, always kept).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub all_branches: bool,
    pub all_tags: bool,
    pub all_commits: bool,
    /// Revisions as git understands them (or experiment names).
    pub revs: Vec<String>,
    /// With `revs`: how many commits from each, along first parents.
    pub num: usize,
}

impl Scope {
    /// True when only the workspace (and the experiments) are kept.
    pub fn workspace_only(&self) -> bool {
        !self.all_branches && !self.all_tags && !self.all_commits && self.revs.is_empty()
    }
}

/// What the scope keeps, and what it was read from.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub records: Vec<PathRecord>,
    /// The fingerprints of the kept stage runs (their run-cache keys).
    pub runs: BTreeSet<crate::hash::Digest>,
    /// How many commits' locks were read (not counting experiments).
    pub commits: usize,
    pub experiments: usize,
}

impl Kept {
    fn add(&mut self, lock: LockFile) {
        for stage in lock.stages.into_values() {
            self.runs.insert(stage.fingerprint().digest());
            self.records.extend(stage.outs);
        }
    }
}

/// Reads the locks of the workspace, of every commit in `scope` and of
/// every experiment.
pub fn kept(project: &Project, scope: &Scope) -> Result<Kept, Error> {
    let mut kept = Kept::default();
    let lock = LockFile::read(&project.root)?;
    kept.add(lock);
    let hasher = project.hasher();
    let tracker = Tracker::new(project, &hasher);
    for file in track::discover(project)? {
        for out in file.outs.iter().filter(|o| o.cache) {
            kept.records.extend(tracker.record(out, false)?);
        }
    }
    let repo = match Repo::discover(&project.root, "pipe gc -a, -T, -A or --rev") {
        Ok(repo) => repo,
        Err(GitError::NotARepo { .. }) if scope.workspace_only() => return Ok(kept),
        Err(e) => return Err(e.into()),
    };
    let lock_path = RelPath::from_normalized(LOCK_FILE);
    let mut read_blobs = BTreeSet::new();
    let mut dvc_blobs = BTreeSet::new();
    let mut read = |kept: &mut Kept, rev: &Rev, what: &str| -> Result<(), Error> {
        let (files, bad) = track::files_at(&repo, rev.oid, &mut dvc_blobs)?;
        if let Some(e) = bad.first() {
            return Err(Error::Refused {
                message: format!("cannot read a .dvc file of {what} ({}): {e}", Repo::short(rev.oid)),
                hint: Some(
                    "nothing was removed: gc must read every .dvc file it keeps; narrow the scope (-w, --rev)"
                        .into(),
                ),
            });
        }
        for file in &files {
            kept.records.extend(track::records_of(&tracker.index, file));
        }
        let Some(blob) = repo.blob_id(rev.oid, &lock_path)? else {
            return Ok(());
        };
        if !read_blobs.insert(blob) {
            return Ok(());
        }
        let lock = LockFile::from_bytes(&repo.blob(blob)?).map_err(|e| Error::Refused {
            message: format!(
                "cannot read the pipeline.lock of {what} ({}): {e}",
                Repo::short(rev.oid)
            ),
            hint: Some(
                "nothing was removed: gc must read every lock it keeps; narrow the scope (-w, --rev), or remove what cannot be read"
                    .into(),
            ),
        })?;
        kept.add(lock);
        Ok(())
    };
    let mut commits: Vec<(Rev, String)> = Vec::new();
    if scope.all_commits {
        commits.extend(repo.all_commits()?.into_iter().map(|oid| {
            let rev = Rev {
                oid,
                label: Repo::short(oid),
            };
            (rev, "a commit".to_string())
        }));
    } else {
        if scope.all_branches {
            commits.extend(
                repo.branches()?
                    .into_iter()
                    .map(|r| (r.clone(), format!("branch {}", r.label))),
            );
        }
        if scope.all_tags {
            commits.extend(
                repo.tags()?
                    .into_iter()
                    .map(|r| (r.clone(), format!("tag {}", r.label))),
            );
        }
    }
    for rev in &scope.revs {
        let from = repo.resolve(rev)?;
        for r in repo.first_parents(from.oid, scope.num.max(1))? {
            commits.push((r, format!("revision {rev}")));
        }
    }
    let mut seen = BTreeSet::new();
    for (rev, what) in &commits {
        if seen.insert(rev.oid) {
            read(&mut kept, rev, what)?;
        }
    }
    kept.commits = seen.len();
    for exp in crate::exp::list(&repo)? {
        kept.experiments += 1;
        let rev = Rev {
            oid: exp.commit,
            label: exp.name.clone(),
        };
        read(&mut kept, &rev, &format!("experiment {}", exp.name)).map_err(|e| match e {
            Error::Refused { message, .. } => Error::Refused {
                message,
                hint: Some(format!(
                    "nothing was removed; `pipe exp remove {}` if it is not needed",
                    exp.name
                )),
            },
            other => other,
        })?;
    }
    Ok(kept)
}
