//! Running one queued experiment away from the workspace.
//!
//! The experiment's start commit is written out into a temporary copy under
//! `.pipeline-cache/exp-runs/` (see [`super::copies`]), its params are set
//! there, and `pipe repro` runs in it as a child process with
//! `PIPE_CACHE_DIR` pointing at the project's cache: stages that ran before
//! (in the workspace or in another experiment) are restored from the run
//! cache, the rest run, and every output lands in the one shared cache.
//! Only the objects, the run records and the staging area are shared (all
//! written by rename); each copy has its own repro lock and stat cache, so
//! several experiments run at once without waiting for each other. While
//! one runs it holds a shared lock on `.pipeline-cache/experiments.lock`,
//! which `pipe gc` takes exclusively: gc never removes what a running
//! experiment is writing.
//!
//! Tracked data (`.dvc` files, [`crate::track`]) is put in place from the
//! cache, in the version the start commit's `.dvc` files record, as
//! `pipe checkout` would: verified objects, reflinked (or copied), or hard
//! linked when the project's cache links are hard links (the object is
//! read-only, as the user's own hard-linked copy is). Never a symlink into
//! the cache and never the user's file itself: a stage that writes into its
//! data in an experiment changes neither the cache nor the user's copy.
//! Data the cache lacks is stored in it first from the workspace when the
//! workspace holds that version (or from DVC's cache); otherwise the run
//! is refused, naming the data (`pipe pull` fetches it).
//!
//! What git does not have otherwise is copied in from the workspace
//! (reflinked where the filesystem can): the files under each dependency
//! that git does not track, no stage writes and no `.dvc` file tracks (the
//! raw data a pipeline starts from, usually `.gitignore`d), and the outputs
//! of frozen stages, which do not run.
//!
//! The copy is a git repository of its own whose `HEAD` is the baseline, and
//! the stages see what DVC gives the stages of `dvc exp run`:
//! `DVC_EXP_BASELINE_REV` (the baseline's full hash) and `DVC_EXP_NAME`, as
//! well as `DVC_ROOT` and `DVC_STAGE` (set for every stage by
//! [`crate::run::command`]). Tools such as dvclive read them to know that an
//! experiment runner records the result, and do not record one of their own.
//!
//! The caller has claimed the experiment's name ([`super::claim`]) before
//! anything of this runs. Then the result is recorded ([`super::record`])
//! and the copy deleted, whether the run succeeded or not. The child's
//! output goes to the terminal (one experiment) or to
//! `.pipeline-cache/exp-logs/` (a queue). The child dies with its parent,
//! so killing `pipe exp run` stops it; a stop signal the caller catches
//! ([`Stop`]) is passed on to the child, whose end is waited for, and the
//! experiment is then not recorded.
//!
//! The workspace is never written: after `pipe exp run`, `git status` is
//! what it was, and `pipe exp apply` brings a result in when it is wanted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use git2::Oid;

use super::claim::NameClaim;
use super::copies::RunCopy;
use super::overrides;
use super::queue::Queued;
use super::record::record;
use crate::cache::LinkMode;
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
    /// The stop signal that interrupted it, when one did.
    pub interrupted: Option<i32>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        // The error's hint goes with it: the caller adds its own.
        let message = match e.hint() {
            Some(hint) => format!("{e}\n  hint: {hint}"),
            None => e.to_string(),
        };
        Failure {
            message,
            log: None,
            interrupted: None,
        }
    }
}

/// A request to stop, which a signal handler sets: the signal's number, 0
/// while there is none.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicUsize>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// The flag to give a signal handler (it stores the signal's number).
    pub fn flag(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.0)
    }

    /// The signal that asked to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as i32),
        }
    }
}

/// The environment variable DVC gives `dvc exp run`'s stages: the
/// baseline commit.
pub const DVC_EXP_BASELINE_REV: &str = "DVC_EXP_BASELINE_REV";
/// ... and the experiment's name.
pub const DVC_EXP_NAME: &str = "DVC_EXP_NAME";

/// The log file of experiment `name`.
pub fn log_path(cache_root: &Path, name: &str) -> PathBuf {
    cache_root.join("exp-logs").join(format!("{name}.log"))
}

/// Removes a queued experiment's start-commit ref when dropped, unless
/// the experiment was interrupted (it stays queued then).
struct Unqueue<'a> {
    repo: &'a Repo,
    name: &'a str,
    stop: &'a Stop,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        if self.stop.signal().is_some() {
            return;
        }
        if let Ok(mut r) = self
            .repo
            .raw()
            .find_reference(&self.repo.queue_ref(self.name))
        {
            let _ = r.delete();
        }
    }
}

