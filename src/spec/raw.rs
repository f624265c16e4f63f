//! The schema of `pipeline.yaml` and `dvc.yaml`, as the user writes them.
//!
//! Field names follow `dvc.yaml` (DVC's `dvc/schema.py`), so that a DVC
//! project's file is read as it is. The file is parsed into a YAML value
//! first and checked here field by field, instead of by serde into
//! structs that deny unknown fields: serde stops at the first problem,
//! while a user wants every misspelt field of the file in one pass. Each
//! check returns what it found wrong ([`Problem`]) with the word to point
//! at; [`super::resolve`] turns them into located diagnostics.
//!
//! Three kinds of names:
//!
//! - fields pipe uses (`cmd`, `deps`, `outs`, …);
//! - fields DVC accepts that change nothing in pipe (`meta`, an output's
//!   `desc`, `type`, `labels`, `push`, `remote`; top-level `artifacts` and
//!   `datasets`): accepted, and named in a note under `--verbose`
//!   ([`IGNORED_STAGE_FIELDS`], [`IGNORED_OUTPUT_FIELDS`]);
//! - anything else: an error with the nearest known name.
//!
//! Values are still raw here: `${…}` templates are expanded and paths
//! normalized in [`super::resolve`].

use yaml_serde::{Mapping, Value};

/// Top-level sections.
pub const TOP_FIELDS: &[&str] = &[
    "stages",
    "vars",
    "params",
    "metrics",
    "plots",
    "artifacts",
    "datasets",
];

/// The fields a stage may have (besides `foreach`/`do` and `matrix`).
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
    "vars",
    "meta",
    "executor",
    "resources",
];

/// Stage fields DVC accepts and pipe has no use for.
pub const IGNORED_STAGE_FIELDS: &[&str] = &["meta"];

/// The options an output entry (`- path: {…}`) may have.
pub const OUTPUT_FIELDS: &[&str] = &[
    "cache", "persist", "desc", "type", "labels", "meta", "push", "remote",
];

/// Output options DVC accepts and pipe has no use for (`push` and
/// `remote` choose what `dvc push` sends where; pipe pushes every cached
/// output to the one remote it is given).
pub const IGNORED_OUTPUT_FIELDS: &[&str] = &["type", "labels", "meta", "push", "remote"];

/// The options of a plot output (`plots: - path: {…}`): the output
/// options and the plot's own.
pub const PLOT_OUTPUT_FIELDS: &[&str] = &[
    "cache", "persist", "desc", "type", "labels", "meta", "push", "remote", "x", "y", "template",
    "title", "x_label", "y_label", "header",
];

/// The fields of a top-level plot definition.
pub const PLOT_FIELDS: &[&str] = &["x", "y", "template", "title", "x_label", "y_label"];

/// The fields of an artifact.
pub const ARTIFACT_FIELDS: &[&str] = &["path", "type", "desc", "labels", "meta"];

/// Something wrong with the shape of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The word to point at (a field name, usually).
    pub word: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(word: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            word: word.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// As a located diagnostic.
    pub fn into_diag(self, at: &dyn Fn(&str, String) -> super::Diagnostic) -> super::Diagnostic {
        let d = at(&self.word, self.message);
        match self.hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }
}

/// An unknown field among `known`: the problem, with the nearest name.
pub fn unknown(field: &str, known: &[&str], what: &str) -> Problem {
    let hint = match super::diagnostic::did_you_mean(field, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("{what} are: {}", known.join(", ")),
    };
    Problem::new(field, format!("unknown field `{field}`")).hint(hint)
}

/// The key of a mapping entry as text (numbers and booleans as written).
pub fn key_text(key: &Value) -> String {
    super::template::scalar_plain(key).unwrap_or_default()
}

