//! The project's git repository, read and written through libgit2.
//!
//! pipe reads files at any revision (`metrics diff`, `params diff`,
//! `exp show`) and records experiments as commits, without running `git`
//! and without touching the user's `HEAD`, branch, index or working tree:
//! every object is written straight into the object database, and the only
//! refs pipe creates are experiment refs (see [`crate::exp`]) and, when
//! asked, a branch.
//!
//! The project root may be a sub-directory of the repository: paths in this
//! module's API are project-relative ([`RelPath`]), and [`Repo`] adds the
//! prefix where it talks to git.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Signature, StatusOptions};

use crate::paths::RelPath;

/// Where experiments live, in DVC's layout:
/// `refs/exps/<baseline[:2]>/<baseline[2:]>/<name>`, so that `dvc exp list`,
/// `dvc exp show` and the editors' DVC extensions list them beside DVC's own.
/// DVC's namespaces below it (`stash`, `apply/`, `celery/`, `exec/`,
/// `temp/`) are left alone. An experiment of a project in a sub-directory
/// says so in its commit message (see [`PROJECT_TRAILER`]), so that projects
/// sharing a repository do not see each other's.
pub const EXP_REF_PREFIX: &str = "refs/exps/";

/// The line of an experiment's commit message that names the project
/// (its directory in the repository) when it is not at the root.
pub const PROJECT_TRAILER: &str = "Pipe-Project: ";

/// DVC's own refs under `refs/exps/`, which are not experiments.
const DVC_NAMESPACES: [&str; 4] = ["apply/", "celery/", "exec/", "temp/"];

/// Where queued experiments keep their start commits: `refs/exps-queue/…`.
pub const QUEUE_REF_PREFIX: &str = "refs/exps-queue/";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{} is not inside a git repository; {what} needs git", .path.display())]
    NotARepo { path: PathBuf, what: String },
    #[error("the repository has no commits yet; {what} needs at least one")]
    NoCommits { what: String },
    #[error("unknown revision `{rev}`: not a branch, tag, commit or experiment")]
    UnknownRev {
        rev: String,
        experiments: Vec<String>,
    },
    #[error("there are several experiments named `{name}`, none of them on HEAD")]
    AmbiguousExperiment { name: String, refs: Vec<String> },
    #[error("`{rev}` names a {kind}, not a commit")]
    NotACommit { rev: String, kind: String },
    #[error("the repository has no working tree (a bare repository)")]
    Bare,
    #[error("git: cannot {action}: {}", .source.message())]
    Git { action: String, source: git2::Error },
}

impl GitError {
    pub fn hint(&self) -> Option<String> {
        match self {
            GitError::NotARepo { .. } => Some(
                "run `git init && git add -A && git commit -m baseline` in the project first"
                    .into(),
            ),
            GitError::NoCommits { .. } => {
                Some("commit a baseline first: `git add -A && git commit -m baseline`".into())
            }
            GitError::UnknownRev { experiments, .. } if experiments.is_empty() => {
                Some("see `git log --oneline` and `git branch` for revisions".into())
            }
            GitError::AmbiguousExperiment { refs, .. } => {
                Some(format!("name one by its ref: {}", refs.join(", ")))
            }
            GitError::UnknownRev { experiments, .. } => Some(format!(
                "see `git log --oneline` for revisions; experiments: {}",
                experiments.join(", ")
            )),
            _ => None,
        }
    }
}

impl GitError {
    /// Maps a libgit2 error to [`GitError::Git`], saying what failed
    /// (`read a commit`).
    pub fn wrap(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let action = action.into();
        move |source| GitError::Git { action, source }
    }
}

fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    GitError::wrap(action)
}

/// A project file for a commit: its bytes (a symlink's are its target)
/// and kind, or `None` to remove it.
pub type FileContent = (RelPath, Option<(Vec<u8>, FileKind)>);

/// What a file is to git: its mode in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Executable,
    Symlink,
}

