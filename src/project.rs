//! A loaded project: root, pipeline, DAG, settings and cache.
//!
//! Commands start here. [`Project::find_root`] walks up from the current
//! directory to the nearest `pipeline.yaml`, so `pipe` works from any
//! sub-directory, like git and cargo. A DVC project without
//! `pipeline.yaml` is found as DVC finds it: its root is the directory
//! holding `.dvc/` (whose `dvc.yaml` files, at the root and below, make the
//! pipeline); without `.dvc/`, the nearest directory holding `dvc.yaml`.

use std::path::{Path, PathBuf};

use crate::cache::{Cache, CACHE_DIR, VERSION_DIR};
use crate::config::Config;
use crate::error::Error;
use crate::graph::Dag;
use crate::hash::{Hasher, StatCache};
use crate::spec::{self, Pipeline, DVC_FILE, PIPELINE_FILE};
use crate::workspace::Workspace;

/// Names another project's `.pipeline-cache/` whose objects and run
/// records to use (set by `pipe exp run` for the copies experiments run
/// in; see [`crate::exp::isolated`]).
pub const CACHE_DIR_ENV: &str = "PIPE_CACHE_DIR";

#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub pipeline: Pipeline,
    pub dag: Dag,
    pub config: Config,
    pub cache: Cache,
    /// Every write and delete in the project goes through it.
    pub workspace: Workspace,
}

impl Project {
    /// The nearest directory at or above `start` holding `pipeline.yaml`
    /// or `.dvc/` (a DVC repository's root); else the nearest one holding
    /// `dvc.yaml`.
    pub fn find_root(start: &Path) -> Option<PathBuf> {
        start
            .ancestors()
            .find(|dir| dir.join(PIPELINE_FILE).is_file() || is_dvc_root(dir))
            .or_else(|| start.ancestors().find(|dir| dir.join(DVC_FILE).is_file()))
            .map(Path::to_path_buf)
    }

    /// Loads and validates the project at `root`.
    pub fn load(root: &Path) -> Result<Project, Error> {
        Project::load_with(root, false)
    }

    /// Like [`Project::load`]; with `no_stages_ok`, a `pipeline.yaml` that
    /// declares no stage yet (as `pipe init` writes it), or no pipeline
    /// file at all (a DVC repository of `.dvc` files only), is an empty
    /// pipeline rather than an error: a project may hold only tracked
    /// data ([`crate::track`]).
    pub fn load_with(root: &Path, no_stages_ok: bool) -> Result<Project, Error> {
        let no_pipeline_file =
            !root.join(PIPELINE_FILE).is_file() && spec::dvc_files(root).is_empty();
        let pipeline = match spec::load(root) {
            Err(_) if no_stages_ok && no_pipeline_file => {
                Pipeline::new(root.to_path_buf(), Vec::new(), Vec::new())
            }
            Err(e)
                if no_stages_ok
                    && e.diagnostics.len() == 1
                    && e.diagnostics[0].message == spec::NO_STAGES =>
            {
                Pipeline::new(root.to_path_buf(), Vec::new(), Vec::new())
            }
            other => other?,
        };
        let dag = Dag::build(&pipeline)?;
        let config = Config::load(root)?;
        let cache = match std::env::var_os(CACHE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => {
                Cache::at(PathBuf::from(dir).join(VERSION_DIR), config.link)
            }
            _ => Cache::new(root, config.link),
        };
        let workspace = Workspace::open(root).map_err(Error::io(format!(
            "cannot open the project directory {}",
            root.display()
        )))?;
        Ok(Project {
            root: root.to_path_buf(),
            pipeline,
            dag,
            config,
            cache,
            workspace,
        })
    }

    /// The project's `dvc.lock` files, beside its `dvc.yaml` files (none
    /// for a `pipeline.yaml` project).
    pub fn dvc_locks(&self) -> Vec<crate::paths::RelPath> {
        if self.pipeline.format != spec::Format::Dvc {
            return Vec::new();
        }
        self.pipeline
            .files
            .iter()
            .map(|f| f.dir().join(spec::DVC_LOCK_FILE))
            .collect()
    }

    /// A hasher backed by the project's stat cache.
    pub fn hasher(&self) -> Hasher {
        Hasher::new(&self.root, StatCache::load(&self.stat_cache_path()))
            .with_objects(&self.cache.dir().join("objects"))
    }

    fn stat_cache_path(&self) -> PathBuf {
        // The project's own, even when the cache is shared.
        self.cache_root().join(VERSION_DIR).join("stat-cache")
    }

    /// `.pipeline-cache/` of this project.
    pub fn cache_root(&self) -> PathBuf {
        self.root.join(CACHE_DIR)
    }
}

/// True for a DVC repository's root that has a pipeline (a `dvc.yaml`
/// somewhere below it).
/// The nearest directory at or above `start` that is a DVC repository
/// (holds `.dvc/`), with or without `dvc.yaml`: a project of tracked data
/// only.
pub fn find_dvc_repo(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(".dvc").is_dir())
        .map(Path::to_path_buf)
}

fn is_dvc_root(dir: &Path) -> bool {
    dir.join(".dvc").is_dir() && !spec::dvc_files(dir).is_empty()
}
