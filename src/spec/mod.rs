//! The pipeline definition: `pipeline.yaml` (or a DVC project's
//! `dvc.yaml` files) and its params, resolved into typed stages.
//!
//! [`load`] reads `pipeline.yaml` when the project has one. Without it, a
//! DVC project is read as it is: the `dvc.yaml` at the root and those in
//! sub-directories (DVC's multi-pipeline projects), each with paths
//! relative to its own directory, and stages of a sub-directory's file named
//! as DVC addresses them (`sub/dvc.yaml:train`). Both are read by the same
//! code, since the formats are the same: [`Pipeline::format`] says which
//! was found, so that the command line can say so.
//!
//! Reading happens in two steps, parse then resolve (as ripgrep turns raw
//! flags into settings): [`raw`] is the serde schema of the file as written;
//! [`resolve`] expands `foreach`/`matrix`, renders `${…}` templates, turns a
//! built-in's `with:` arguments into deps and outs, normalizes every path to a
//! [`RelPath`] and checks what can be checked stage by stage. Problems that
//! involve several stages (cycles, two writers of one path) are the graph's
//! job ([`crate::graph`]). Every problem is a located [`Diagnostic`].
//!
//! The files may be hostile or huge, and reading them stays bounded:
//! [`yaml`] refuses alias bombs, [`limits`] caps the stages a pipeline may
//! generate and the length of its paths, [`reserved`] keeps outputs off
//! git's and pipe's own files, and every step is linear (or n·log n) in the
//! number of stages.

pub mod diagnostic;
pub mod edit;
pub mod limits;
pub mod locate;
pub mod params;
pub mod plots;
pub mod raw;
pub mod reserved;
pub mod resolve;
pub mod template;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value as Json;

pub use diagnostic::{Diagnostic, PipelineError};
pub use locate::SourceMap;

use crate::paths::RelPath;

/// What a `pipeline.yaml` without stages is refused with (a project of
/// tracked data only accepts it, see [`crate::project::Project::load_with`]).
pub const NO_STAGES: &str = "no stages are declared";

/// The pipeline file's name in the project root.
pub const PIPELINE_FILE: &str = "pipeline.yaml";

/// DVC's pipeline file, read when there is no `pipeline.yaml`.
pub const DVC_FILE: &str = "dvc.yaml";

/// DVC's lock file, beside each `dvc.yaml`.
pub const DVC_LOCK_FILE: &str = "dvc.lock";

/// Which kind of pipeline file the project has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `pipeline.yaml`.
    #[default]
    Pipe,
    /// One or more `dvc.yaml` (and no `pipeline.yaml`).
    Dvc,
}

/// One file the pipeline was read from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its project path: `pipeline.yaml`, `dvc.yaml`, `sub/dvc.yaml`.
    pub path: RelPath,
    /// What its stages' names start with: nothing for a file at the root,
    /// `sub/dvc.yaml:` for one in a sub-directory (as DVC addresses them).
    pub prefix: String,
    pub source: SourceMap,
}

impl SourceFile {
    pub fn new(path: RelPath, text: &str, format: Format) -> SourceFile {
        let prefix = match (format, path.parent()) {
            (Format::Dvc, Some(dir)) if !dir.is_root() => format!("{path}:"),
            _ => String::new(),
        };
        SourceFile {
            path,
            prefix,
            source: SourceMap::new(text),
        }
    }

    /// The directory its paths are relative to.
    pub fn dir(&self) -> RelPath {
        self.path.parent().unwrap_or_else(RelPath::root)
    }
}

/// A resolved pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Absolute path of the project root.
    pub root: PathBuf,
    /// Stages in declaration order (generated stages in item order), file
    /// by file. Read only: [`Pipeline::stage`] finds them by their index
    /// here.
    pub stages: Vec<Stage>,
    pub format: Format,
    /// The files read, in order; [`Stage::file`] indexes this.
    pub files: Vec<SourceFile>,
    /// The top-level `metrics:` files (besides the stages' `metrics:`).
    pub metrics: Vec<RelPath>,
    /// The top-level `params:` files, compared whole by `pipe params diff`.
    pub params: Vec<RelPath>,
    /// The top-level `plots:` definitions.
    pub plots: Vec<plots::PlotDef>,
    /// What was accepted and ignored (DVC fields pipe has no use for), for
    /// `--verbose`.
    pub notes: Vec<String>,
    /// What is allowed but likely a mistake (`item` defined in params.yaml
    /// and by a `foreach`), for every command.
    pub warnings: Vec<String>,
    /// Stage name → index in `stages`, built once by [`Pipeline::new`].
    index: FxHashMap<String, usize>,
}

impl Pipeline {
    pub fn new(root: PathBuf, stages: Vec<Stage>, files: Vec<SourceFile>) -> Pipeline {
        let index = stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Pipeline {
            root,
            stages,
            format: Format::Pipe,
            files,
            metrics: Vec::new(),
            params: Vec::new(),
            plots: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
            index,
        }
    }