/// The fields of one stage definition (or the `do:` body of a `foreach`),
/// borrowed from the parsed file.
#[derive(Debug, Clone, Default)]
pub struct RawStage<'a> {
    pub cmd: Option<&'a Value>,
    pub uses: Option<&'a Value>,
    pub with: Option<&'a Value>,
    pub deps: Option<&'a Value>,
    pub outs: Option<&'a Value>,
    pub params: Option<&'a Value>,
    pub metrics: Option<&'a Value>,
    pub plots: Option<&'a Value>,
    pub desc: Option<&'a Value>,
    pub wdir: Option<&'a Value>,
    pub frozen: Option<&'a Value>,
    pub always_changed: Option<&'a Value>,
    pub vars: Option<&'a Value>,
    pub executor: Option<&'a Value>,
    pub resources: Option<&'a Value>,
    pub foreach: Option<&'a Value>,
    pub do_: Option<&'a Value>,
    pub matrix: Option<&'a Value>,
    /// Fields accepted and ignored, for `--verbose`.
    pub ignored: Vec<String>,
}

impl<'a> RawStage<'a> {
    /// Reads a stage mapping; unknown fields are returned as problems.
    /// `generator` allows `foreach`, `do` and `matrix` (false inside `do:`).
    pub fn read(map: &'a Mapping, generator: bool) -> (RawStage<'a>, Vec<Problem>) {
        let mut stage = RawStage::default();
        let mut problems = Vec::new();
        for (k, v) in map {
            let key = key_text(k);
            let slot = match key.as_str() {
                "cmd" => &mut stage.cmd,
                "uses" => &mut stage.uses,
                "with" => &mut stage.with,
                "deps" => &mut stage.deps,
                "outs" => &mut stage.outs,
                "params" => &mut stage.params,
                "metrics" => &mut stage.metrics,
                "plots" => &mut stage.plots,
                "desc" => &mut stage.desc,
                "wdir" => &mut stage.wdir,
                "frozen" => &mut stage.frozen,
                "always_changed" => &mut stage.always_changed,
                "vars" => &mut stage.vars,
                "executor" => &mut stage.executor,
                "resources" => &mut stage.resources,
                "foreach" if generator => &mut stage.foreach,
                "do" if generator => &mut stage.do_,
                "matrix" if generator => &mut stage.matrix,
                "meta" => {
                    stage.ignored.push(key);
                    continue;
                }
                _ => {
                    let mut known: Vec<&str> = STAGE_FIELDS.to_vec();
                    if generator {
                        known.extend(["foreach", "do", "matrix"]);
                    }
                    problems.push(unknown(&key, &known, "stage fields"));
                    continue;
                }
            };
            // Null (`deps:` with nothing after it) is as good as absent.
            if !v.is_null() {
                *slot = Some(v);
            }
        }
        (stage, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_field_is_a_problem_with_a_suggestion() {
        let map: Mapping =
            yaml_serde::from_str("cmd: x\ndpes: [a]\nmeta: {k: 1}\noutz: [b]\nfoo: 1\n").unwrap();
        let (stage, problems) = RawStage::read(&map, true);
        assert!(stage.cmd.is_some());
        assert_eq!(stage.ignored, ["meta"]);
        let words: Vec<(&str, Option<&str>)> = problems
            .iter()
            .map(|p| (p.word.as_str(), p.hint.as_deref()))
            .collect();
        assert_eq!(words[0], ("dpes", Some("did you mean `deps`?")));
        assert_eq!(words[1], ("outz", Some("did you mean `outs`?")));
        assert_eq!(words[2].0, "foo");
        assert!(words[2]
            .1
            .unwrap()
            .starts_with("stage fields are: cmd, uses"));
    }

    #[test]
    fn generators_are_fields_only_outside_do() {
        let map: Mapping = yaml_serde::from_str("foreach: [a]\ndo: {cmd: x}\n").unwrap();
        assert!(RawStage::read(&map, true).1.is_empty());
        assert_eq!(RawStage::read(&map, false).1.len(), 2);
    }
}
