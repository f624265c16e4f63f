//! Which outputs a push, fetch or status moves or checks: those the
//! workspace's `pipeline.lock` records (for some stages or all), and on
//! request those of every commit's lock, of experiments, and the run-cache
//! entries of those stages.
//!
//! Tracked data (`.dvc` files, [`crate::track`]) is in scope the same
//! way: every `.dvc` file of the workspace (or those named among the
//! targets), and with `all_commits` or `experiments` those of each commit.
//! A push first stores in the cache what a `.dvc` file that DVC wrote
//! records and pipe has not met yet (from the workspace or DVC's cache).

use crate::cache::runs::RunRecord;
use crate::error::Error;
use crate::exp;
use crate::git::Repo;
use crate::lock::{LockFile, LockStage, LOCK_FILE};
use crate::paths::RelPath;
use crate::project::Project;
use crate::track::{self, Tracker};

use super::ObjectSet;

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Stage names (as `pipe repro` takes them); all stages when empty.
    pub targets: Vec<String>,
    /// The locks of every commit of every branch and tag too.
    pub all_commits: bool,
    /// The locks of these experiments too.
    pub experiments: Vec<String>,
    /// The run-cache entries of the stages in scope.
    pub run_cache: bool,
    /// Leave out the workspace's lock (only the experiments', say).
    pub skip_workspace: bool,
    /// Where relative targets (paths of tracked data, `.dvc` files) start;
    /// the project root when `None`.
    pub cwd: Option<std::path::PathBuf>,
    /// Store tracked data the cache lacks from the workspace or DVC's
    /// cache first (a push: what is not in the cache cannot be sent).
    pub store_tracked: bool,
}

/// The cached outputs (and, with `run_cache`, the run entries) in `scope`.
pub fn collect(project: &Project, scope: &Scope) -> Result<ObjectSet, Error> {
    let mut set = ObjectSet::default();
    let lock = match scope.skip_workspace {
        true => LockFile::default(),
        false => LockFile::read(&project.root)?,
    };
    let files = match scope.skip_workspace {
        true => Vec::new(),
        false => track::discover(project)?,
    };
    let cwd = scope.cwd.clone().unwrap_or_else(|| project.root.clone());
    let (stage_targets, chosen) = track::split_targets(project, &cwd, &files, &scope.targets);
    let names: Vec<String> = if scope.targets.is_empty() {
        lock.stages.keys().cloned().collect()
    } else if stage_targets.is_empty() {
        Vec::new()
    } else {
        let selected = project.dag.select(
            &project.pipeline,
            &stage_targets,
            crate::graph::Selection::Single,
        )?;
        selected
            .into_iter()
            .map(|i| project.pipeline.stages[i].name.clone())
            .collect()
    };
    for name in &names {
        if let Some(entry) = lock.stages.get(name) {
            add_stage(project, &mut set, name, entry, scope.run_cache);
        }
    }
    let tracked = if scope.targets.is_empty() {
        files
    } else {
        chosen
    };
    let hasher = project.hasher();
    let tracker = Tracker::new(project, &hasher);
    for file in &tracked {
        for out in file.outs.iter().filter(|o| o.cache) {
            if let Some(record) = tracker.record(out, scope.store_tracked)? {
                set.add(&record);
            }
        }
    }
    tracker.save();
    let _ = hasher.save();
    if !scope.all_commits && scope.experiments.is_empty() {
        return Ok(set);
    }
    let repo = Repo::discover(&project.root, "the --all-commits and --exp options")?;
    let lock_path = RelPath::from_normalized(LOCK_FILE);
    let mut commits = Vec::new();
    if scope.all_commits {
        commits.extend(repo.all_commits()?);
    }
    for name in &scope.experiments {
        commits.push(exp::find(&repo, name)?.commit);
    }
    let mut read_blobs = std::collections::BTreeSet::new();
    for oid in commits {
        // A `.dvc` file that cannot be read moves nothing.
        let (files, _) = track::files_at(&repo, oid, &mut read_blobs)?;
        for file in &files {
            for record in track::records_of(&tracker.index, file) {
                set.add(&record);
            }
        }
        let Some(bytes) = repo.read(oid, &lock_path)? else {
            continue;
        };
        // A commit whose lock cannot be read moves nothing of its own.
        let Ok(lock) = LockFile::from_bytes(&bytes) else {
            continue;
        };
        for (name, entry) in &lock.stages {
            add_stage(project, &mut set, name, entry, scope.run_cache);
        }
    }
    Ok(set)
}

fn add_stage(project: &Project, set: &mut ObjectSet, name: &str, entry: &LockStage, runs: bool) {
    for out in entry.outs.iter().filter(|o| o.cache) {
        set.add(out);
    }
    if runs {
        let fingerprint = entry.fingerprint().digest();
        if let Some(record) = project.cache.lookup_run(&fingerprint) {
            set.runs.insert(
                fingerprint,
                RunRecord {
                    stage: name.to_string(),
                    outs: record.outs,
                },
            );
        }
    }
}
