//! Experiments: runs of the pipeline with changed params, kept as git
//! commits under their own refs.
//!
//! An experiment is a commit whose parent is the commit it started from
//! (its *baseline*, HEAD when it was run) and whose tree is the baseline's
//! with the experiment's files: the workspace's changed tracked files, the
//! params files, `pipeline.lock`, the metrics and plots files (added even
//! where `.gitignore` leaves them out) and any output git tracks. It is
//! referenced by `refs/exps/<baseline[:2]>/<baseline[2:]>/<name>`, DVC's
//! layout (see [`crate::git::EXP_REF_PREFIX`]), so DVC's tools list pipe's
//! experiments too; a namespace that `git log`, `git branch` and `git
//! status` do not show. It moves no branch, `HEAD` or index. The outputs it produced stay in the cache,
//! named by its `pipeline.lock`, so `pipe exp apply` brings them back
//! without running anything.
//!
//! - [`overrides`]: `-S key=value` parsed and written into params files;
//! - [`claim`]: a name claimed while its experiment runs, so that a second
//!   run of the same name is refused before it starts;
//! - [`record`]: the commit and its ref;
//! - [`queue`]: experiments waiting for `pipe exp run --run-all`;
//! - [`copies`]: the temporary copies experiments run in, and the removal
//!   of those a killed run left;
//! - [`isolated`]: one experiment run in a temporary copy of the project
//!   (baseline plus workspace changes) that shares the cache;
//! - [`apply`]: an experiment's files and outputs back into the workspace.

pub mod apply;
pub mod claim;
pub mod copies;
pub mod isolated;
pub mod overrides;
pub mod queue;
pub mod record;
pub mod share;

use git2::Oid;

use crate::error::Error;
use crate::git::{ExpRef, Repo};

/// A recorded experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    pub name: String,
    pub commit: Oid,
    /// The commit it started from (its commit's parent).
    pub baseline: Oid,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    /// Its ref, `refs/exps/ab/cdef…/name`.
    pub refname: String,
}

impl From<ExpRef> for Experiment {
    fn from(e: ExpRef) -> Self {
        Experiment {
            name: e.name,
            commit: e.commit,
            baseline: e.baseline,
            time: e.time,
            refname: e.refname,
        }
    }
}

/// Every experiment of the project, oldest first.
pub fn list(repo: &Repo) -> Result<Vec<Experiment>, Error> {
    let mut out: Vec<Experiment> = repo
        .experiments()?
        .into_iter()
        .map(Experiment::from)
        .collect();
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// The experiment `name` (or its full ref), or an error that lists the
/// ones there are. Of several of that name (on different baselines), the
/// one on HEAD, as DVC chooses.
pub fn find(repo: &Repo, name: &str) -> Result<Experiment, Error> {
    let all = repo.experiments()?;
    let named: Vec<&ExpRef> = all
        .iter()
        .filter(|e| e.name == name || e.refname == name)
        .collect();
    match named.as_slice() {
        [one] => return Ok((*one).clone().into()),
        [] => {}
        several => {
            let head = repo.head()?;
            if let Some(e) = several.iter().find(|e| Some(e.baseline) == head) {
                return Ok((*e).clone().into());
            }
            return Err(crate::git::GitError::AmbiguousExperiment {
                name: name.to_string(),
                refs: several.iter().map(|e| e.refname.clone()).collect(),
            }
            .into());
        }
    }
    let mut names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    names.dedup();
    let near = crate::spec::diagnostic::did_you_mean(name, names.iter().copied());
    Err(Error::Refused {
        message: format!("no experiment named `{name}`"),
        hint: Some(match (near, names.is_empty()) {
            (Some(near), _) => format!("did you mean `{near}`? See `pipe exp show`"),
            (None, true) => "there are no experiments yet; record one with `pipe exp run`".into(),
            (None, false) => format!("experiments: {}", names.join(", ")),
        }),
    })
}

/// The longest experiment name (it becomes a ref and a file name).
pub const MAX_NAME: usize = 100;

/// Checks that `name` can name a new experiment on `baseline`.
pub fn check_new_name(repo: &Repo, name: &str, baseline: Oid) -> Result<(), Error> {
    let full = repo.experiment_ref(baseline, name);
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.contains('/')
        || !git2::Reference::is_valid_name(&full)
    {
        return Err(Error::Refused {
            message: format!("`{name}` cannot name an experiment"),
            hint: Some(format!(
                "use up to {MAX_NAME} letters, digits, `-`, `_` and `.`, without `/` or spaces"
            )),
        });
    }
    if repo.is_revision(name) {
        return Err(Error::Refused {
            message: format!(
                "`{name}` already names a git revision (a branch, tag, HEAD or a commit)"
            ),
            hint: Some("choose a name git does not resolve, so that diffs stay unambiguous".into()),
        });
    }
    check_name_free(repo, name, baseline)
}

/// Refused when the project has an experiment `name` (on any baseline), or
/// another project of the repository has one on `baseline` (the same ref).
pub fn check_name_free(repo: &Repo, name: &str, baseline: Oid) -> Result<(), Error> {
    let full = repo.experiment_ref(baseline, name);
    let mine = repo.prefix().trim_end_matches('/');
    for e in repo.all_experiments()? {
        if e.name != name {
            continue;
        }
        if e.project == mine {
            return Err(exists_already(name));
        }
        if e.refname == full {
            return Err(Error::Refused {
                message: format!(
                    "an experiment named `{name}` exists already on this baseline, in the project in {}/",
                    e.project
                ),
                hint: Some(
                    "projects of one repository share experiment names per baseline (as DVC's do): choose another -n NAME"
                        .into(),
                ),
            });
        }
    }
    Ok(())
}

fn exists_already(name: &str) -> Error {
    Error::Refused {
        message: format!("an experiment named `{name}` exists already"),
        hint: Some(format!(
            "choose another -n NAME, or remove it first: `pipe exp remove {name}`"
        )),
    }
}

/// A fresh name: `exp-` and five hex digits of a hash of `seed` and the
/// current time (so that the same params twice still get two names).
pub fn new_name(seed: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hash = blake3::hash(format!("{seed}\0{now}\0{}", std::process::id()).as_bytes());
    format!("exp-{}", &hash.to_hex()[..5])
}