/// Where the child `pipe repro` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Terminal,
    LogFile,
}

/// The lock running experiments share and `pipe gc` takes alone.
pub fn experiments_lock(cache_root: &Path) -> Result<std::fs::File, Error> {
    crate::cache::ensure_root(cache_root)
        .map_err(Error::io(format!("cannot create {}", cache_root.display())))?;
    let path = cache_root.join("experiments.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(format!("cannot open {}", path.display())))
}

/// Runs `queued` for the project at `root` with the `pipe` executable
/// `pipe_exe`, its outputs going to the cache in `shared_cache` (the
/// directory holding `v1/`); returns the recorded commit. The caller holds
/// `claim`, the claim on the experiment's name, until this returns. When
/// `stop` is set meanwhile, the child is stopped, its end waited for, the
/// copy removed, and the failure says it was interrupted.
pub fn run(
    root: &Path,
    shared_cache: &Path,
    (queued, claim): (&Queued, &NameClaim),
    (pipe_exe, repro_args): (&Path, &[String]),
    output: Output,
    stop: &Stop,
) -> Result<Oid, Failure> {
    debug_assert_eq!(claim.name(), queued.name, "the run holds its name");
    let repo = Repo::discover(root, "pipe exp run").map_err(Error::from)?;
    let cache_root = root.join(crate::cache::CACHE_DIR);
    // Run or failed, it leaves the queue: its start commit needs no ref.
    let _unqueue = Unqueue {
        repo: &repo,
        name: &queued.name,
        stop,
    };
    let running = experiments_lock(&cache_root)?;
    running
        .lock_shared()
        .map_err(Error::io("cannot lock experiments.lock"))?;
    let oid = |hex: &str| {
        Oid::from_str(hex).map_err(|_| Failure {
            message: format!("queue entry {} names a bad commit `{hex}`", queued.name),
            log: None,
            interrupted: None,
        })
    };
    let (baseline, start) = (oid(&queued.baseline)?, oid(&queued.start)?);
    let copy = RunCopy::create(&cache_root, &queued.name)?;
    let result = run_in(
        &repo,
        root,
        &copy,
        (baseline, start),
        shared_cache,
        queued,
        (pipe_exe, repro_args, output),
        stop,
    );
    let removed = copy.remove();
    match result {
        Err(mut failure) => {
            if failure.interrupted.is_some() {
                failure.message = match removed {
                    Ok(()) => "its temporary copy was removed".into(),
                    Err(e) => format!(
                        "its temporary copy could not be removed yet ({e}); the next `pipe exp run` removes it"
                    ),
                };
            }
            Err(failure)
        }
        ok => ok,
    }
}

/// The run itself, in `copy`.
#[allow(clippy::too_many_arguments)]
fn run_in(
    repo: &Repo,
    root: &Path,
    copy: &RunCopy,
    (baseline, start): (Oid, Oid),
    shared_cache: &Path,
    queued: &Queued,
    (pipe_exe, repro_args, output): (&Path, &[String], Output),
    stop: &Stop,
) -> Result<Oid, Failure> {
    let cache_root = root.join(crate::cache::CACHE_DIR);
    let interrupted = |sig| Failure {
        message: String::new(),
        log: None,
        interrupted: Some(sig),
    };
    copy.init_git(repo, baseline)?;
    // The project sits where it sits in the repository.
    let dir = &copy.path().join(repo.prefix().trim_end_matches('/'));
    let tracked = write_tree(repo, start, dir)?;
    for file in [
        crate::spec::PIPELINE_FILE,
        crate::spec::params::DEFAULT_PARAMS_FILE,
    ] {
        if !dir.join(file).exists() && root.join(file).exists() {
            return Err(Failure {
                message: format!(
                    "{file} is not tracked by git; experiments run from git's copy of the project: commit it first"
                ),
                log: None,
                interrupted: None,
            });
        }
    }
    overrides::apply(dir, &queued.overrides)?;
    let project = Project::load(dir)?;
    let data = link_tracked(&project, root)?;
    copy_from_workspace(&project, root, dir, &data)?;
    if let Some(sig) = stop.signal() {
        return Err(interrupted(sig));
    }

    if !repro_args.is_empty() {
        // `repro --pull` in the copy reaches the remotes the workspace
        // has, and `repro --executor` its [executor] settings, those
        // configured but not committed too (the copy's files are removed
        // with it).
        for file in [
            crate::config::CONFIG_FILE,
            crate::remote::config::LOCAL_CONFIG_FILE,
        ] {
            let (from, to) = (root.join(file), dir.join(file));
            if from.is_file() && !to.exists() {
                std::fs::copy(&from, &to).map_err(Error::io(format!(
                    "cannot copy {} into the experiment's copy",
                    from.display()
                )))?;
            }
        }
    }
    let mut child = Command::new(pipe_exe);
    child
        .arg("-C")
        .arg(dir)
        .arg("repro")
        .args(repro_args)
        .env(CACHE_DIR_ENV, shared_cache)
        .env(DVC_EXP_BASELINE_REV, baseline.to_string())
        .env(DVC_EXP_NAME, &queued.name)
        // The copy's own repository, whatever the caller's environment
        // points git at.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null());
    crate::run::command::die_with_parent(&mut child, libc::SIGTERM);
    let log = match output {
        Output::Terminal => None,
        Output::LogFile => {
            let log = log_path(&cache_root, &queued.name);
            if let Some(parent) = log.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(Error::io(format!("cannot create {}", parent.display())))?;
            }
            let out = std::fs::File::create(&log)
                .map_err(Error::io(format!("cannot create {}", log.display())))?;
            let err = out
                .try_clone()
                .map_err(Error::io(format!("cannot open {}", log.display())))?;
            child.stdout(out).stderr(err);
            Some(log)
        }
    };
    let mut child = child
        .spawn()
        .map_err(Error::io(format!("cannot start {}", pipe_exe.display())))?;
    let lost = |e| Error::io(format!("lost {}", pipe_exe.display()))(e);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(lost)? {
            break status;
        }
        if let Some(sig) = stop.signal() {
            // A terminal's Ctrl-C reached the child too; a signal sent to
            // pipe alone is passed on. Its stages stop with it.
            // SAFETY: kill has no memory effects; the child is ours and
            // not yet waited for, so its pid is not reused.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            child.wait().map_err(lost)?;
            return Err(Failure {
                log,
                ..interrupted(sig)
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(sig) = stop.signal() {
        return Err(Failure {
            log,
            ..interrupted(sig)
        });
    }
    if !status.success() {
        return Err(Failure {
            message: format!("pipe repro failed ({status})"),
            log,
            interrupted: None,
        });
    }
    // Params (also files set with -S that no stage lists), the lock, metrics
    // and plots, and every output git tracks.
    let mut paths: Vec<RelPath> = compare::params_files(&project).into_keys().collect();
    paths.extend(queued.overrides.iter().map(|o| o.file.clone()));
    paths.push(RelPath::from_normalized(LOCK_FILE));
    // Outputs are recorded by content: with `cache.link = symlink` they are
    // links into the cache here.
    let mut outputs = BTreeSet::new();
    for out in project.pipeline.stages.iter().flat_map(|s| s.outs.iter()) {
        if (out.kind != crate::spec::OutKind::Out || tracked.contains(&out.path)) && !out.dir {
            paths.push(out.path.clone());
            outputs.insert(out.path.clone());
        }
    }
    paths.sort();
    paths.dedup();
    let commit = record(
        repo,
        dir,
        (baseline, start),
        &queued.name,
        (&paths, &outputs),
        &queued.overrides,
    )?;
    Ok(commit)
}

/// Checks, before anything is queued or run, that the pipeline accepts the
/// params of each of `combos` (a built-in's `C` must be positive, say): the
/// project at `start` is written to a scratch copy, and loaded with each
/// combination's params. A combination it refuses is an error that names
/// its `-S` arguments. (When the project does not load even without them,
/// nothing is checked here: the run reports that.)
pub fn check_params(
    root: &Path,
    repo: &Repo,
    start: Oid,
    combos: &[Vec<overrides::Override>],
) -> Result<(), Error> {
    if combos.iter().all(Vec::is_empty) {
        return Ok(());
    }
    let copy = RunCopy::scratch(&root.join(crate::cache::CACHE_DIR))?;
    let dir = &copy.path().join(repo.prefix().trim_end_matches('/'));
    write_tree(repo, start, dir)?;
    if Project::load(dir).is_err() {
        return Ok(());
    }
    for combo in combos {
        let mut files: Vec<&RelPath> = combo.iter().map(|o| &o.file).collect();
        files.sort();
        files.dedup();
        let mut saved = Vec::new();
        for file in files {
            let path = file.to_path(dir);
            let bytes = std::fs::read(&path).map_err(Error::io(format!("cannot read {file}")))?;
            saved.push((path, bytes));
        }
        overrides::apply(dir, combo)?;
        if let Err(e) = Project::load(dir) {
            let args: Vec<String> = combo
                .iter()
                .map(|o| format!("-S {}", o.as_typed()))
                .collect();
            let why = match e {
                Error::Pipeline(p) => p
                    .diagnostics
                    .iter()
                    .map(|d| match &d.stage {
                        Some(stage) => format!("stage `{stage}`: {}", d.message),
                        None => d.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            let keys: Vec<&str> = combo.iter().map(|o| o.key.as_str()).collect();
            return Err(Error::Refused {
                message: format!("{}: the pipeline refuses it: {why}", args.join(" ")),
                hint: Some(format!("choose another value for {}", keys.join(", "))),
            });
        }
        for (path, bytes) in saved {
            std::fs::write(&path, bytes)
                .map_err(Error::io(format!("cannot write {}", path.display())))?;
        }
    }
    Ok(())
}

/// Writes the project files of commit `oid` under `dir`; returns their
/// paths.
fn write_tree(repo: &Repo, oid: Oid, dir: &Path) -> Result<BTreeSet<RelPath>, Error> {
    let mut written = BTreeSet::new();
    for (path, blob, mode) in repo.tree_files(oid)? {
        let abs = path.to_path(dir);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("cannot create {}", parent.display())))?;
        }
        let blob = repo
            .raw()
            .find_blob(blob)
            .map_err(crate::git::GitError::wrap(format!("read {path}")))
            .map_err(Error::from)?;
        if mode == 0o120000 {
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            std::os::unix::fs::symlink(target, &abs)
                .map_err(Error::io(format!("cannot write {}", abs.display())))?;
        } else {
            std::fs::write(&abs, blob.content())
                .map_err(Error::io(format!("cannot write {}", abs.display())))?;
            if mode == 0o100755 {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o755));
            }
        }
        written.insert(path);
    }
    Ok(written)
}

/// Puts the tracked data of the copy's `.dvc` files in place from the
/// user's cache (see the module docs); returns the paths it placed.
fn link_tracked(copy: &Project, root: &Path) -> Result<Vec<RelPath>, Error> {
    let files = crate::track::discover(copy)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let user = Project::load_with(root, true)?;
    let hasher = user.hasher();
    let tracker = crate::track::Tracker::new(&user, &hasher);
    let link = match user.cache.link_mode() {
        LinkMode::Hardlink => LinkMode::Hardlink,
        _ => LinkMode::Reflink,
    };
    let cache = user.cache.with_link(link);
    let mut placed = Vec::new();
    let mut result = Ok(());
    for file in &files {
        for out in file.outs.iter().filter(|o| o.cache) {
            let record = match tracker.record(out, true) {
                Ok(Some(r)) if cache.contains(&r) => r,
                Ok(_) => {
                    result = Err(Error::Refused {
                        message: format!(
                            "the experiment needs {} (the version {} records at its start), and the cache does not have it",
                            out.path, file.file
                        ),
                        hint: Some(format!(
                            "`pipe pull {}` fetches it from a remote",
                            file.file
                        )),
                    });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            cache.restore(&copy.workspace, &record)?;
            placed.push(record.path);
        }
    }
    tracker.save();
    let _ = hasher.save();
    user.cache.save_verified();
    result.map(|()| placed)
}

/// Copies from `root` what the copy lacks: files under the dependencies
/// of `copy` that no (unfrozen) stage writes and `tracked` (put in place
/// from the cache) does not hold, and the outputs of frozen stages.
fn copy_from_workspace(
    copy: &Project,
    root: &Path,
    dir: &Path,
    tracked: &[RelPath],
) -> Result<(), Error> {
    let stages = &copy.pipeline.stages;
    let written: Vec<&RelPath> = stages
        .iter()
        .filter(|s| !s.frozen)
        .flat_map(|s| s.outs.iter().map(|o| &o.path))
        .collect();
    let wanted = stages.iter().flat_map(|s| s.deps.iter()).chain(
        stages
            .iter()
            .filter(|s| s.frozen)
            .flat_map(|s| s.outs.iter().map(|o| &o.path)),
    );
    for path in wanted {
        let source = path.to_path(root);
        let files: Vec<std::path::PathBuf> = if source.is_dir() {
            walkdir::WalkDir::new(&source)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect()
        } else if source.is_file() {
            vec![source.clone()]
        } else {
            continue;
        };
        for file in files {
            let rel = file
                .strip_prefix(root)
                .expect("walk stays inside the project");
            let Ok(rel_path) = RelPath::parse(&rel.to_string_lossy(), None) else {
                continue;
            };
            let target = dir.join(rel);
            if target.exists()
                || written.iter().any(|o| rel_path.is_within(o))
                || tracked.iter().any(|t| rel_path.is_within(t))
            {
                continue;
            }
            copy_file(&file, &target)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(Error::io(format!("cannot create {}", parent.display())))?;
    }
    reflink_copy::reflink_or_copy(from, to)
        .map(|_| ())
        .map_err(Error::io(format!(
            "cannot copy {} into an experiment",
            from.display()
        )))
}