impl FileKind {
    /// The mode git stores.
    pub fn mode(self) -> u32 {
        match self {
            FileKind::Regular => 0o100644,
            FileKind::Executable => 0o100755,
            FileKind::Symlink => 0o120000,
        }
    }
}

/// A project file that differs between two commits: its blob and mode in
/// the second, or `None` when the second does not have it.
pub type Change = (RelPath, Option<(Oid, i32)>);

/// An experiment's ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpRef {
    pub name: String,
    /// The commit it started from, as its ref says.
    pub baseline: Oid,
    pub commit: Oid,
    /// `refs/exps/ab/cdef…/name`.
    pub refname: String,
    /// The project's directory in the repository (`""`: the root).
    pub project: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
}

/// What a ref under `refs/exps/` is.
#[derive(Debug, PartialEq, Eq)]
enum RefKind {
    /// DVC's layout: `refs/exps/ab/cdef…/name`.
    Experiment { baseline: Oid, name: String },
    /// pipe's former layout: `refs/exps/[sub/dir/]name`.
    Former { project: String, name: String },
    /// DVC's own (its stash, executors, …).
    Other,
}

/// The baseline and name of an experiment ref in DVC's layout
/// (`refs/exps/ab/cdef…/name`); `None` for any other ref.
pub fn exp_ref_parts(refname: &str) -> Option<(Oid, String)> {
    match parse_exp_ref(refname) {
        RefKind::Experiment { baseline, name } => Some((baseline, name)),
        _ => None,
    }
}

fn parse_exp_ref(refname: &str) -> RefKind {
    let Some(rest) = refname.strip_prefix(EXP_REF_PREFIX) else {
        return RefKind::Other;
    };
    if rest == "stash" || DVC_NAMESPACES.iter().any(|ns| rest.starts_with(ns)) {
        return RefKind::Other;
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.len() >= 2 && hex(parts[0], 2) && hex(parts[1], 38) {
        return match (
            parts.len(),
            Oid::from_str(&format!("{}{}", parts[0], parts[1])),
        ) {
            (3, Ok(baseline)) => RefKind::Experiment {
                baseline,
                name: parts[2].to_string(),
            },
            _ => RefKind::Other,
        };
    }
    let (name, dirs) = parts.split_last().expect("split gives one part at least");
    RefKind::Former {
        project: dirs.join("/"),
        name: name.to_string(),
    }
}

/// The project an experiment commit belongs to: its [`PROJECT_TRAILER`],
/// or the root (DVC's experiments, and pipe's of a project at the root).
fn commit_project(commit: &git2::Commit) -> String {
    commit
        .message()
        .unwrap_or_default()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(PROJECT_TRAILER))
        .map(|p| p.trim().to_string())
        .unwrap_or_default()
}

/// A commit, with the name it was asked by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rev {
    pub oid: Oid,
    /// What the user typed, or the short hash.
    pub label: String,
}

