//! The serde schema of `pipeline.yaml`, as the user writes it.
//!
//! Field names follow `dvc.yaml`. Every struct denies unknown fields so that a
//! misspelt field is an error with a line and column (serde_yaml reports them)
//! rather than a silently ignored setting. Values here are still raw text:
//! `${…}` templates are expanded and paths normalized in [`super::resolve`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

/// The fields a stage may have; used for "did you mean" hints.
pub const STAGE_FIELDS: &[&str] = &[
    "cmd",
    "uses",
    "with",
    "deps",
    "outs",
    "params",
    "metrics",
    "plots",
    "desc",
    "wdir",
    "frozen",
    "always_changed",
    "foreach",
    "do",
    "matrix",
    "meta",
];

/// The fields an output entry (`- path: {…}`) may have.
pub const OUTPUT_FIELDS: &[&str] = &["cache", "persist", "desc"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    #[serde(default)]
    pub vars: Vec<Value>,
    #[serde(default)]
    pub stages: BTreeMap<String, RawStage>,
}

/// One stage, or the `do:` body of a `foreach` stage.
///
/// Fields whose entries have several shapes (`cmd`, `outs`, `params`, …) stay
/// YAML values here and are converted in [`super::resolve`], which reports a
/// wrong shape with the stage's line instead of serde's "did not match any
/// variant".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub cmd: Option<Value>,
    pub uses: Option<String>,
    pub with: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub deps: Vec<String>,
    #[serde(default)]
    pub outs: Vec<Value>,
    #[serde(default)]
    pub params: Vec<Value>,
    #[serde(default)]
    pub metrics: Vec<Value>,
    #[serde(default)]
    pub plots: Vec<Value>,
    pub desc: Option<String>,
    pub wdir: Option<String>,
    pub frozen: Option<bool>,
    pub always_changed: Option<bool>,
    pub foreach: Option<Value>,
    #[serde(rename = "do")]
    pub do_: Option<Box<RawStage>>,
    pub matrix: Option<serde_yaml::Mapping>,
    pub meta: Option<Value>,
}
