//! The pipeline definition: `pipeline.yaml` and its params, resolved into
//! typed stages.
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
pub mod limits;
pub mod locate;
pub mod params;
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

/// The pipeline file's name in the project root.
pub const PIPELINE_FILE: &str = "pipeline.yaml";

/// A resolved pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Absolute path of the project root.
    pub root: PathBuf,
    /// Stages in declaration order (generated stages in item order). Read
    /// only: [`Pipeline::stage`] finds them by their index here.
    pub stages: Vec<Stage>,
    pub source: SourceMap,
    /// Stage name → index in `stages`, built once by [`Pipeline::new`].
    index: FxHashMap<String, usize>,
}

impl Pipeline {
    pub fn new(root: PathBuf, stages: Vec<Stage>, source: SourceMap) -> Pipeline {
        let index = stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Pipeline {
            root,
            stages,
            source,
            index,
        }
    }

    /// The stage named `name`, in constant time.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.index
            .get(name)
            .and_then(|&i| self.stages.get(i))
            .filter(|s| s.name == name)
    }

    /// A diagnostic pointing at a stage's line in `pipeline.yaml`.
    pub fn diagnostic(&self, stage: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(PIPELINE_FILE, message)
            .at(self.source.stage_line(stage), None)
            .stage(stage)
    }

    /// Like [`Pipeline::diagnostic`], pointing at `word` inside the stage
    /// when it can be found.
    pub fn diagnostic_at(&self, stage: &str, word: &str, message: impl Into<String>) -> Diagnostic {
        let d = self.diagnostic(stage, message);
        match self.source.find_in_stage(stage, word) {
            Some((line, col)) => d.at(Some(line), Some(col)),
            None => d,
        }
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
    pub outs: Vec<Output>,
    pub params: Vec<ParamRef>,
    pub frozen: bool,
    pub always_changed: bool,
    /// `cmd` as written, before `${…}` rendering (empty for built-ins), and
    /// the values its references had: they let `pipe status` tell a command
    /// edit from a param that changed inside the command.
    pub cmd_template: Vec<String>,
    pub cmd_vars: BTreeMap<String, Json>,
}

/// Reads and resolves `pipeline.yaml` in `root`.
pub fn load(root: &Path) -> Result<Pipeline, PipelineError> {
    let path = root.join(PIPELINE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Diagnostic::new(PIPELINE_FILE, format!("no pipeline file in {}", root.display()))
                .hint("create pipeline.yaml with a `stages:` mapping (see the README), or run pipe from the project root")
                .into())
        }
        Err(e) => return Err(Diagnostic::new(PIPELINE_FILE, format!("cannot read: {e}")).into()),
    };
    resolve::resolve(root, &text)
}
