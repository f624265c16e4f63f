//! `pipe exp apply`, `branch` and `remove`: what is done with an
//! experiment once it is recorded.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::exp::queue;
use pipe::exp::{self as experiments, apply};
use pipe::git::Repo;
use pipe::run::{Event, Reporter, ReproLock};

use super::{err, find};
use crate::cli::compare::open_repo;
use crate::cli::progress::Progress;
use crate::cli::{load_project, print, CliError};

/// Bring an experiment's params, lock, metrics and outputs into the
/// workspace (HEAD, branch and index stay as they are).
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The experiment: its name, as `pipe exp show` lists it, or its ref
    /// (`refs/exps/…`).
    pub name: String,
    /// Overwrite uncommitted changes and modified outputs.
    #[arg(short, long)]
    pub force: bool,
}

/// Make a git branch of an experiment.
#[derive(Debug, Args)]
pub struct BranchArgs {
    /// The experiment: its name, as `pipe exp show` lists it, or its ref
    /// (`refs/exps/…`).
    pub name: String,
    /// The branch to create (it must not exist).
    pub branch: String,
}

/// Remove experiments (their refs) or queued experiments.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Experiments (names as `pipe exp show` lists them, or refs
    /// `refs/exps/…`) or queued experiments.
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every experiment and every queued one.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
}

pub(super) fn apply_cmd(cwd: &Path, args: ApplyArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp apply")?;
    let exp = find(&project, &repo, &args.name)?;
    let progress = Progress::new();
    let _guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(Event::WaitingForLock { holder });
    })?;
    progress.finish();
    let applied = apply::apply(&project.root, &repo, &exp, args.force).map_err(err)?;
    let mut out = String::new();
    for f in &applied.written {
        out.push_str(&format!("wrote {f}\n"));
    }
    for f in &applied.deleted {
        out.push_str(&format!("deleted {f}\n"));
    }
    let mut missing = 0;
    for item in &applied.outputs {
        match item.action {
            pipe::checkout::CheckoutAction::Restored => {
                out.push_str(&format!("restored {}\n", item.path))
            }
            pipe::checkout::CheckoutAction::NotInCache
            | pipe::checkout::CheckoutAction::NotCached => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: not in the cache (run `pipe repro {}`)\n",
                    item.path, item.stage
                ));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "Applied experiment {} ({}).\n",
        exp.name,
        Repo::short(exp.commit)
    ));
    print(&out)?;
    Ok(if missing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn branch(cwd: &Path, args: BranchArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp branch")?;
    let exp = experiments::find(&repo, &args.name).map_err(err)?;
    if repo
        .raw()
        .find_branch(&args.branch, git2::BranchType::Local)
        .is_ok()
    {
        return Err(CliError {
            message: format!("a branch named `{}` exists already", args.branch),
            hints: vec!["choose another branch name".into()],
            code: 2,
        });
    }
    let commit = repo
        .raw()
        .find_commit(exp.commit)
        .map_err(pipe::git::GitError::wrap(format!(
            "read experiment {}",
            exp.name
        )))
        .map_err(err)?;
    repo.raw()
        .branch(&args.branch, &commit, false)
        .map_err(|source| CliError {
            message: format!(
                "cannot create branch `{}`: {}",
                args.branch,
                source.message()
            ),
            hints: vec!["a branch name cannot contain spaces, `..`, `~`, `^` or `:`".into()],
            code: 2,
        })?;
    print(&format!(
        "Branch {} now points at experiment {} ({}).\n",
        args.branch,
        exp.name,
        Repo::short(exp.commit)
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn remove(cwd: &Path, args: RemoveArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp remove")?;
    let queued = queue::list(&project.cache_root()).map_err(err)?;
    // Every name is checked before anything is removed: (name, its ref).
    let mut recorded: Vec<(String, String)> = Vec::new();
    let mut queued_names: Vec<String> = Vec::new();
    if args.all {
        for e in repo.experiments().map_err(err)? {
            recorded.push((e.name, e.refname));
        }
        queued_names.extend(queued.iter().map(|e| e.queued.name.clone()));
    } else {
        let names = repo.experiment_names().map_err(err)?;
        for name in &args.names {
            let is_queued = queued.iter().any(|e| &e.queued.name == name);
            if names.contains(name) || name.starts_with(pipe::git::EXP_REF_PREFIX) {
                let exp = experiments::find(&repo, name).map_err(err)?;
                recorded.push((exp.name, exp.refname));
            } else if !is_queued {
                experiments::find(&repo, name).map_err(err)?;
            }
            if is_queued {
                queued_names.push(name.clone());
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    recorded.retain(|(_, r)| seen.insert(r.clone()));
    queued_names.dedup();
    let mut by_name: BTreeMap<&str, Vec<&queue::Entry>> = BTreeMap::new();
    for e in &queued {
        by_name.entry(e.queued.name.as_str()).or_default().push(e);
    }
    let mut out = String::new();
    for (name, refname) in &recorded {
        repo.raw()
            .find_reference(refname)
            .and_then(|mut r| r.delete())
            .map_err(pipe::git::GitError::wrap(format!(
                "remove experiment {name}"
            )))
            .map_err(err)?;
        out.push_str(&format!("removed experiment {name}\n"));
    }
    for name in &queued_names {
        for e in by_name.get(name.as_str()).into_iter().flatten() {
            queue::remove(&e.path).map_err(err)?;
            if let Ok(mut r) = repo.raw().find_reference(&repo.queue_ref(name)) {
                let _ = r.delete();
            }
            out.push_str(&format!("removed queued experiment {name}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("Nothing to remove.\n");
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