    /// The file a stage was declared in, and its name there.
    fn declared_in(&self, stage: &str) -> Option<(&SourceFile, String)> {
        let file = match self.stage(stage) {
            Some(s) => self.files.get(s.file)?,
            None => self
                .files
                .iter()
                .find(|f| !f.prefix.is_empty() && stage.starts_with(&f.prefix))
                .or_else(|| self.files.first())?,
        };
        let local = stage.strip_prefix(&file.prefix).unwrap_or(stage);
        Some((file, local.to_string()))
    }

    /// The name of the pipeline file (for messages): `pipeline.yaml`, or
    /// the first `dvc.yaml`.
    pub fn file_name(&self) -> String {
        self.files
            .first()
            .map(|f| f.path.to_string())
            .unwrap_or_else(|| PIPELINE_FILE.to_string())
    }

    /// The stage named `name`, in constant time.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.index
            .get(name)
            .and_then(|&i| self.stages.get(i))
            .filter(|s| s.name == name)
    }

    /// A diagnostic pointing at a stage's line in its pipeline file.
    pub fn diagnostic(&self, stage: &str, message: impl Into<String>) -> Diagnostic {
        match self.declared_in(stage) {
            Some((file, local)) => Diagnostic::new(file.path.as_str(), message)
                .at(file.source.stage_line(&local), None)
                .stage(stage),
            None => Diagnostic::new(self.file_name(), message).stage(stage),
        }
    }

    /// Like [`Pipeline::diagnostic`], pointing at `word` inside the stage
    /// when it can be found.
    pub fn diagnostic_at(&self, stage: &str, word: &str, message: impl Into<String>) -> Diagnostic {
        let d = self.diagnostic(stage, message);
        match self
            .declared_in(stage)
            .and_then(|(file, local)| file.source.find_in_stage(&local, word))
        {
            Some((line, col)) => d.at(Some(line), Some(col)),
            None => d,
        }
    }

    /// Every metrics file: the stages' `metrics:` outputs (those inside a
    /// directory output too) and the top-level `metrics:`, each once,
    /// sorted.
    pub fn metric_files(&self) -> Vec<RelPath> {
        let set: std::collections::BTreeSet<RelPath> = self
            .stages
            .iter()
            .flat_map(|s| s.outs.iter().chain(&s.inner))
            .filter(|o| o.kind == OutKind::Metric)
            .map(|o| o.path.clone())
            .chain(self.metrics.iter().cloned())
            .collect();
        set.into_iter().collect()
    }
}

/// What a stage does when it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Shell commands, run one after the other with `sh -c`.
    Cmd(Vec<String>),
    /// A built-in stage of the `pipe-stages` crate.
    Builtin {
        name: String,
        version: u32,
        /// All `with:` arguments as written (paths relative to `wdir`).
        args: BTreeMap<String, Json>,
    },
}

impl Action {
    /// A one-line description for listings.
    pub fn summary(&self) -> String {
        match self {
            Action::Cmd(cmds) => cmds.join(" && "),
            Action::Builtin { name, .. } => format!("uses: {name}"),
        }
    }
}

/// What an output is for. Metrics and plots are outputs too; the kind tells
/// `pipe metrics` which files to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutKind {
    Out,
    Metric,
    Plot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    pub path: RelPath,
    pub kind: OutKind,
    /// Store in the content-addressed cache (and so in the run cache).
    pub cache: bool,
    /// Do not delete before the stage runs.
    pub persist: bool,
    /// Written with a trailing `/`: a directory, created empty before the
    /// stage runs.
    pub dir: bool,
    /// For a `plots:` output: the plot's options (`x`, `y`, `template`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plot: Option<plots::PlotOptions>,
}

/// A dependency on params: a dotted key of a params file, or the whole file
/// when `key` is empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ParamRef {
    pub file: RelPath,
    pub key: String,
}