pub struct Repo {
    repo: Repository,
    /// The project root relative to the working tree, `""` or `"a/b/"`.
    prefix: String,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.repo.path())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Repo {
    /// The repository holding `project_root`; `what` names the command for
    /// the error when there is none.
    pub fn discover(project_root: &Path, what: &str) -> Result<Repo, GitError> {
        let repo = Repository::discover(project_root).map_err(|source| {
            if source.code() == git2::ErrorCode::NotFound {
                GitError::NotARepo {
                    path: project_root.to_path_buf(),
                    what: what.to_string(),
                }
            } else {
                // Say what libgit2 says: an ownership (`safe.directory`)
                // refusal, a damaged repository, …
                GitError::Git {
                    action: format!("open the repository of {}", project_root.display()),
                    source,
                }
            }
        })?;
        let workdir = repo.workdir().ok_or(GitError::Bare)?;
        let workdir = workdir
            .canonicalize()
            .unwrap_or_else(|_| workdir.to_path_buf());
        let root = project_root
            .canonicalize()
            .unwrap_or_else(|_| project_root.to_path_buf());
        let prefix = match root.strip_prefix(&workdir) {
            Ok(rel) if rel.as_os_str().is_empty() => String::new(),
            Ok(rel) => format!("{}/", rel.to_string_lossy()),
            Err(_) => String::new(),
        };
        Ok(Repo { repo, prefix })
    }

    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    /// `HEAD`'s commit, `None` in a repository without commits.
    pub fn head(&self) -> Result<Option<Oid>, GitError> {
        match self.repo.head() {
            Ok(head) => Ok(head.target()),
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(source) => Err(GitError::Git {
                action: "read HEAD".into(),
                source,
            }),
        }
    }

    /// `HEAD`'s commit, or [`GitError::NoCommits`].
    pub fn head_commit(&self, what: &str) -> Result<Rev, GitError> {
        let oid = self.head()?.ok_or_else(|| GitError::NoCommits {
            what: what.to_string(),
        })?;
        Ok(Rev {
            oid,
            label: "HEAD".into(),
        })
    }

    /// A revision as git understands it (`main`, `v1`, `HEAD~2`, a short
    /// hash), else an experiment name. (New experiments cannot take a name
    /// git resolves, so the order only matters for a branch made later.)
    pub fn resolve(&self, rev: &str) -> Result<Rev, GitError> {
        let label = rev.to_string();
        if rev == "HEAD" && self.head()?.is_none() {
            return Err(GitError::NoCommits {
                what: "reading HEAD".into(),
            });
        }
        if let Ok(object) = self.repo.revparse_single(rev) {
            return match object.peel(ObjectType::Commit) {
                Ok(commit) => Ok(Rev {
                    oid: commit.id(),
                    label,
                }),
                Err(_) => Err(GitError::NotACommit {
                    rev: label,
                    kind: object.kind().map_or("object", |k| k.str()).to_string(),
                }),
            };
        }
        let experiments = self.experiments().unwrap_or_default();
        let named: Vec<&ExpRef> = experiments.iter().filter(|e| e.name == rev).collect();
        let head = self.head()?;
        let chosen = match named.as_slice() {
            [] => None,
            [one] => Some(*one),
            several => {
                // As DVC: the one on HEAD, else a choice for the user.
                match several.iter().find(|e| Some(e.baseline) == head) {
                    Some(e) => Some(*e),
                    None => {
                        return Err(GitError::AmbiguousExperiment {
                            name: rev.to_string(),
                            refs: several.iter().map(|e| e.refname.clone()).collect(),
                        })
                    }
                }
            }
        };
        if let Some(e) = chosen {
            return Ok(Rev {
                oid: e.commit,
                label,
            });
        }
        Err(GitError::UnknownRev {
            rev: label,
            experiments: {
                let mut names: Vec<String> = experiments.into_iter().map(|e| e.name).collect();
                names.dedup();
                names
            },
        })
    }

    /// True when git resolves `name` by itself (a branch, tag, `HEAD`, a
    /// hash prefix, …).
    pub fn is_revision(&self, name: &str) -> bool {
        self.repo.revparse_single(name).is_ok()
    }

    /// The project's directory in the repository, `""` at the root, else
    /// `a/b/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The directory that holds the repository's objects (shared by its
    /// worktrees).
    pub fn objects_dir(&self) -> PathBuf {
        self.repo.commondir().join("objects")
    }

    /// The ref of experiment `name` on `baseline`, in DVC's layout.
    pub fn experiment_ref(&self, baseline: Oid, name: &str) -> String {
        let hex = baseline.to_string();
        format!("{EXP_REF_PREFIX}{}/{}/{name}", &hex[..2], &hex[2..])
    }

    /// The line an experiment commit of this project carries (see
    /// [`PROJECT_TRAILER`]); `None` at the root of the repository.
    pub fn project_trailer(&self) -> Option<String> {
        let dir = self.prefix.trim_end_matches('/');
        (!dir.is_empty()).then(|| format!("{PROJECT_TRAILER}{dir}"))
    }

    /// The ref that keeps a queued experiment's start commit from git's
    /// garbage collection until it has run.
    pub fn queue_ref(&self, name: &str) -> String {
        format!("{QUEUE_REF_PREFIX}{}{name}", self.prefix)
    }

    /// Every experiment of the repository, whatever its project, sorted by
    /// name then baseline. Refs pipe wrote in its former layout
    /// (`refs/exps/<name>`, `refs/exps/<sub/dir>/<name>`, which make DVC's
    /// tools fail) are first moved to DVC's layout.
    pub fn all_experiments(&self) -> Result<Vec<ExpRef>, GitError> {
        let mut out = Vec::new();
        let mut former = Vec::new();
        let refs = self
            .repo
            .references_glob(&format!("{EXP_REF_PREFIX}*"))
            .map_err(git("list experiments"))?;
        for r in refs.flatten() {
            let Some(refname) = r.name().map(str::to_string) else {
                continue;
            };
            let Ok(commit) = r.peel_to_commit() else {
                continue;
            };
            match parse_exp_ref(&refname) {
                RefKind::Experiment { baseline, name } => out.push(ExpRef {
                    project: commit_project(&commit),
                    name,
                    baseline,
                    commit: commit.id(),
                    refname,
                    time: commit.time().seconds(),
                }),
                RefKind::Former { project, name } => former.push((refname, project, name)),
                RefKind::Other => {}
            }
        }
        for (refname, project, name) in former {
            out.push(self.migrate(&refname, &project, &name, &out)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.baseline.cmp(&b.baseline)));
        Ok(out)
    }

    /// This project's experiments, sorted by name then baseline.
    pub fn experiments(&self) -> Result<Vec<ExpRef>, GitError> {
        let mine = self.prefix.trim_end_matches('/');
        let mut all = self.all_experiments()?;
        all.retain(|e| e.project == mine);
        Ok(all)
    }

    /// The names of this project's experiments, sorted, each once.
    pub fn experiment_names(&self) -> Result<Vec<String>, GitError> {
        let mut names: Vec<String> = self.experiments()?.into_iter().map(|e| e.name).collect();
        names.dedup();
        Ok(names)
    }

    /// Moves the experiment at `refname`, in pipe's former layout, to
    /// DVC's; an experiment of a project in a sub-directory gets its
    /// [`PROJECT_TRAILER`] (a new commit with the same tree and parent).
    /// A name taken on the same baseline gets a `-N` suffix.
    fn migrate(
        &self,
        refname: &str,
        project: &str,
        name: &str,
        taken: &[ExpRef],
    ) -> Result<ExpRef, GitError> {
        let action = || format!("move experiment {name} to refs/exps/<baseline>/{name}");
        let commit = self
            .repo
            .find_reference(refname)
            .and_then(|r| r.peel_to_commit())
            .map_err(git(action()))?;
        let baseline = commit.parent_id(0).unwrap_or(commit.id());
        let mut target = commit.id();
        if !project.is_empty() && commit_project(&commit) != project {
            let message = format!(
                "{}\n{PROJECT_TRAILER}{project}\n",
                commit.message().unwrap_or_default().trim_end()
            );
            let parents: Vec<git2::Commit> = commit.parents().collect();
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            let tree = commit.tree().map_err(git(action()))?;
            target = self
                .repo
                .commit(
                    None,
                    &commit.author(),
                    &commit.committer(),
                    &message,
                    &tree,
                    &parents,
                )
                .map_err(git(action()))?;
        }
        let mut new_name = name.to_string();
        let mut n = 1;
        loop {
            let candidate = self.experiment_ref(baseline, &new_name);
            match self.repo.find_reference(&candidate) {
                Err(_) if !taken.iter().any(|e| e.refname == candidate) => break,
                Ok(r) if r.target() == Some(target) => break,
                _ => {
                    n += 1;
                    new_name = format!("{name}-{n}");
                }
            }
        }
        let new_ref = self.experiment_ref(baseline, &new_name);
        self.repo
            .reference(
                &new_ref,
                target,
                true,
                &format!("pipe: moved from {refname}"),
            )
            .map_err(git(action()))?;
        self.repo
            .find_reference(refname)
            .and_then(|mut r| r.delete())
            .map_err(git(action()))?;
        Ok(ExpRef {
            project: project.to_string(),
            name: new_name,
            baseline,
            commit: target,
            refname: new_ref,
            time: commit.time().seconds(),
        })
    }

    /// The first 7 hex digits of `oid`.
    pub fn short(oid: Oid) -> String {
        oid.to_string()[..7].to_string()
    }

    /// The bytes of the project file `path` at commit `oid`; `None` when
    /// the commit does not have it.
    pub fn read(&self, oid: Oid, path: &RelPath) -> Result<Option<Vec<u8>>, GitError> {
        let commit = self.repo.find_commit(oid).map_err(git("read a commit"))?;
        let tree = commit.tree().map_err(git("read a commit's tree"))?;
        let full = format!("{}{}", self.prefix, path.as_str());
        let entry = match tree.get_path(Path::new(&full)) {
            Ok(entry) => entry,
            Err(_) => return Ok(None),
        };
        match entry.to_object(&self.repo).map(|o| o.into_blob()) {
            Ok(Ok(blob)) => Ok(Some(blob.content().to_vec())),
            _ => Ok(None),
        }
    }

    /// The blob of the project file `path` at commit `oid` (`None` when
    /// the commit does not have it), so that callers reading one file
    /// across many commits can read each distinct blob once.
    pub fn blob_id(&self, oid: Oid, path: &RelPath) -> Result<Option<Oid>, GitError> {
        let commit = self.repo.find_commit(oid).map_err(git("read a commit"))?;
        let tree = commit.tree().map_err(git("read a commit's tree"))?;
        let full = format!("{}{}", self.prefix, path.as_str());
        Ok(tree
            .get_path(Path::new(&full))
            .ok()
            .filter(|e| e.kind() == Some(ObjectType::Blob))
            .map(|e| e.id()))
    }

    /// The bytes of blob `id`.
    pub fn blob(&self, id: Oid) -> Result<Vec<u8>, GitError> {
        let blob = self.repo.find_blob(id).map_err(git("read a file"))?;
        Ok(blob.content().to_vec())
    }

    /// The commit of every local branch, with the branch's name, sorted.
    pub fn branches(&self) -> Result<Vec<Rev>, GitError> {
        self.refs_as_commits("refs/heads/")
    }

    /// The commit of every tag (annotated tags peeled; a tag of something
    /// that is not a commit is left out), with the tag's name, sorted.
    pub fn tags(&self) -> Result<Vec<Rev>, GitError> {
        self.refs_as_commits("refs/tags/")
    }

    fn refs_as_commits(&self, prefix: &str) -> Result<Vec<Rev>, GitError> {
        let refs = self
            .repo
            .references_glob(&format!("{prefix}*"))
            .map_err(git(format!("list {prefix}")))?;
        let mut out = Vec::new();
        for r in refs {
            let r = r.map_err(git(format!("read {prefix}")))?;
            let Ok(commit) = r.peel_to_commit() else {
                continue;
            };
            let name = r.name().unwrap_or_default();
            out.push(Rev {
                oid: commit.id(),
                label: name.strip_prefix(prefix).unwrap_or(name).to_string(),
            });
        }
        out.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(out)
    }

    /// Up to `n` commits from `from` along first parents, newest first.
    pub fn first_parents(&self, from: Oid, n: usize) -> Result<Vec<Rev>, GitError> {
        let mut out = Vec::new();
        let mut oid = from;
        while out.len() < n {
            out.push(Rev {
                oid,
                label: Repo::short(oid),
            });
            let commit = self.repo.find_commit(oid).map_err(git("walk history"))?;
            match commit.parent_id(0) {
                Ok(parent) => oid = parent,
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Every commit reachable from `HEAD`, a branch or a tag (not from
    /// experiment refs), newest first.
    pub fn all_commits(&self) -> Result<Vec<Oid>, GitError> {
        let mut walk = self.repo.revwalk().map_err(git("walk history"))?;
        walk.set_sorting(git2::Sort::TIME)
            .map_err(git("walk history"))?;
        let _ = walk.push_head();
        for glob in ["refs/heads/*", "refs/tags/*"] {
            walk.push_glob(glob).map_err(git("walk history"))?;
        }
        walk.map(|oid| oid.map_err(git("walk history"))).collect()
    }

    /// Whether git ignores the project path `path` (by any `.gitignore`,
    /// `.git/info/exclude` or the user's excludes file; a path inside an
    /// ignored directory is ignored).
    pub fn is_ignored(&self, path: &RelPath) -> Result<bool, GitError> {
        let full = format!("{}{}", self.prefix, path.as_str());
        self.repo
            .is_path_ignored(Path::new(&full))
            .map_err(git(format!("check whether git ignores {path}")))
    }

    /// Whether git's index holds the project path `path`: the file, or a
    /// file below the directory.
    pub fn is_tracked(&self, path: &RelPath) -> Result<bool, GitError> {
        let index = self.repo.index().map_err(git("read the index"))?;
        let full = format!("{}{}", self.prefix, path.as_str());
        Ok(index.get_path(Path::new(&full), 0).is_some()
            || index.find_prefix(format!("{full}/")).is_ok())
    }

    /// Up to `n` commits from `HEAD` along first parents, newest first.
    pub fn history(&self, n: usize) -> Result<Vec<Rev>, GitError> {
        match self.head()? {
            Some(head) => self.first_parents(head, n),
            None => Ok(Vec::new()),
        }
    }

    /// The project's files that git tracks and that differ from `HEAD` in
    /// the working tree or the index (modified, deleted, staged), sorted.
    pub fn changed_tracked_files(&self) -> Result<Vec<RelPath>, GitError> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(false)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(git("read the status"))?;
        let mut out = Vec::new();
        for entry in statuses.iter() {
            if entry.status().is_empty() || entry.status() == git2::Status::IGNORED {
                continue;
            }
            let Some(path) = entry.path() else { continue };
            if let Some(rel) = path.strip_prefix(&self.prefix) {
                // git's paths are normalized already: taken as they are.
                out.push(RelPath::from_normalized(rel));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The project files of commit `oid`'s tree: (path, blob id, mode).
    pub fn tree_files(&self, oid: Oid) -> Result<Vec<(RelPath, Oid, i32)>, GitError> {
        let commit = self.repo.find_commit(oid).map_err(git("read a commit"))?;
        let tree = commit.tree().map_err(git("read a commit's tree"))?;
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let full = format!("{dir}{}", entry.name().unwrap_or_default());
                if let Some(rel) = full.strip_prefix(&self.prefix) {
                    out.push((RelPath::from_normalized(rel), entry.id(), entry.filemode()));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(git("walk a tree"))?;
        Ok(out)
    }

    /// The project files that differ between commits `from` and `to`: each
    /// with its blob and mode in `to`, or `None` when `to` does not have it.
    pub fn changed_between(&self, from: Oid, to: Oid) -> Result<Vec<Change>, GitError> {
        let tree = |oid| {
            self.repo
                .find_commit(oid)
                .and_then(|c| c.tree())
                .map_err(git("read a commit's tree"))
        };
        let (a, b) = (tree(from)?, tree(to)?);
        // A file that became a symlink (or back) is one change, not a
        // deletion and an addition of the same path.
        let mut opts = git2::DiffOptions::new();
        opts.include_typechange(true);
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&a), Some(&b), Some(&mut opts))
            .map_err(git("compare two trees"))?;
        let mut out = Vec::new();
        for delta in diff.deltas() {
            let file = if delta.status() == git2::Delta::Deleted {
                delta.old_file()
            } else {
                delta.new_file()
            };
            let Some(path) = file.path().and_then(|p| p.to_str()) else {
                continue;
            };
            let Some(rel) = path.strip_prefix(&self.prefix) else {
                continue;
            };
            let rel = RelPath::from_normalized(rel);
            let content = (delta.status() != git2::Delta::Deleted)
                .then(|| (delta.new_file().id(), i32::from(delta.new_file().mode())));
            out.push((rel, content));
        }
        Ok(out)
    }

    /// The signature for commits pipe makes: `GIT_COMMITTER_NAME` /
    /// `GIT_COMMITTER_EMAIL` (or the `GIT_AUTHOR_` ones) as git reads them,
    /// else `user.name` / `user.email`, else `pipe`.
    pub fn signature(&self) -> Signature<'static> {
        let env = |which: &str| {
            std::env::var(format!("GIT_COMMITTER_{which}"))
                .or_else(|_| std::env::var(format!("GIT_AUTHOR_{which}")))
                .ok()
                .filter(|v| !v.is_empty())
        };
        if let (Some(name), Some(email)) = (env("NAME"), env("EMAIL")) {
            if let Ok(sig) = Signature::now(&name, &email) {
                return sig;
            }
        }
        self.repo
            .signature()
            .or_else(|_| Signature::now("pipe", "pipe@localhost"))
            .expect("a fixed signature is valid")
    }

    /// Writes a commit with parent `parent` whose tree is commit `base`'s
    /// with the project files `files` replaced (`Some(bytes)`) or removed
    /// (`None`). Moves no ref; returns the new commit.
    pub fn commit_files(
        &self,
        base: Oid,
        parent: Oid,
        files: &[FileContent],
        message: &str,
    ) -> Result<Oid, GitError> {
        let parent = self
            .repo
            .find_commit(parent)
            .map_err(git("read a commit"))?;
        let base = self.repo.find_commit(base).map_err(git("read a commit"))?;
        let tree = base.tree().map_err(git("read a commit's tree"))?;
        // An in-memory index: the repository's own index is never touched.
        let mut index = git2::Index::new().map_err(git("make an index"))?;
        index.read_tree(&tree).map_err(git("read a tree"))?;
        for (path, content) in files {
            let full = format!("{}{}", self.prefix, path.as_str());
            match content {
                None => {
                    let _ = index.remove_path(Path::new(&full));
                }
                Some((bytes, kind)) => {
                    let blob = self.repo.blob(bytes).map_err(git("write a blob"))?;
                    let entry = git2::IndexEntry {
                        ctime: git2::IndexTime::new(0, 0),
                        mtime: git2::IndexTime::new(0, 0),
                        dev: 0,
                        ino: 0,
                        mode: kind.mode(),
                        uid: 0,
                        gid: 0,
                        file_size: bytes.len() as u32,
                        id: blob,
                        flags: (full.len().min(0xfff)) as u16,
                        flags_extended: 0,
                        path: full.into_bytes(),
                    };
                    index.add(&entry).map_err(git("stage a file"))?;
                }
            }
        }
        let tree_id = index
            .write_tree_to(&self.repo)
            .map_err(git("write a tree"))?;
        let tree = self.repo.find_tree(tree_id).map_err(git("read a tree"))?;
        let sig = self.signature();
        self.repo
            .commit(None, &sig, &sig, message, &tree, &[&parent])
            .map_err(git("write a commit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_refs_in_dvc_and_former_layouts() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse_exp_ref(&format!("refs/exps/01/{}/half", &sha[2..])),
            RefKind::Experiment {
                baseline: Oid::from_str(sha).unwrap(),
                name: "half".into()
            }
        );
        assert_eq!(
            parse_exp_ref("refs/exps/half"),
            RefKind::Former {
                project: String::new(),
                name: "half".into()
            }
        );
        assert_eq!(
            parse_exp_ref("refs/exps/a/b/x"),
            RefKind::Former {
                project: "a/b".into(),
                name: "x".into()
            }
        );
        for other in [
            "refs/exps/stash",
            "refs/exps/exec/EXEC_HEAD",
            "refs/exps/celery/stash",
            "refs/exps/temp/x",
            "refs/exps/apply/ORIG_HEAD",
        ] {
            assert_eq!(parse_exp_ref(other), RefKind::Other, "{other}");
        }
    }
}
