//! Running one queued experiment away from the workspace.
//!
//! The experiment's baseline commit is written out into a temporary
//! directory under `.pipeline-cache/exp-runs/`, its params are set there,
//! and `pipe repro` runs in it as a child process with `PIPE_CACHE_DIR`
//! pointing at the project's cache: stages that ran before (in the
//! workspace or in another experiment) are restored from the run cache,
//! the rest run, and every output lands in the one shared cache. Only the
//! lock-free parts of the cache are shared (objects and run records are
//! written by rename); each copy has its own repro lock and stat cache, so
//! several experiments run at once without waiting for each other.
//!
//! Dependencies that git does not track and no stage writes (the raw data
//! a pipeline starts from, usually `.gitignore`d) are copied in from the
//! workspace (reflinked where the filesystem can).
//!
//! On success the result is recorded ([`super::record`]) and the directory
//! deleted. The child's output goes to the terminal (one experiment) or is
//! kept in `.pipeline-cache/exp-logs/` (a queue run in parallel).
//!
//! The workspace is never written: after `pipe exp run`, `git status` is
//! what it was, and `pipe exp apply` brings a result in when it is wanted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::Oid;

use super::overrides;
use super::queue::Queued;
use super::record::record;
use crate::compare;
use crate::error::Error;
use crate::git::Repo;
use crate::lock::LOCK_FILE;
use crate::paths::RelPath;
use crate::project::{Project, CACHE_DIR_ENV};

/// What a failed experiment leaves for the user.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// The child's output, when it ran.
    pub log: Option<PathBuf>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            message: e.to_string(),
            log: None,
        }
    }
}

fn io(message: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { message, source }
}

/// The log file of experiment `name`.
pub fn log_path(cache_root: &Path, name: &str) -> PathBuf {
    cache_root.join("exp-logs").join(format!("{name}.log"))
}

/// Where the child `pipe repro` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Terminal,
    LogFile,
}

/// Runs `queued` for the project at `root` with the `pipe` executable
/// `pipe_exe`; returns the recorded commit.
pub fn run(root: &Path, queued: &Queued, pipe_exe: &Path, output: Output) -> Result<Oid, Failure> {
    let repo = Repo::discover(root, "pipe exp run").map_err(Error::from)?;
    let cache_root = root.join(crate::cache::CACHE_DIR);
    let oid = |hex: &str| {
        Oid::from_str(hex).map_err(|_| Failure {
            message: format!("queue entry {} names a bad commit `{hex}`", queued.name),
            log: None,
        })
    };
    let (baseline, start) = (oid(&queued.baseline)?, oid(&queued.start)?);
    let runs = cache_root.join("exp-runs");
    std::fs::create_dir_all(&runs).map_err(io(format!("cannot create {}", runs.display())))?;
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", queued.name))
        .tempdir_in(&runs)
        .map_err(io(format!(
            "cannot create a directory in {}",
            runs.display()
        )))?;
    let dir = work.path();
    write_tree(&repo, start, dir)?;
    overrides::apply(dir, &queued.overrides)?;
    let copy = Project::load(dir)?;
    copy_external_deps(&copy, root, dir)?;

    let mut child = Command::new(pipe_exe);
    child
        .arg("-C")
        .arg(dir)
        .arg("repro")
        .env(CACHE_DIR_ENV, &cache_root)
        .stdin(Stdio::null());
    let log = match output {
        Output::Terminal => None,
        Output::LogFile => {
            let log = log_path(&cache_root, &queued.name);
            if let Some(parent) = log.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io(format!("cannot create {}", parent.display())))?;
            }
            let out = std::fs::File::create(&log)
                .map_err(io(format!("cannot create {}", log.display())))?;
            let err = out
                .try_clone()
                .map_err(io(format!("cannot open {}", log.display())))?;
            child.stdout(out).stderr(err);
            Some(log)
        }
    };
    let status = child
        .status()
        .map_err(io(format!("cannot start {}", pipe_exe.display())))?;
    if !status.success() {
        return Err(Failure {
            message: format!("pipe repro failed ({status})"),
            log,
        });
    }
    let mut paths: Vec<RelPath> = compare::params_files(&copy).into_keys().collect();
    paths.push(RelPath::from_normalized(LOCK_FILE));
    paths.extend(compare::metric_files(&copy));
    paths.sort();
    paths.dedup();
    let commit = record(
        &repo,
        dir,
        (baseline, start),
        &queued.name,
        &paths,
        &queued.overrides,
    )?;
    Ok(commit)
}

/// Writes the project files of commit `oid` under `dir`.
fn write_tree(repo: &Repo, oid: Oid, dir: &Path) -> Result<(), Error> {
    for (path, blob, mode) in repo.tree_files(oid)? {
        let abs = path.to_path(dir);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("cannot create {}", parent.display())))?;
        }
        let blob = repo.raw().find_blob(blob).map_err(|source| {
            Error::Git(crate::git::GitError::Git {
                action: format!("read {path}"),
                source,
            })
        })?;
        if mode == 0o120000 {
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            std::os::unix::fs::symlink(target, &abs)
                .map_err(io(format!("cannot write {}", abs.display())))?;
            continue;
        }
        std::fs::write(&abs, blob.content())
            .map_err(io(format!("cannot write {}", abs.display())))?;
        if mode == 0o100755 {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(())
}

/// Copies from `root` the deps of `copy` that are not there and that no
/// stage writes.
fn copy_external_deps(copy: &Project, root: &Path, dir: &Path) -> Result<(), Error> {
    let outs: Vec<&RelPath> = copy
        .pipeline
        .stages
        .iter()
        .flat_map(|s| s.outs.iter().map(|o| &o.path))
        .collect();
    for dep in copy.pipeline.stages.iter().flat_map(|s| s.deps.iter()) {
        let target = dep.to_path(dir);
        if target.exists() || outs.iter().any(|o| dep.overlaps(o)) {
            continue;
        }
        let source = dep.to_path(root);
        if source.is_dir() {
            for entry in walkdir::WalkDir::new(&source).into_iter().flatten() {
                let rel = entry
                    .path()
                    .strip_prefix(&source)
                    .expect("walk stays inside");
                let to = target.join(rel);
                if entry.file_type().is_dir() {
                    std::fs::create_dir_all(&to)
                        .map_err(io(format!("cannot create {}", to.display())))?;
                } else {
                    copy_file(entry.path(), &to)?;
                }
            }
        } else if source.is_file() {
            copy_file(&source, &target)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
    }
    reflink_copy::reflink_or_copy(from, to)
        .map(|_| ())
        .map_err(io(format!(
            "cannot copy {} into an experiment",
            from.display()
        )))
}