impl std::fmt::Display for ParamRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (
            self.file.as_str() == params::DEFAULT_PARAMS_FILE,
            self.key.is_empty(),
        ) {
            (true, false) => f.write_str(&self.key),
            (_, true) => write!(f, "{}", self.file),
            (false, false) => write!(f, "{}:{}", self.file, self.key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: String,
    pub desc: Option<String>,
    pub action: Action,
    /// Where the command runs, relative to the project root.
    pub wdir: RelPath,
    pub deps: Vec<RelPath>,
    /// Deps named by URL (`s3://…`, `https://…`): their version (ETag,
    /// version id) enters the fingerprint, see [`crate::remote::source`].
    pub url_deps: Vec<String>,
    pub outs: Vec<Output>,
    /// `metrics:` and `plots:` files inside one of `outs` (a directory):
    /// read by `pipe metrics` and plots, but stored, hashed and restored
    /// as part of that directory, not on their own.
    pub inner: Vec<Output>,
    pub params: Vec<ParamRef>,
    pub frozen: bool,
    pub always_changed: bool,
    /// `cmd` as written, before `${…}` rendering (empty for built-ins), and
    /// the values its references had: they let `pipe status` tell a command
    /// edit from a param that changed inside the command.
    pub cmd_template: Vec<String>,
    pub cmd_vars: BTreeMap<String, Json>,
    /// Index in [`Pipeline::files`] of the file it was declared in.
    pub file: usize,
    /// `executor:`: where its work runs, over `--executor` and `pipe.toml`.
    pub executor: Option<crate::executor::Kind>,
    /// `resources:`: what a cluster job of the stage asks for. Neither
    /// enters the fingerprint.
    pub resources: crate::executor::Resources,
}

impl Stage {
    /// Its plot outputs, those inside a directory output too.
    pub fn plot_outputs(&self) -> impl Iterator<Item = &Output> {
        self.outs
            .iter()
            .chain(&self.inner)
            .filter(|o| o.kind == OutKind::Plot)
    }
}

/// Reads and resolves the pipeline of the project at `root`:
/// `pipeline.yaml`, or else its `dvc.yaml` files.
pub fn load(root: &Path) -> Result<Pipeline, PipelineError> {
    load_with(root, None)
}

/// [`load`], with the text of one file given instead of read: what the
/// pipeline would be if that file were written so.
pub fn load_with(root: &Path, edited: Option<(&RelPath, &str)>) -> Result<Pipeline, PipelineError> {
    let read = |path: &RelPath| -> Result<String, PipelineError> {
        if let Some((file, text)) = edited.filter(|(file, _)| *file == path) {
            debug_assert_eq!(file, path);
            return Ok(text.to_string());
        }
        std::fs::read_to_string(path.to_path(root))
            .map_err(|e| Diagnostic::new(path.as_str(), format!("cannot read: {e}")).into())
    };
    let pipe = RelPath::from_normalized(PIPELINE_FILE);
    if pipe.to_path(root).is_file() || edited.is_some_and(|(file, _)| *file == pipe) {
        let text = read(&pipe)?;
        let parsing = dvc_parsing(root)?;
        return resolve::resolve_files(root, Format::Pipe, &[(pipe, text)], parsing);
    }
    let found = dvc_files(root);
    if found.is_empty() {
        return Err(Diagnostic::new(PIPELINE_FILE, format!("no pipeline file in {}", root.display()))
            .hint("create pipeline.yaml with a `stages:` mapping (see the README), or run pipe from the project root")
            .into());
    }
    let mut files = Vec::with_capacity(found.len());
    for path in found {
        let text = read(&path)?;
        files.push((path, text));
    }
    let parsing = dvc_parsing(root)?;
    resolve::resolve_files(root, Format::Dvc, &files, parsing)
}

/// The `dvc.yaml` files of the project: the one at the root first, then
/// those in sub-directories in path order. Hidden directories (`.git`,
/// `.dvc`, `.pipeline-cache`, …) are not searched, and symlinks are not
/// followed.
pub fn dvc_files(root: &Path) -> Vec<RelPath> {
    let mut found: Vec<RelPath> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            !(e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with('.'))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() == DVC_FILE)
        .filter_map(|e| {
            let rel = e.path().strip_prefix(root).ok()?.to_str()?;
            RelPath::normalized(rel).ok()
        })
        .collect();
    found.sort_by_key(|p| (p.as_str().contains('/'), p.clone()));
    found
}

/// How mappings are written into commands: the `[parsing]` section of
/// `.dvc/config` (and `.dvc/config.local`), as DVC reads it.
pub fn dvc_parsing(root: &Path) -> Result<template::Parsing, PipelineError> {
    let mut parsing = template::Parsing::default();
    for name in ["config", "config.local"] {
        let path = root.join(".dvc").join(name);
        if !path.is_file() {
            continue;
        }
        let shown = format!(".dvc/{name}");
        let ini = ini::Ini::load_from_file(&path)
            .map_err(|e| Diagnostic::new(shown.as_str(), format!("cannot read: {e}")))?;
        let Some(section) = ini.section(Some("parsing")) else {
            continue;
        };
        if let Some(v) = section.get("bool") {
            parsing.bool_optional = match v.trim() {
                "store_true" => false,
                "boolean_optional" => true,
                other => {
                    return Err(Diagnostic::new(
                        shown.as_str(),
                        format!(
                            "parsing.bool is `{other}`; it must be store_true or boolean_optional"
                        ),
                    )
                    .into())
                }
            };
        }
        if let Some(v) = section.get("list") {
            parsing.list_append = match v.trim() {
                "nargs" => false,
                "append" => true,
                other => {
                    return Err(Diagnostic::new(
                        shown.as_str(),
                        format!("parsing.list is `{other}`; it must be nargs or append"),
                    )
                    .into())
                }
            };
        }
    }
    Ok(parsing)
}
