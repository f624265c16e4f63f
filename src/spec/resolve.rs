//! From the files as written to typed stages.
//!
//! A pipeline is one `pipeline.yaml`, or one or more `dvc.yaml` files (a
//! DVC project may keep one per directory). Each file is read the same way,
//! as DVC reads `dvc.yaml`:
//!
//! 1. Parse the YAML into a value (syntax errors carry serde's line and
//!    column; alias bombs are refused by [`super::yaml`]).
//! 2. Check the top-level sections and every stage's fields against the
//!    schema ([`super::raw`]): every unknown field is reported, each with
//!    the nearest known name, in the same pass.
//! 3. Build the template context ([`super::template`]): the `params.yaml`
//!    beside the file, then `vars:`, merged key by key.
//! 4. Expand `foreach`/`matrix` into `name@item` stages (counted against
//!    [`limits::MAX_STAGES`] before any is made), add each stage's own
//!    `vars:` (relative to its `wdir`), render its fields, convert it and
//!    check its paths (length, [`reserved`] outputs, symlinks out of the
//!    project) and params.
//! 5. Read the top-level `metrics:`, `params:` and `plots:` sections
//!    ([`super::plots`]), and accept `artifacts:` and `datasets:`.
//!
//! Paths in a file are relative to its directory (and a stage's to its
//! `wdir`); they come out relative to the project root. Stages of a file in
//! a sub-directory are named as DVC addresses them, `sub/dvc.yaml:train`.
//!
//! Problems are collected, not returned at the first one, and reported once
//! each: a broken params file is one error, not one per stage that reads
//! it, and the names it would have defined are not reported as undefined on
//! top of it. Fields DVC accepts that change nothing in pipe are kept as
//! notes for `--verbose`.
//!
//! The work is linear in the size of the files: generated stages share the
//! template context instead of copying it, and what the disk says about a
//! directory (is it a symlink leading out?) is asked once per directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHashSet};
use yaml_serde::{Mapping, Value};

use super::diagnostic::{did_you_mean, Diagnostic, PipelineError};
use super::limits::{self, Generator};
use super::params::{self, ParamsFiles, DEFAULT_PARAMS_FILE};
use super::plots::{self, PlotOptions};
use super::raw::{
    self, key_text, Problem, RawStage, ARTIFACT_FIELDS, IGNORED_OUTPUT_FIELDS, OUTPUT_FIELDS,
    PLOT_OUTPUT_FIELDS, TOP_FIELDS,
};
use super::template::{self, scalar_plain, Context, Field, Parsing, TemplateError};
use super::{reserved, yaml};
use super::{
    Action, Format, OutKind, Output, ParamRef, Pipeline, SourceFile, Stage, PIPELINE_FILE,
};
use crate::builtin::{self, ArgRole};
use crate::paths::RelPath;

/// Resolves the text of a `pipeline.yaml` in `root`.
pub fn resolve(root: &Path, text: &str) -> Result<Pipeline, PipelineError> {
    resolve_files(
        root,
        Format::Pipe,
        &[(RelPath::from_normalized(PIPELINE_FILE), text.to_string())],
        Parsing::default(),
    )
}

/// Resolves pipeline files (project path and text), in order, into one
/// pipeline.
pub fn resolve_files(
    root: &Path,
    format: Format,
    files: &[(RelPath, String)],
    parsing: Parsing,
) -> Result<Pipeline, PipelineError> {
    let reserved_paths: Vec<RelPath> = files
        .iter()
        .filter(|_| format == Format::Dvc)
        .flat_map(|(path, _)| {
            let dir = path.parent().unwrap_or_else(RelPath::root);
            [path.clone(), dir.join("dvc.lock")]
        })
        .collect();
    let mut r = Reader {
        parsing,
        params_files: ParamsFiles::new(root),
        paths: PathRules {
            checker: PathChecker::new(root),
            reserved: reserved_paths,
        },
        made: 0,
        too_many: false,
        out: Declared::default(),
        diags: Vec::new(),
    };
    let mut sources = Vec::new();
    for (i, (path, text)) in files.iter().enumerate() {
        let file = SourceFile::new(path.clone(), text, format);
        r.read_file(i, &file, text);
        sources.push(file);
    }
    let Reader { out, mut diags, .. } = r;
    if diags.is_empty() && out.stages.is_empty() {
        let empty_dvc = format == Format::Dvc
            && !(out.metrics.is_empty() && out.params.is_empty() && out.plots.is_empty());
        if !empty_dvc {
            let file = sources
                .first()
                .map(|f| f.path.as_str().to_string())
                .unwrap_or_else(|| PIPELINE_FILE.to_string());
            diags.push(
                Diagnostic::new(file, super::NO_STAGES)
                    .hint("add at least one stage under `stages:`"),
            );
        }
    }
    if diags.is_empty() {
        let mut p = Pipeline::new(root.to_path_buf(), out.stages, sources);
        p.format = format;
        p.metrics = out.metrics;
        p.params = out.params;
        p.plots = out.plots;
        p.notes = out.notes;
        p.warnings = out.warnings;
        Ok(p)
    } else {
        // A file that is wrong (an invalid params.yaml) is reported once,
        // not once per stage that reads it.
        let mut seen = HashSet::new();
        diags.retain(|d| seen.insert(d.clone()));
        Err(PipelineError { diagnostics: diags })
    }
}

/// What the files declare, gathered across files.
#[derive(Default)]
struct Declared {
    stages: Vec<Stage>,
    metrics: Vec<RelPath>,
    params: Vec<RelPath>,
    plots: Vec<plots::PlotDef>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

/// The state of one resolution, across files.
struct Reader {
    parsing: Parsing,
    params_files: ParamsFiles,
    paths: PathRules,
    /// Stages made so far (even those with errors).
    made: usize,
    too_many: bool,
    out: Declared,
    diags: Vec<Diagnostic>,
}

/// One file being read: where it is, and how to point into it.
struct FileCx<'f> {
    index: usize,
    file: &'f SourceFile,
    /// Its directory: paths in it are relative to this.
    dir: RelPath,
}

impl FileCx<'_> {
    fn name(&self) -> &str {
        self.file.path.as_str()
    }

    fn diag(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.name(), message)
    }

    /// A diagnostic at the top-level key `section`, pointing at `word` in
    /// it when it can be found.
    fn at_top(&self, section: &str, word: &str, message: impl Into<String>) -> Diagnostic {
        let d = self.diag(message);
        match self.file.source.find_in_top(section, word) {
            Some((l, c)) => d.at(Some(l), Some(c)),
            None => d.at(self.file.source.top_line(section), None),
        }
    }

    fn problem_at_top(&self, section: &str, p: Problem) -> Diagnostic {
        let d = self.at_top(section, &p.word, format!("{section}: {}", p.message));
        match p.hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }

    /// A diagnostic at `word` inside stage `local` (its name in the file),
    /// or at the stage's line.
    fn at_stage(&self, local: &str, shown: &str, word: &str, message: String) -> Diagnostic {
        let d = self.diag(message).stage(shown);
        match self.file.source.find_in_stage(local, word) {
            Some((l, c)) => d.at(Some(l), Some(c)),
            None => d.at(self.file.source.stage_line(local), None),
        }
    }
}

impl Reader {
    fn read_file(&mut self, index: usize, file: &SourceFile, text: &str) {
        let cx = FileCx {
            index,
            file,
            dir: file.path.parent().unwrap_or_else(RelPath::root),
        };
        let empty = || {
            cx.diag("the pipeline file is empty")
                .hint("declare stages under `stages:`, e.g.\n  stages:\n    hello:\n      cmd: echo hello > hello.txt\n      outs: [hello.txt]")
        };
        if text.trim().is_empty() {
            self.diags.push(empty());
            return;
        }
        let duplicates: Vec<Diagnostic> = file
            .source
            .duplicates()
            .into_iter()
            .map(|(name, first, second)| {
                cx.diag(format!(
                    "stage `{name}` is declared twice (first on line {first})"
                ))
                .at(Some(second), None)
                .hint("give each stage its own name; YAML keeps only the last of two equal keys")
            })
            .collect();
        if !duplicates.is_empty() {
            self.diags.extend(duplicates);
            return;
        }
        let doc: Value = match yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                self.diags.push(yaml_error(cx.name(), e, text));
                return;
            }
        };
        let top = match doc {
            Value::Null => {
                self.diags.push(empty());
                return;
            }
            Value::Mapping(m) => m,
            _ => {
                self.diags.push(
                    cx.diag("the pipeline file must be a mapping with a `stages:` key")
                        .at(Some(1), Some(1))
                        .hint("start it with `stages:` and put one stage name per line below it"),
                );
                return;
            }
        };
        let mut sections: BTreeMap<&str, &Value> = BTreeMap::new();
        for (k, v) in &top {
            let key = key_text(k);
            match TOP_FIELDS.iter().find(|f| **f == key) {
                Some(f) => {
                    sections.insert(f, v);
                }
                None => {
                    let p = raw::unknown(&key, TOP_FIELDS, "top-level sections");
                    let line = file.source.top_line(&key);
                    let mut d = cx.diag(p.message).at(line, line.map(|_| 1));
                    if let Some(h) = p.hint {
                        d = d.hint(h);
                    }
                    self.diags.push(d);
                }
            }
        }

        let before = self.diags.len();
        let mut ctx = self.global_context(&cx, sections.get("vars").copied());
        if self.diags.len() > before {
            ctx.mark_incomplete();
        }
        if let Some(v) = sections.get("metrics") {
            let paths = self.top_paths(&cx, &ctx, "metrics", v);
            self.out.metrics.extend(paths);
        }
        if let Some(v) = sections.get("params") {
            let paths = self.top_paths(&cx, &ctx, "params", v);
            self.out.params.extend(paths);
        }
        if let Some(v) = sections.get("plots") {
            self.top_plots(&cx, &ctx, v);
        }
        if let Some(v) = sections.get("artifacts") {
            self.artifacts(&cx, &ctx, v);
        }
        if sections.contains_key("datasets") {
            self.out.notes.push(format!(
                "{}: `datasets` is accepted and ignored (pipe has no use for it)",
                cx.name()
            ));
        }
        match sections.get("stages") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(stages)) => {
                for (k, body) in stages {
                    self.stage(&cx, &ctx, &key_text(k), body);
                }
            }
            Some(_) => self.diags.push(
                cx.at_top("stages", "stages", "`stages` must be a mapping of stage names to stages")
                    .hint("write one stage name per line below `stages:`, each with its fields indented under it"),
            ),
        }
    }

    /// `params.yaml` beside the file, then the top-level `vars:`.
    fn global_context(&mut self, cx: &FileCx, vars: Option<&Value>) -> Context {
        let mut ctx = Context::new();
        ctx.parsing = self.parsing;
        let default = cx.dir.join(DEFAULT_PARAMS_FILE);
        match self.params_files.get(&default) {
            Ok(Some(Value::Mapping(m))) => {
                let _ = ctx.import(default.as_str(), &[]);
                if let Err(e) = ctx.merge(m, default.as_str()) {
                    self.diags.push(cx.diag(e.to_string()));
                }
            }
            Ok(Some(_)) => self.diags.push(
                Diagnostic::new(default.as_str(), "is not a mapping of names to values").hint(
                    "write `name: value` lines (nested names are indented below their section)",
                ),
            ),
            Ok(None) => {}
            Err(d) => self.diags.push(d),
        }
        if let Some(vars) = vars {
            let here = |msg: String| cx.at_top("vars", "vars", msg);
            let problems = self.load_vars(&mut ctx, vars, &cx.dir, "");
            for (word, message, hint) in problems {
                let mut d = match word {
                    Some(w) => cx.at_top("vars", &w, message),
                    None => here(message),
                };
                if let Some(h) = hint {
                    d = d.hint(h);
                }
                self.diags.push(d);
            }
        }
        ctx
    }

    /// Merges `vars:` entries into `ctx`: files relative to `dir`, inline
    /// mappings named `{stage}.vars[i]`. Returns the problems: (the word to
    /// point at, message, hint).
    #[allow(clippy::type_complexity)]
    fn load_vars(
        &mut self,
        ctx: &mut Context,
        vars: &Value,
        dir: &RelPath,
        stage: &str,
    ) -> Vec<(Option<String>, String, Option<String>)> {
        let mut problems = Vec::new();
        let Value::Sequence(entries) = vars else {
            problems.push((
                None,
                "`vars` must be a list of files and mappings".to_string(),
                Some("e.g. vars: [config.yaml, {model_dir: model}]".to_string()),
            ));
            return problems;
        };
        let prefix = if stage.is_empty() {
            String::new()
        } else {
            format!("{stage}.")
        };
        for (i, var) in entries.iter().enumerate() {
            if let Err(e) = template::check_no_templates(var) {
                problems.push((
                    None,
                    format!("vars: {e}"),
                    Some(
                        "`vars` are read before any template is expanded: write the values out"
                            .into(),
                    ),
                ));
                continue;
            }
            match var {
                Value::Mapping(m) => {
                    if let Err(e) = ctx.merge(m, &format!("{prefix}vars[{i}]")) {
                        problems.push((None, format!("vars: {e}"), None));
                    }
                }
                Value::String(spec) => {
                    // `file.yaml` or `file.yaml:key1,key2`
                    let (file, keys) = match spec.split_once(':') {
                        Some((f, k)) => (
                            f,
                            k.split(',')
                                .map(str::trim)
                                .filter(|k| !k.is_empty())
                                .map(str::to_string)
                                .collect(),
                        ),
                        None => (spec.as_str(), Vec::new()),
                    };
                    let rel = match RelPath::parse(file, Some(dir)) {
                        Ok(r) => r,
                        Err(e) => {
                            problems.push((Some(file.to_string()), format!("vars: {e}"), None));
                            continue;
                        }
                    };
                    match self.params_files.get(&rel) {
                        Ok(Some(Value::Mapping(m))) => {
                            let m = m.clone();
                            match ctx.import(rel.as_str(), &keys) {
                                Ok(false) => continue,
                                Ok(true) => {}
                                Err(e) => {
                                    problems.push((
                                        Some(file.to_string()),
                                        format!("vars: {e}"),
                                        None,
                                    ));
                                    continue;
                                }
                            }
                            let selected = if keys.is_empty() {
                                m
                            } else {
                                let mut sel = Mapping::new();
                                for key in &keys {
                                    match m.get(key.as_str()) {
                                        Some(v) => {
                                            sel.insert(Value::String(key.clone()), v.clone());
                                        }
                                        None => problems.push((
                                            Some(file.to_string()),
                                            format!("vars: could not find `{key}` in {rel}"),
                                            None,
                                        )),
                                    }
                                }
                                sel
                            };
                            if let Err(e) = ctx.merge(&selected, rel.as_str()) {
                                problems.push((Some(file.to_string()), format!("vars: {e}"), None));
                            }
                        }
                        Ok(Some(_)) => problems.push((
                            Some(file.to_string()),
                            format!("vars: {rel} is not a mapping of names to values"),
                            None,
                        )),
                        Ok(None) => problems.push((
                            Some(file.to_string()),
                            format!("vars: file `{rel}` does not exist"),
                            Some("create it, or remove it from `vars:`".into()),
                        )),
                        Err(d) => {
                            self.diags.push(d);
                            ctx.mark_incomplete();
                        }
                    }
                }
                other => problems.push((
                    None,
                    format!(
                        "vars: each entry is a mapping or a file name, not `{}`",
                        yaml_serde::to_string(other).unwrap_or_default().trim()
                    ),
                    None,
                )),
            }
        }
        problems
    }

    /// The top-level `metrics:` or `params:`: a list of files.
    fn top_paths(
        &mut self,
        cx: &FileCx,
        ctx: &Context,
        section: &str,
        value: &Value,
    ) -> Vec<RelPath> {
        let mut out = Vec::new();
        let rendered = match ctx.render_value(value, Field::Any) {
            Ok(v) => v,
            Err(e) => {
                if !ctx.explained(&e) {
                    self.diags
                        .push(cx.at_top(section, "${", format!("{section}: {e}")));
                }
                return out;
            }
        };
        let Value::Sequence(items) = rendered else {
            self.diags.push(
                cx.at_top(
                    section,
                    section,
                    format!("`{section}` must be a list of files"),
                )
                .hint(format!("write `{section}:` then one `- path` per line")),
            );
            return out;
        };
        for item in items {
            let Some(text) = scalar_plain(&item).filter(|_| !item.is_mapping()) else {
                self.diags.push(cx.at_top(
                    section,
                    section,
                    format!("{section}: each entry is a file path"),
                ));
                continue;
            };
            match self.paths.project_path(&cx.dir, &text, false) {
                Ok(p) => {
                    if !out.contains(&p) {
                        out.push(p)
                    }
                }
                Err(p) => self.diags.push(cx.problem_at_top(section, p)),
            }
        }
        out
    }

    fn top_plots(&mut self, cx: &FileCx, ctx: &Context, value: &Value) {
        let rendered = match ctx.render_value(value, Field::Any) {
            Ok(v) => v,
            Err(e) => {
                if !ctx.explained(&e) {
                    self.diags
                        .push(cx.at_top("plots", "${", format!("plots: {e}")));
                }
                return;
            }
        };
        let dir = cx.dir.clone();
        let (defs, problems) = {
            let rules = &self.paths;
            plots::read_top_level(&rendered, &|text: &str| {
                rules.project_path(&dir, text, false)
            })
        };
        for p in problems {
            self.diags.push(cx.problem_at_top("plots", p));
        }
        self.out.plots.extend(defs);
    }

    /// `artifacts:` name → {path, type, desc, labels, meta}: checked, then
    /// ignored (a model registry's business).
    fn artifacts(&mut self, cx: &FileCx, ctx: &Context, value: &Value) {
        let rendered = match ctx.render_value(value, Field::Any) {
            Ok(v) => v,
            Err(e) => {
                if !ctx.explained(&e) {
                    self.diags
                        .push(cx.at_top("artifacts", "${", format!("artifacts: {e}")));
                }
                return;
            }
        };
        let Value::Mapping(map) = rendered else {
            self.diags.push(cx.at_top(
                "artifacts",
                "artifacts",
                "`artifacts` must be a mapping of artifact names to their fields",
            ));
            return;
        };
        for (k, v) in &map {
            let name = key_text(k);
            let Value::Mapping(fields) = v else {
                self.diags.push(cx.at_top(
                    "artifacts",
                    &name,
                    format!("artifacts: `{name}` must be a mapping with at least a `path`"),
                ));
                continue;
            };
            for (fk, _) in fields {
                let field = key_text(fk);
                if !ARTIFACT_FIELDS.contains(&field.as_str()) {
                    let p = raw::unknown(&field, ARTIFACT_FIELDS, "artifact fields");
                    self.diags.push(cx.problem_at_top("artifacts", p));
                }
            }
            if !fields.contains_key("path") {
                self.diags.push(
                    cx.at_top(
                        "artifacts",
                        &name,
                        format!("artifacts: `{name}` has no `path`"),
                    )
                    .hint("add `path:` with the artifact's file (or URL)"),
                );
            }
        }
        if !map.is_empty() {
            self.out.notes.push(format!(
                "{}: `artifacts` ({}) are accepted and ignored (pipe keeps no model registry)",
                cx.name(),
                map.keys().map(key_text).collect::<Vec<_>>().join(", ")
            ));
        }
    }

    /// One entry of `stages:`: expanded, and each stage it makes converted.
    fn stage(&mut self, cx: &FileCx, ctx: &Context, name: &str, body: &Value) {
        let here = |msg: String| {
            cx.diag(msg)
                .at(cx.file.source.stage_line(name), None)
                .stage(format!("{}{name}", cx.file.prefix))
        };
        if name.contains('@') || name.contains('/') || name.contains(':') || name.trim().is_empty()
        {
            self.diags.push(here(format!("`{name}` is not a valid stage name")).hint(
                "use letters, digits, `-` and `_`; `@` is reserved for stages made by foreach/matrix",
            ));
            return;
        }
        let Value::Mapping(map) = body else {
            self.diags.push(
                here("a stage is a mapping of fields (`cmd`, `deps`, `outs`, …)".into())
                    .hint("indent the stage's fields below its name"),
            );
            return;
        };
        let shown = format!("{}{name}", cx.file.prefix);
        let (outer, problems) = RawStage::read(map, true);
        let mut bad = false;
        for p in problems {
            bad = true;
            self.push_problem(cx, name, &shown, p);
        }
        let template = if let Some(foreach) = outer.foreach {
            let _ = foreach;
            let stray: Vec<&str> = map
                .keys()
                .map(|k| k.as_str().unwrap_or_default())
                .filter(|k| !["foreach", "do"].contains(k) && raw::STAGE_FIELDS.contains(k))
                .collect();
            if !stray.is_empty() {
                self.diags.push(
                    cx.at_stage(
                        name,
                        &shown,
                        stray[0],
                        format!(
                            "a `foreach` stage puts its fields under `do:` (found `{}` beside it)",
                            stray.join("`, `")
                        ),
                    )
                    .hint("indent them below `do:`"),
                );
                return;
            }
            match outer.do_ {
                Some(Value::Mapping(body)) => {
                    let (inner, problems) = RawStage::read(body, false);
                    for p in problems {
                        bad = true;
                        self.push_problem(cx, name, &shown, p);
                    }
                    inner
                }
                Some(_) => {
                    self.diags.push(here(
                        "`do:` must hold the stage to repeat, as a mapping of fields".into(),
                    ));
                    return;
                }
                None => {
                    self.diags.push(here(
                        "`foreach` needs a `do:` with the stage to repeat".into(),
                    ));
                    return;
                }
            }
        } else {
            if outer.do_.is_some() {
                self.diags.push(here("`do:` goes with `foreach:`".into()));
                return;
            }
            outer.clone()
        };
        for field in &template.ignored {
            self.out.notes.push(format!(
                "{}: stage `{shown}`: `{field}` is accepted and ignored (pipe has no use for it)",
                cx.name()
            ));
        }
        let generated = match self.expand(name, &outer, ctx) {
            Ok(g) => g,
            Err(Refused::Invalid(msg)) => {
                self.diags.push(here(msg));
                return;
            }
            Err(Refused::TooMany(msg)) => {
                if !self.too_many {
                    self.diags
                        .push(here(msg).hint(limits::TOO_MANY_STAGES_HINT));
                    self.too_many = true;
                }
                return;
            }
        };
        self.made += generated.len();
        let mut names: FxHashSet<String> = FxHashSet::default();
        let mut reported = false;
        for (local, stage_ctx) in generated {
            if !names.insert(local.clone()) {
                // `foreach: [a, a]`, or matrix values `1` and "1".
                if !reported {
                    self.diags.push(here(format!("makes two stages named `{local}`: items that read the same give the same name"))
                        .hint("make the items distinct, or name each one with a mapping: `foreach: {name: item, …}`"));
                    reported = true;
                }
                continue;
            }
            match self.convert(cx, name, &local, &template, stage_ctx, bad) {
                Ok(stage) if !bad => self.out.stages.push(stage),
                Ok(_) => {}
                Err(mut d) => self.diags.append(&mut d),
            }
        }
    }

    fn push_problem(&mut self, cx: &FileCx, local: &str, shown: &str, p: Problem) {
        let mut d = cx.at_stage(local, shown, &p.word, p.message);
        if let Some(h) = p.hint {
            d = d.hint(h);
        }
        self.diags.push(d);
    }

    /// Expands `foreach`/`do` and `matrix` into named stages with `item`
    /// (and `key`) in their template context. The stages one makes are
    /// counted, and refused past the limit, before any of them is made.
    fn expand(
        &mut self,
        name: &str,
        body: &RawStage,
        ctx: &Context,
    ) -> Result<Vec<(String, Context)>, Refused> {
        let before = self.made;
        let count =
            |generator: Generator| limits::generated(&generator, before).map_err(Refused::TooMany);
        let overwrites = |keys: &[&str]| -> Option<String> {
            let defined: Vec<&str> = keys.iter().copied().filter(|k| ctx.defines(k)).collect();
            (!defined.is_empty()).then(|| {
                format!(
                    "stage `{name}`: `{}` {} already defined (in params.yaml or `vars`); the stages generated from `{name}` see their own",
                    defined.join("` and `"),
                    if defined.len() == 1 { "is" } else { "are" }
                )
            })
        };
        if let Some(foreach) = body.foreach {
            let items = match ctx.render_value(foreach, Field::Any) {
                Ok(items) => items,
                Err(e) if ctx.explained(&e) => return Ok(Vec::new()),
                Err(e) => return Err(format!("foreach: {e}").into()),
            };
            let mut out = Vec::new();
            match items {
                Value::Sequence(list) => {
                    count(Generator::Foreach(list.len()))?;
                    if let Some(w) = overwrites(&["item"]) {
                        self.out.warnings.push(w);
                    }
                    let all_scalars = list.iter().all(|v| scalar_plain(v).is_some());
                    for (i, item) in list.into_iter().enumerate() {
                        let label = if all_scalars {
                            scalar_plain(&item).unwrap_or_default()
                        } else {
                            i.to_string()
                        };
                        let mut c = ctx.clone();
                        c.set("item", item);
                        out.push((format!("{name}@{label}"), c));
                    }
                }
                Value::Mapping(map) => {
                    count(Generator::Foreach(map.len()))?;
                    if let Some(w) = overwrites(&["item", "key"]) {
                        self.out.warnings.push(w);
                    }
                    for (key, item) in map {
                        let label = scalar_plain(&key).unwrap_or_default();
                        let mut c = ctx.clone();
                        c.set("key", Value::String(label.clone()));
                        c.set("item", item);
                        out.push((format!("{name}@{label}"), c));
                    }
                }
                other => {
                    return Err(format!(
                        "`foreach` takes a list or a mapping, not {}",
                        kind_of(&other)
                    )
                    .into())
                }
            }
            if out.is_empty() {
                return Err("`foreach` has no items".into());
            }
            return Ok(out);
        }
        if let Some(matrix) = body.matrix {
            let Value::Mapping(matrix) = matrix else {
                return Err("`matrix` must be a mapping of names to lists of values".into());
            };
            let mut lists = Vec::with_capacity(matrix.len());
            for (key, values) in matrix {
                let key_text = key_text(key);
                let values = match ctx.render_value(values, Field::Any) {
                    Ok(values) => values,
                    Err(e) if ctx.explained(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(format!("matrix.{key_text}: {e}").into()),
                };
                let Value::Sequence(values) = values else {
                    return Err(format!("matrix.{key_text} must be a list of values").into());
                };
                // Also keeps the combinations built so far within the limit.
                if values.is_empty() {
                    return Err(format!("matrix.{key_text} has no values").into());
                }
                lists.push((key, key_text, values));
            }
            if lists.is_empty() {
                return Err("`matrix` has no names".into());
            }
            count(Generator::Matrix(
                lists.iter().map(|(_, _, values)| values.len()).collect(),
            ))?;
            if let Some(w) = overwrites(&["item", "key"]) {
                self.out.warnings.push(w);
            }
            let mut combos: Vec<(Vec<String>, Mapping)> = vec![(Vec::new(), Mapping::new())];
            for (key, key_text, values) in &lists {
                let mut next = Vec::with_capacity(combos.len() * values.len());
                for (labels, item) in &combos {
                    for (i, v) in values.iter().enumerate() {
                        let mut labels = labels.clone();
                        labels.push(scalar_plain(v).unwrap_or_else(|| format!("{key_text}{i}")));
                        let mut item = item.clone();
                        item.insert((*key).clone(), v.clone());
                        next.push((labels, item));
                    }
                }
                combos = next;
            }
            return Ok(combos
                .into_iter()
                .map(|(labels, item)| {
                    let key = labels.join("-");
                    let mut c = ctx.clone();
                    c.set("item", Value::Mapping(item));
                    c.set("key", Value::String(key.clone()));
                    (format!("{name}@{key}"), c)
                })
                .collect());
        }
        count(Generator::One)?;
        Ok(vec![(name.to_string(), ctx.clone())])
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Turns a yaml_serde error into a diagnostic with a location.
fn yaml_error(file: &str, e: yaml_serde::Error, text: &str) -> Diagnostic {
    let loc = e.location();
    let message = params::strip_location(&e.to_string());
    let mut hint = yaml::hint(&e).map(str::to_string);
    // `[${item}.txt]`: in a flow sequence `{` opens a mapping.
    let line_text = loc
        .as_ref()
        .and_then(|l| text.lines().nth(l.line().saturating_sub(1)))
        .unwrap_or("");
    if hint.is_none() && line_text.contains("${") {
        hint = Some(
            "quote values that start with ${…}, e.g. outs: [\"${item}.txt\"] or - \"${item}.txt\""
                .into(),
        );
    }
    let mut d = Diagnostic::new(file, message).at(
        loc.as_ref().map(|l| l.line()),
        loc.as_ref().map(|l| l.column()),
    );
    if let Some(h) = hint {
        d = d.hint(h);
    }
    d
}

/// Why a stage could not be expanded.
enum Refused {
    /// Its `foreach`/`matrix` is wrong.
    Invalid(String),
    /// It would take the pipeline past [`limits::MAX_STAGES`].
    TooMany(String),
}

impl From<String> for Refused {
    fn from(message: String) -> Refused {
        Refused::Invalid(message)
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Refused {
        Refused::Invalid(message.to_string())
    }
}
/// How paths written in the files become project paths.
struct PathRules {
    checker: PathChecker,
    /// The pipeline files and their locks, which no stage may write.
    reserved: Vec<RelPath>,
}

impl PathRules {
    /// A path written in the file (relative to `base`) as a project path,
    /// checked against the disk and the system's limits; `output` also
    /// refuses the paths no stage may write.
    fn project_path(&self, base: &RelPath, text: &str, output: bool) -> Result<RelPath, Problem> {
        let p = RelPath::parse(text, Some(base)).map_err(|e| {
            let hint = match e {
                crate::paths::PathError::Absolute(_) => {
                    "write it relative to the project root (or to the stage's `wdir`)"
                }
                _ => "keep every path inside the project: the directory holding the pipeline file",
            };
            Problem::new(text, e.to_string()).hint(hint)
        })?;
        if p.is_root() {
            return Err(Problem::new(
                text,
                format!("`{text}` is the project root itself"),
            ));
        }
        if let Some(msg) = self.checker.too_long(&p) {
            return Err(Problem::new(text, msg).hint(limits::LONG_PATH_HINT));
        }
        if output {
            let msg = reserved::reserved(&p).or_else(|| {
                self.reserved
                    .iter()
                    .find(|r| r.is_within(&p))
                    .map(|r| format!("`{p}` is or holds `{r}`, a file of the pipeline"))
            });
            if let Some(msg) = msg {
                return Err(Problem::new(text, msg).hint(reserved::HINT));
            }
        }
        if let Some(msg) = self.checker.symlink_escape(&p) {
            return Err(Problem::new(text, msg).hint(
                "pipe only tracks files inside the project: copy the data in, or point the symlink inside it",
            ));
        }
        Ok(p)
    }
}

impl Reader {
    /// Converts one (expanded) stage and checks it on its own. `base` is
    /// its name in the file (`train`), `local` the generated one
    /// (`train@cnn`); the stage is named `local` with the file's prefix.
    /// `misspelt`: the stage has unknown fields (reported already), so a
    /// missing `cmd` is no news.
    fn convert(
        &mut self,
        cx: &FileCx,
        base: &str,
        local: &str,
        body: &RawStage,
        ctx: Context,
        misspelt: bool,
    ) -> Result<Stage, Vec<Diagnostic>> {
        let name = format!("{}{local}", cx.file.prefix);
        let mut diags = Vec::new();
        let at = |word: &str, msg: String| cx.at_stage(base, &name, word, msg);

        // `wdir` first (with the context before the stage's `vars`), as DVC.
        let wdir = match body.wdir {
            None => cx.dir.clone(),
            Some(w) => {
                let shown = scalar_plain(w).unwrap_or_default();
                match ctx.render_value(w, Field::Scalar) {
                    Ok(v) => match scalar_plain(&v).filter(|_| !v.is_null()) {
                        Some(text) => match RelPath::parse(&text, Some(&cx.dir)) {
                            Ok(p) => match self.paths.checker.too_long(&p) {
                                Some(msg) => {
                                    diags.push(
                                        at(&shown, format!("wdir: {msg}"))
                                            .hint(limits::LONG_PATH_HINT),
                                    );
                                    cx.dir.clone()
                                }
                                None => p,
                            },
                            Err(e) => {
                                diags.push(at(&shown, format!("wdir: {e}")));
                                cx.dir.clone()
                            }
                        },
                        None => {
                            diags.push(at("wdir", "`wdir` must be a path".into()));
                            cx.dir.clone()
                        }
                    },
                    Err(e) => {
                        if !ctx.explained(&e) {
                            diags.push(template_diag(&at, &shown, "wdir", &e));
                        }
                        cx.dir.clone()
                    }
                }
            }
        };
        // The stage's own `vars`, relative to its wdir.
        let mut ctx = ctx;
        if let Some(vars) = body.vars {
            let problems = self.load_vars(&mut ctx, vars, &wdir, local);
            for (word, message, hint) in problems {
                let mut d = at(word.as_deref().unwrap_or("vars"), message);
                if let Some(h) = hint {
                    d = d.hint(h);
                }
                diags.push(d);
            }
            if !diags.is_empty() {
                return Err(diags);
            }
        }
        let ctx = &ctx;
        let render = |text: &str, field: Field, what: &str, diags: &mut Vec<Diagnostic>| match ctx
            .render(text, field)
        {
            Ok(t) => Some(t),
            Err(e) => {
                if !ctx.explained(&e) {
                    diags.push(template_diag(&at, text, what, &e));
                }
                None
            }
        };
        let path = |text: &str, field: &str, output: bool, diags: &mut Vec<Diagnostic>| {
            let rendered = render(text, Field::Scalar, field, diags)?;
            match self.paths.project_path(&wdir, &rendered, output) {
                Ok(p) => Some(p),
                Err(p) => {
                    let mut d = at(text, format!("{field}: {}", p.message));
                    if let Some(h) = p.hint {
                        d = d.hint(h);
                    }
                    diags.push(d);
                    None
                }
            }
        };
        let list = |value: Option<&Value>,
                    field: &str,
                    diags: &mut Vec<Diagnostic>|
         -> Vec<Value> {
            match value {
                None => Vec::new(),
                Some(Value::Sequence(items)) => items.clone(),
                Some(Value::String(s)) if template::has_reference(s) => {
                    diags.push(at(s, format!("{field}: `{s}`: a list cannot come from a template; list the entries")).hint(format!("write `{field}:` then one `- ${{…}}` entry per line")));
                    Vec::new()
                }
                Some(other) => {
                    diags.push(
                        at(
                            field,
                            format!("`{field}` must be a list, not {}", kind_of(other)),
                        )
                        .hint(format!("write `{field}:` then one `- entry` per line")),
                    );
                    Vec::new()
                }
            }
        };
        let flag = |value: Option<&Value>, field: &str, diags: &mut Vec<Diagnostic>| -> bool {
            let Some(v) = value else { return false };
            match ctx.render_value(v, Field::Scalar) {
                Ok(Value::Bool(b)) => b,
                Ok(other) => {
                    let shown = scalar_plain(v).unwrap_or_default();
                    diags.push(at(
                        if shown.is_empty() { field } else { &shown },
                        format!(
                            "`{field}` must be true or false, not {}",
                            scalar_plain(&other)
                                .map(|s| format!("`{s}`"))
                                .unwrap_or_else(|| kind_of(&other).to_string())
                        ),
                    ));
                    false
                }
                Err(e) => {
                    if !ctx.explained(&e) {
                        diags.push(template_diag(
                            &at,
                            &scalar_plain(v).unwrap_or_default(),
                            field,
                            &e,
                        ));
                    }
                    false
                }
            }
        };

        let mut deps: Vec<RelPath> = Vec::new();
        let mut url_deps: Vec<String> = Vec::new();
        for entry in list(body.deps, "deps", &mut diags) {
            match scalar_plain(&entry).filter(|_| !entry.is_null()) {
                Some(text) if crate::remote::source::is_url(&text) => url_deps.push(text),
                Some(text) => {
                    if let Some(p) = path(&text, "deps", false, &mut diags) {
                        deps.push(p);
                    }
                }
                None => diags.push(at("deps", "deps: each entry is a path".into())),
            }
        }
        let mut outs: Vec<Output> = Vec::new();
        for (field, kind, value) in [
            ("outs", OutKind::Out, body.outs),
            ("metrics", OutKind::Metric, body.metrics),
            ("plots", OutKind::Plot, body.plots),
        ] {
            for entry in list(value, field, &mut diags) {
                match output_entry(&entry, kind, ctx) {
                    Ok(entry) => {
                        for option in &entry.ignored {
                            self.out.notes.push(format!(
                                "{}: stage `{name}`: {field} `{}`: `{option}` is accepted and ignored (pipe has no use for it)",
                                cx.name(),
                                entry.text
                            ));
                        }
                        if let Some(p) = path(&entry.text, field, true, &mut diags) {
                            outs.push(Output {
                                path: p,
                                kind,
                                cache: entry.cache,
                                persist: entry.persist,
                                dir: entry.text.trim_end().ends_with('/'),
                                plot: entry.plot,
                            });
                        }
                    }
                    Err(p) => {
                        let mut d = at(&p.word, format!("{field}: {}", p.message));
                        if let Some(h) = p.hint {
                            d = d.hint(h);
                        }
                        diags.push(d);
                    }
                }
            }
        }

        let cmd_texts: Option<Vec<String>> = match body.cmd {
            None => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Sequence(items))
                if !items.is_empty() && items.iter().all(|v| v.is_string()) =>
            {
                Some(
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                )
            }
            Some(_) => {
                diags.push(at(
                    "cmd",
                    "`cmd` must be a string or a list of strings".into(),
                ));
                Some(Vec::new())
            }
        };
        let action = match (&cmd_texts, body.uses) {
            (Some(_), Some(_)) => {
                diags.push(at(
                    "uses",
                    "has both `cmd` and `uses`; a stage does one of the two".into(),
                ));
                None
            }
            (None, None) => {
                // A misspelt `cmd` is reported as such already.
                if !misspelt {
                    diags.push(
                        at(base, "has neither `cmd` nor `uses`".into())
                            .hint("add `cmd: <shell command>` or `uses: <built-in stage>`"),
                    );
                }
                None
            }
            (Some(texts), None) => {
                let rendered: Vec<String> = texts
                    .iter()
                    .filter_map(|t| render(t, Field::Cmd, "cmd", &mut diags))
                    .collect();
                if rendered.iter().any(|c| c.trim().is_empty()) {
                    diags.push(at("cmd", "`cmd` is empty".into()));
                }
                Some(Action::Cmd(rendered))
            }
            (None, Some(uses)) => match ctx.render_value(uses, Field::Scalar) {
                Ok(Value::String(uses)) => builtin_action(
                    &uses, body.with, &mut deps, &mut outs, ctx, &at, &path, &mut diags,
                ),
                Ok(_) => {
                    diags.push(at("uses", "`uses` must name a built-in stage".into()));
                    None
                }
                Err(e) => {
                    diags.push(template_diag(
                        &at,
                        &scalar_plain(uses).unwrap_or_default(),
                        "uses",
                        &e,
                    ));
                    None
                }
            },
        };

        let default = wdir.join(DEFAULT_PARAMS_FILE);
        let mut params_refs = Vec::new();
        for entry in list(body.params, "params", &mut diags) {
            match param_entry(&entry, ctx) {
                Ok(refs) => {
                    for (file_text, key) in refs {
                        let file = match RelPath::parse(&file_text, Some(&wdir)) {
                            Ok(f) => f,
                            Err(e) => {
                                diags.push(at(&file_text, format!("params: {e}")));
                                continue;
                            }
                        };
                        if let Some(msg) = self.paths.checker.too_long(&file) {
                            diags.push(
                                at(&file_text, format!("params: {msg}"))
                                    .hint(limits::LONG_PATH_HINT),
                            );
                            continue;
                        }
                        check_param(&file, &key, &mut self.params_files, &at, &mut diags);
                        params_refs.push(ParamRef { file, key });
                    }
                }
                Err(msg) => diags.push(at("params", format!("params: {msg}"))),
            }
        }
        // Like DVC: a value of the default params file written into the
        // command is a param dependency even when `params:` does not list
        // it, so that `pipe status` names the param rather than only a
        // changed command.
        let references: Vec<String> = cmd_texts
            .iter()
            .flatten()
            .flat_map(|t| Context::references(t))
            .collect();
        if let Some(Action::Cmd(_)) = &action {
            for name in &references {
                let from_params = ctx.origin(name) == Some(default.as_str());
                let covered = params_refs.iter().any(|r| {
                    r.file == default
                        && (r.key.is_empty()
                            || *name == r.key
                            || name.starts_with(&format!("{}.", r.key)))
                });
                if from_params && !covered {
                    params_refs.push(ParamRef {
                        file: default.clone(),
                        key: name.clone(),
                    });
                }
            }
        }
        params_refs.sort();
        params_refs.dedup();
        if let Some(Action::Builtin { name: uses, .. }) = &action {
            check_builtin_params(uses, &params_refs, &mut self.params_files, &at, &mut diags);
        }

        let mut seen = BTreeMap::new();
        for o in &outs {
            if seen.insert(o.path.clone(), o.kind).is_some() {
                diags.push(at(
                    o.path.as_str(),
                    format!("`{}` is listed as an output twice", o.path),
                ));
            }
        }
        // A metrics or plots file inside a directory output of the same
        // stage (`outs: [eval]`, `metrics: [eval/metrics.json]`) is part of
        // that directory: read by `pipe metrics`, stored with it.
        let (inner, outs): (Vec<Output>, Vec<Output>) = outs.into_iter().partition(|o| {
            o.kind != OutKind::Out && seen.keys().any(|p| *p != o.path && o.path.is_within(p))
        });
        deps.sort();
        deps.dedup();

        let desc = match body.desc {
            None => None,
            Some(v) => match ctx.render_value(v, Field::Scalar) {
                Ok(v) => scalar_plain(&v),
                Err(e) => {
                    if !ctx.explained(&e) {
                        diags.push(template_diag(
                            &at,
                            &scalar_plain(v).unwrap_or_default(),
                            "desc",
                            &e,
                        ));
                    }
                    None
                }
            },
        };
        let frozen = flag(body.frozen, "frozen", &mut diags);
        let always_changed = flag(body.always_changed, "always_changed", &mut diags);
        let executor = body
            .executor
            .and_then(|v| executor_field(v, ctx, &at, &mut diags));
        let resources = body
            .resources
            .map(|v| resources_field(v, ctx, &at, &mut diags))
            .unwrap_or_default();
        let cmd_template: Vec<String> = match &action {
            Some(Action::Cmd(_)) => cmd_texts.clone().unwrap_or_default(),
            _ => Vec::new(),
        };
        match action {
            Some(action) if diags.is_empty() => Ok(Stage {
                name,
                desc,
                action,
                wdir,
                deps,
                url_deps: {
                    url_deps.sort();
                    url_deps.dedup();
                    url_deps
                },
                outs,
                inner,
                params: params_refs,
                frozen,
                always_changed,
                cmd_vars: references
                    .iter()
                    .filter_map(|name| ctx.lookup(name).map(|v| (name.clone(), params::to_json(v))))
                    .collect(),
                cmd_template,
                file: cx.index,
                executor,
                resources,
            }),
            _ => Err(diags),
        }
    }
}

/// A stage's `executor:`: one of [`crate::executor::Kind::NAMES`].
fn executor_field(
    v: &Value,
    ctx: &Context,
    at: &Locate,
    diags: &mut Vec<Diagnostic>,
) -> Option<crate::executor::Kind> {
    let shown = scalar_plain(v).unwrap_or_default();
    let text = match ctx.render_value(v, Field::Scalar) {
        Ok(v) => scalar_plain(&v).unwrap_or_default(),
        Err(e) => {
            if !ctx.explained(&e) {
                diags.push(template_diag(at, &shown, "executor", &e));
            }
            return None;
        }
    };
    let kind = crate::executor::Kind::parse(&text);
    if kind.is_none() {
        let word = if shown.is_empty() { "executor" } else { &shown };
        diags.push(
            at(
                word,
                format!("`executor` is `{text}`, which is no executor"),
            )
            .hint(format!(
                "executors are: {}",
                crate::executor::Kind::NAMES.join(", ")
            )),
        );
    }
    kind
}

/// A stage's `resources:` mapping (`cpus`, `mem`, `time`, `gpus`,
/// `partition`, `extra_args`), each value templated.
fn resources_field(
    v: &Value,
    ctx: &Context,
    at: &Locate,
    diags: &mut Vec<Diagnostic>,
) -> crate::executor::Resources {
    const FIELDS: &[&str] = &["cpus", "mem", "time", "gpus", "partition", "extra_args"];
    let mut r = crate::executor::Resources::default();
    let Value::Mapping(map) = v else {
        diags.push(
            at(
                "resources",
                "`resources` must be a mapping of cpus, mem, time, gpus, partition, extra_args"
                    .into(),
            )
            .hint("e.g. resources: {cpus: 4, mem: 8G, time: \"01:00:00\"}"),
        );
        return r;
    };
    let render = |key: &str, value: &Value, diags: &mut Vec<Diagnostic>| -> Option<String> {
        let shown = scalar_plain(value).unwrap_or_default();
        match ctx.render_value(value, Field::Scalar) {
            Ok(rendered) => match scalar_plain(&rendered) {
                Some(text) if !text.trim().is_empty() => Some(text),
                _ => {
                    diags.push(at(
                        if shown.is_empty() { key } else { &shown },
                        format!("resources: `{key}` must be a single value"),
                    ));
                    None
                }
            },
            Err(e) => {
                if !ctx.explained(&e) {
                    diags.push(template_diag(at, &shown, &format!("resources.{key}"), &e));
                }
                None
            }
        }
    };
    for (k, value) in map {
        let key = key_text(k);
        match key.as_str() {
            "cpus" | "gpus" => {
                let Some(text) = render(&key, value, diags) else {
                    continue;
                };
                match text.parse::<u32>() {
                    Ok(n) if key == "gpus" || n > 0 => {
                        if key == "cpus" {
                            r.cpus = Some(n);
                        } else {
                            r.gpus = Some(n);
                        }
                    }
                    _ => diags.push(at(
                        &text,
                        format!("resources: `{key}` must be a whole number, not `{text}`"),
                    )),
                }
            }
            "mem" => r.mem = render(&key, value, diags),
            "time" => r.time = render(&key, value, diags),
            "partition" => r.partition = render(&key, value, diags),
            "extra_args" => {
                let items: Vec<&Value> = match value {
                    Value::Sequence(items) => items.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    if let Some(text) = render(&key, item, diags) {
                        r.extra_args.push(text);
                    }
                }
            }
            _ => diags.push(super::raw::unknown(&key, FIELDS, "resources").into_diag(at)),
        }
    }
    r
}

/// A template error in field `what`, pointing at `text`.
fn template_diag(at: &Locate, text: &str, what: &str, e: &TemplateError) -> Diagnostic {
    let d = at(text, format!("{what}: {e}"));
    match e {
        TemplateError::Undefined(_) => d.hint("define it in params.yaml or under `vars:`"),
        TemplateError::BadExpression { .. } => {
            d.hint("write a name with `.key`, `[key]` or `[index]` steps: `${a.b}`, `${a[b]}`, `${list[0]}`")
        }
        TemplateError::NotInCmd { .. } | TemplateError::NotScalar(_) => {
            d.hint("refer to one value inside it, e.g. `${name.key}` or `${name[0]}`")
        }
        _ => d,
    }
}

type Locate<'a> = dyn Fn(&str, String) -> Diagnostic + 'a;
/// Checks a path written in a field (`deps`, `with.out`…); `true` for an
/// output.
type PathOf<'a> = dyn Fn(&str, &str, bool, &mut Vec<Diagnostic>) -> Option<RelPath> + 'a;

#[allow(clippy::too_many_arguments)]
fn builtin_action(
    uses: &str,
    with: Option<&Value>,
    deps: &mut Vec<RelPath>,
    outs: &mut Vec<Output>,
    ctx: &Context,
    at: &Locate,
    path: &PathOf,
    diags: &mut Vec<Diagnostic>,
) -> Option<Action> {
    let Some(b) = builtin::find(uses) else {
        let names: Vec<&str> = builtin::registry().iter().map(|b| b.name).collect();
        let hint = match did_you_mean(uses, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("built-in stages are: {}", names.join(", ")),
        };
        diags.push(at(uses, format!("unknown built-in stage `{uses}`")).hint(hint));
        return None;
    };
    // In name order, as the outputs a built-in declares are recorded.
    let with: BTreeMap<String, Value> = match with {
        None => BTreeMap::new(),
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (key_text(k), v.clone())).collect(),
        Some(_) => {
            diags.push(at("with", "`with` must be a mapping of arguments".into()));
            return None;
        }
    };
    let mut args = BTreeMap::new();
    let before = diags.len();
    for (key, value) in &with {
        let Some(arg) = b.arg(key) else {
            let names: Vec<&str> = b.args.iter().map(|a| a.name).collect();
            let hint = match did_you_mean(key, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("`{}` takes: {}", b.name, names.join(", ")),
            };
            diags.push(at(key, format!("`{}` has no argument `{key}`", b.name)).hint(hint));
            continue;
        };
        let value = match ctx.render_value(value, Field::Any) {
            Ok(v) => v,
            Err(e) => {
                if !ctx.explained(&e) {
                    diags.push(at(key, format!("with.{key}: {e}")));
                }
                continue;
            }
        };
        match arg.role {
            ArgRole::Input | ArgRole::Output(_) => {
                let Some(text) = value.as_str() else {
                    diags.push(at(key, format!("with.{key} must be a path")));
                    continue;
                };
                let output = matches!(arg.role, ArgRole::Output(_));
                let Some(p) = path(text, &format!("with.{key}"), output, diags) else {
                    continue;
                };
                match arg.role {
                    ArgRole::Input => deps.push(p),
                    ArgRole::Output(kind) => outs.push(Output {
                        path: p,
                        kind,
                        cache: true,
                        persist: false,
                        dir: text.ends_with('/'),
                        plot: None,
                    }),
                    ArgRole::Option => unreachable!(),
                }
            }
            ArgRole::Option => {}
        }
        args.insert(key.clone(), params::to_json(&value));
    }
    for arg in b.args.iter().filter(|a| a.required) {
        if !with.contains_key(arg.name) {
            diags.push(
                at(
                    uses,
                    format!("`{}` needs `with: {{{}: …}}`", b.name, arg.name),
                )
                .hint(format!("{}: {}", arg.name, arg.help)),
            );
        }
    }
    (diags.len() == before).then(|| Action::Builtin {
        name: b.name.to_string(),
        version: b.version,
        args,
    })
}

/// An output entry as written: its path and options.
struct OutputEntry {
    text: String,
    cache: bool,
    persist: bool,
    plot: Option<PlotOptions>,
    /// Options DVC accepts and pipe ignores.
    ignored: Vec<String>,
}

/// `path` or `path: {cache, persist, …}` (and for plots, the plot's
/// options), with templates in the options rendered.
fn output_entry(entry: &Value, kind: OutKind, ctx: &Context) -> Result<OutputEntry, Problem> {
    let plot = (kind == OutKind::Plot).then(PlotOptions::default);
    match entry {
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            let Some(path) = scalar_plain(k).filter(|_| !k.is_null()) else {
                return Err(Problem::new("", "an output is a path"));
            };
            let mut out = OutputEntry {
                text: path.clone(),
                cache: true,
                persist: false,
                plot,
                ignored: Vec::new(),
            };
            match v {
                Value::Null => {}
                Value::Mapping(opts) => {
                    for (ok, ov) in opts {
                        let key = key_text(ok);
                        let value = ctx
                            .render_value(ov, Field::Scalar)
                            .map_err(|e| Problem::new(&key, format!("`{key}` of `{path}`: {e}")))?;
                        let boolean = |value: &Value| {
                            value.as_bool().ok_or_else(|| {
                                Problem::new(
                                    &key,
                                    format!("`{key}` of `{path}` must be true or false"),
                                )
                            })
                        };
                        match key.as_str() {
                            "cache" => out.cache = boolean(&value)?,
                            "persist" => out.persist = boolean(&value)?,
                            "desc" => {}
                            k if IGNORED_OUTPUT_FIELDS.contains(&k) => {
                                out.ignored.push(key.clone())
                            }
                            _ => {
                                let handled = match out.plot.as_mut() {
                                    Some(options) => {
                                        plots::output_option(options, &path, &key, &value)?
                                    }
                                    None => false,
                                };
                                if !handled {
                                    let known = if kind == OutKind::Plot {
                                        PLOT_OUTPUT_FIELDS
                                    } else {
                                        OUTPUT_FIELDS
                                    };
                                    let mut p = raw::unknown(&key, known, "output options");
                                    p.message = format!("unknown option `{key}` of `{path}`");
                                    return Err(p);
                                }
                            }
                        }
                    }
                }
                _ => {
                    return Err(Problem::new(
                        path.clone(),
                        format!("options of `{path}` must be a mapping such as {{cache: false}}"),
                    ))
                }
            }
            Ok(out)
        }
        Value::Mapping(_) => Err(Problem::new(
            "",
            "each entry is a path or `path: {cache: false, persist: true}`",
        )),
        other => match scalar_plain(other).filter(|_| !other.is_null()) {
            Some(text) => Ok(OutputEntry {
                text,
                cache: true,
                persist: false,
                plot,
                ignored: Vec::new(),
            }),
            None => Err(Problem::new(
                "",
                "each entry is a path or `path: {cache: false, persist: true}`",
            )),
        },
    }
}

/// A `params:` entry → (file, key) pairs; key "" means the whole file.
fn param_entry(entry: &Value, ctx: &Context) -> Result<Vec<(String, String)>, String> {
    match entry {
        Value::String(key) => {
            let key = ctx.render(key, Field::Scalar).map_err(|e| e.to_string())?;
            // A bare file name (`- other.yaml`) means the whole file, as in DVC
            // when written as a mapping; a key never ends in .yaml.
            if [".yaml", ".yml", ".json", ".toml"]
                .iter()
                .any(|ext| key.ends_with(ext))
            {
                Ok(vec![(key, String::new())])
            } else {
                Ok(vec![(DEFAULT_PARAMS_FILE.to_string(), key)])
            }
        }
        Value::Mapping(m) => {
            let mut out = Vec::new();
            for (file, keys) in m {
                let file = file.as_str().ok_or("a params file name must be a string")?;
                let file = ctx.render(file, Field::Scalar).map_err(|e| e.to_string())?;
                match keys {
                    Value::Null => out.push((file, String::new())),
                    Value::Sequence(list) if list.is_empty() => out.push((file, String::new())),
                    Value::Sequence(list) => {
                        for k in list {
                            let k = scalar_plain(k).ok_or("param keys must be strings")?;
                            out.push((
                                file.clone(),
                                ctx.render(&k, Field::Scalar).map_err(|e| e.to_string())?,
                            ));
                        }
                    }
                    _ => return Err(format!("`{file}:` takes a list of keys")),
                }
            }
            Ok(out)
        }
        _ => Err("each entry is a key of params.yaml or `file.yaml: [keys]`".into()),
    }
}

fn check_param(
    file: &RelPath,
    key: &str,
    files: &mut ParamsFiles,
    at: &Locate,
    diags: &mut Vec<Diagnostic>,
) {
    let word = if key.is_empty() { file.as_str() } else { key };
    match files.get(file) {
        Err(d) => diags.push(d),
        Ok(None) => diags.push(
            at(word, format!("params file `{file}` does not exist")).hint(format!(
                "create {file} with the key{} the stage uses",
                if key.is_empty() { "s" } else { "" }
            )),
        ),
        Ok(Some(doc)) => {
            if !key.is_empty() && params::lookup(doc, key).is_none() {
                let known = match doc {
                    Value::Mapping(m) => {
                        let mut flat = BTreeMap::new();
                        params::flatten(
                            "",
                            &params::to_json(&Value::Mapping(m.clone())),
                            &mut flat,
                        );
                        // Leaves and the sections above them (`fit`, `fit.C`).
                        let mut keys: Vec<String> = flat.into_keys().collect();
                        let sections: Vec<String> = keys
                            .iter()
                            .flat_map(|k| {
                                k.match_indices('.')
                                    .map(|(i, _)| k[..i].to_string())
                                    .collect::<Vec<_>>()
                            })
                            .collect();
                        keys.extend(sections);
                        keys.sort();
                        keys.dedup();
                        keys
                    }
                    _ => Vec::new(),
                };
                let hint = match did_you_mean(key, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("add `{key}` to {file}"),
                };
                diags.push(at(word, format!("param `{key}` is not in {file}")).hint(hint));
            }
        }
    }
}

/// Runs the built-in's own params check on the values the stage will get.
fn check_builtin_params(
    uses: &str,
    refs: &[ParamRef],
    files: &mut ParamsFiles,
    at: &Locate,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(b) = builtin::find(uses) else { return };
    let mut values = params::ParamValues::new();
    for r in refs {
        if let Ok(Some(v)) = files.value(&r.file, &r.key) {
            values
                .entry(r.file.as_str().to_string())
                .or_default()
                .insert(r.key.clone(), v);
        }
    }
    if let Err(message) = (b.check_params)(&builtin::merge_params(&values)) {
        let files: Vec<String> = refs
            .iter()
            .map(|r| r.file.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let hint = if files.is_empty() {
            format!("list the stage's params section under `params:` (e.g. `params: [{uses}]`)")
        } else {
            format!("fix it in {}", files.join(", "))
        };
        diags.push(at("params", format!("params of `{uses}`: {message}")).hint(hint));
    }
}

/// Checks of project paths against the disk and the system's limits, with
/// what is learnt about the project's directories kept for the next path.
struct PathChecker {
    root: PathBuf,
    /// The root with its symlinks resolved; `None` if that failed.
    root_real: Option<PathBuf>,
    /// Path prefixes seen so far: `true` if there and not leading out of
    /// the project, `false` if absent.
    seen: RefCell<FxHashMap<String, bool>>,
}

impl PathChecker {
    fn new(root: &Path) -> PathChecker {
        PathChecker {
            root: root.to_path_buf(),
            root_real: root.canonicalize().ok(),
            seen: RefCell::new(FxHashMap::default()),
        }
    }

    /// A message if `path` is longer than the system allows.
    fn too_long(&self, path: &RelPath) -> Option<String> {
        limits::check_path(&self.root, path)
    }

    /// A message if a component of `path` that exists is a symlink
    /// pointing outside the project.
    fn symlink_escape(&self, path: &RelPath) -> Option<String> {
        let root_real = self.root_real.as_ref()?;
        let text = path.as_str();
        let mut end = 0;
        for (i, part) in text.split('/').enumerate() {
            end += part.len() + usize::from(i > 0);
            let prefix = &text[..end];
            let known = self.seen.borrow().get(prefix).copied();
            match known {
                Some(true) => continue,
                Some(false) => return None,
                None => {}
            }
            let current = self.root.join(prefix);
            let Ok(meta) = std::fs::symlink_metadata(&current) else {
                self.seen.borrow_mut().insert(prefix.to_string(), false);
                return None;
            };
            if meta.file_type().is_symlink() {
                let target = current.canonicalize().ok()?;
                if !target.starts_with(root_real) {
                    return Some(format!(
                        "`{path}` goes through the symlink `{prefix}` which points outside the project (to {})",
                        target.display()
                    ));
                }
            }
            self.seen.borrow_mut().insert(prefix.to_string(), true);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_in(files: &[(&str, &str)], yaml: &str) -> Result<Pipeline, PipelineError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        resolve(dir.path(), yaml)
    }

    fn first_error(files: &[(&str, &str)], yaml: &str) -> String {
        resolve_in(files, yaml).unwrap_err().diagnostics[0].to_string()
    }

    #[test]
    fn renders_params_and_vars_into_commands_and_paths() {
        let p = resolve_in(
            &[("params.yaml", "fit: {C: 0.5}\n"), ("more.yaml", "dir: out\n")],
            "vars:\n  - more.yaml\n  - name: model\nstages:\n  train:\n    cmd: train --c ${fit.C} > ${dir}/${name}.txt\n    outs: [\"${dir}/${name}.txt\"]\n    params: [fit.C]\n",
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(
            s.action,
            Action::Cmd(vec!["train --c 0.5 > out/model.txt".into()])
        );
        assert_eq!(s.outs[0].path.as_str(), "out/model.txt");
        assert_eq!(
            s.params,
            [ParamRef {
                file: RelPath::from_normalized("params.yaml"),
                key: "fit.C".into()
            }]
        );
    }

    #[test]
    fn foreach_and_matrix_generate_named_stages() {
        let p = resolve_in(
            &[],
            "stages:\n  fetch:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item} > ${item}.txt\n      outs: [\"${item}.txt\"]\n  cfg:\n    foreach:\n      small: {n: 1}\n      big: {n: 9}\n    do:\n      cmd: echo ${key} ${item.n}\n  train:\n    matrix:\n      model: [cnn, xgb]\n      size: [1, 2]\n    cmd: train ${item.model} ${item.size}\n",
        )
        .unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fetch@a",
                "fetch@b",
                "cfg@small",
                "cfg@big",
                "train@cnn-1",
                "train@cnn-2",
                "train@xgb-1",
                "train@xgb-2"
            ]
        );
        assert_eq!(p.stages[1].outs[0].path.as_str(), "b.txt");
        assert_eq!(p.stages[3].action, Action::Cmd(vec!["echo big 9".into()]));
        assert_eq!(p.stages[6].action, Action::Cmd(vec!["train xgb 1".into()]));
    }

    #[test]
    fn generated_stages_with_the_same_name_are_refused() {
        let err = resolve_in(
            &[],
            "stages:\n  s:\n    foreach: [a, b, a, a]\n    do:\n      cmd: echo ${item}\n  m:\n    matrix: {x: [1, \"1\"]}\n    cmd: echo ${item.x}\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "pipeline.yaml:2: stage `s`: makes two stages named `s@a`: items that read the same give the same name\n  hint: make the items distinct, or name each one with a mapping: `foreach: {name: item, …}`\n\
             pipeline.yaml:6: stage `m`: makes two stages named `m@1`: items that read the same give the same name\n  hint: make the items distinct, or name each one with a mapping: `foreach: {name: item, …}`"
        );
    }

    #[test]
    fn a_matrix_with_an_empty_list_is_refused_before_its_combinations() {
        // 100,000 × 100,000 × 0 is 0 stages, but 10^10 combinations on the
        // way: an empty list is an error, found before any is made.
        let err = first_error(
            &[("params.yaml", &format!("big: [{}]\n", vec!["1"; 100_000].join(",")))],
            "stages:\n  g:\n    matrix:\n      a: ${big}\n      b: ${big}\n      c: []\n    cmd: x\n",
        );
        assert_eq!(err, "pipeline.yaml:2: stage `g`: matrix.c has no values");
    }

    #[test]
    fn outputs_take_options_and_wdir_moves_paths() {
        let p = resolve_in(
            &[],
            "stages:\n  s:\n    cmd: make\n    wdir: sub\n    deps: [../in.txt]\n    outs:\n      - out/\n      - log.txt: {cache: false, persist: true}\n    metrics: [m.json]\n    plots:\n      - p.csv:\n",
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.wdir.as_str(), "sub");
        assert_eq!(s.deps[0].as_str(), "in.txt");
        let outs: Vec<(&str, OutKind, bool, bool, bool)> = s
            .outs
            .iter()
            .map(|o| (o.path.as_str(), o.kind, o.cache, o.persist, o.dir))
            .collect();
        assert_eq!(
            outs,
            [
                ("sub/out", OutKind::Out, true, false, true),
                ("sub/log.txt", OutKind::Out, false, true, false),
                ("sub/m.json", OutKind::Metric, true, false, false),
                ("sub/p.csv", OutKind::Plot, true, false, false),
            ]
        );
    }

    #[test]
    fn plots_are_typed_and_metrics_inside_a_directory_output_are_part_of_it() {
        let p = resolve_in(
            &[],
            "plots:\n  - ROC:\n      x: fpr\n      y: {eval/roc.json: tpr}\n  - eval/loss.csv\nmetrics: [eval/metrics.json]\nstages:\n  evaluate:\n    cmd: make\n    outs: [eval]\n    metrics: [eval/metrics.json]\n    plots:\n      - eval/roc.json: {x: fpr, y: tpr, template: simple, header: false}\n",
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.outs.len(), 1, "only the directory is an output");
        let inner: Vec<(&str, OutKind)> =
            s.inner.iter().map(|o| (o.path.as_str(), o.kind)).collect();
        assert_eq!(
            inner,
            [
                ("eval/metrics.json", OutKind::Metric),
                ("eval/roc.json", OutKind::Plot)
            ]
        );
        let options = s.plot_outputs().next().unwrap().plot.clone().unwrap();
        assert_eq!(
            (
                options.x.as_deref(),
                options.y.as_deref(),
                options.template.as_deref(),
                options.header
            ),
            (Some("fpr"), Some("tpr"), Some("simple"), Some(false))
        );
        assert_eq!(
            p.metric_files(),
            [RelPath::from_normalized("eval/metrics.json")]
        );
        let ids: Vec<&str> = p.plots.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["ROC", "eval/loss.csv"]);
        assert_eq!(p.plots[0].file, None);
        assert_eq!(
            p.plots[1].file,
            Some(RelPath::from_normalized("eval/loss.csv"))
        );
    }

    #[test]
    fn a_file_in_a_sub_directory_names_its_stages_and_paths_from_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/params.yaml"), "n: 3\n").unwrap();
        let p = resolve_files(
            dir.path(),
            Format::Dvc,
            &[(
                RelPath::from_normalized("sub/dvc.yaml"),
                "stages:\n  train:\n    cmd: echo ${n}\n    deps: [../raw.txt]\n    outs: [model.txt]\n    params: [n]\n".into(),
            )],
            Parsing::default(),
        )
        .unwrap();
        let s = &p.stages[0];
        assert_eq!(s.name, "sub/dvc.yaml:train");
        assert_eq!(s.wdir.as_str(), "sub");
        assert_eq!(s.deps[0].as_str(), "raw.txt");
        assert_eq!(s.outs[0].path.as_str(), "sub/model.txt");
        assert_eq!(s.params[0].file.as_str(), "sub/params.yaml");
        assert_eq!(s.action, Action::Cmd(vec!["echo 3".into()]));
        let err = p.diagnostic("sub/dvc.yaml:train", "boom").to_string();
        assert_eq!(err, "sub/dvc.yaml:2: stage `sub/dvc.yaml:train`: boom");
    }

    #[test]
    fn an_unknown_field_is_located_with_a_suggestion() {
        let err = first_error(&[], "stages:\n  train:\n    cmd: x\n    dpes: [a]\n");
        assert_eq!(
            err,
            "pipeline.yaml:4:5: stage `train`: unknown field `dpes`\n  hint: did you mean `deps`?"
        );
    }

    #[test]
    fn an_unquoted_template_in_a_flow_list_gets_a_hint() {
        let err = first_error(&[], "stages:\n  s:\n    cmd: x\n    outs: [${item}.txt]\n");
        assert!(err.starts_with("pipeline.yaml:4:"), "{err}");
        assert!(
            err.contains("hint: quote values that start with ${…}"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_and_empty_files_are_reported() {
        assert!(first_error(&[], "stages:\n  a: [\n").starts_with("pipeline.yaml:"));
        assert!(first_error(&[], "\n# nothing\n").contains("the pipeline file is empty"));
        assert!(first_error(&[], "stages: {}\n").contains("no stages"));
    }

    #[test]
    fn a_misspelt_params_section_gets_a_suggestion() {
        let err = first_error(
            &[("params.yaml", "fit: {C: 1}\n")],
            "stages:\n  t:\n    cmd: x\n    params: [fitt]\n",
        );
        assert!(err.contains("did you mean `fit`?"), "{err}");
        let err = first_error(&[], "- a\n- b\n");
        assert!(
            err.contains("must be a mapping with a `stages:` key"),
            "{err}"
        );
    }

    #[test]
    fn params_must_exist_in_their_file() {
        let err = first_error(
            &[("params.yaml", "fit: {C: 1}\n")],
            "stages:\n  t:\n    cmd: x\n    params: [fit.c]\n",
        );
        assert!(err.contains("param `fit.c` is not in params.yaml"), "{err}");
        assert!(err.contains("did you mean `fit.C`?"), "{err}");
        let err = first_error(
            &[],
            "stages:\n  t:\n    cmd: x\n    params: [{other.yaml: [a]}]\n",
        );
        assert!(
            err.contains("params file `other.yaml` does not exist"),
            "{err}"
        );
    }

    #[test]
    fn paths_must_stay_inside_the_project() {
        let err = first_error(&[], "stages:\n  t:\n    cmd: x\n    deps: [/etc/passwd]\n");
        assert!(
            err.starts_with(
                "pipeline.yaml:4:12: stage `t`: deps: `/etc/passwd` is an absolute path"
            ),
            "{err}"
        );
        let err = first_error(&[], "stages:\n  t:\n    cmd: x\n    outs: [../up.txt]\n");
        assert!(err.contains("outside the project"), "{err}");
    }

    #[test]
    fn symlinks_out_of_the_project_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = resolve(
            dir.path(),
            "stages:\n  t:\n    cmd: x\n    deps: [link/data.csv]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("goes through the symlink `link` which points outside the project"),
            "{err}"
        );
    }

    #[test]
    fn builtins_derive_deps_and_outs_from_their_arguments() {
        let p = resolve_in(
            &[],
            "stages:\n  gen:\n    uses: synth\n    with: {out: data/r.tsv}\n",
        )
        .unwrap();
        assert_eq!(p.stages[0].outs[0].path.as_str(), "data/r.tsv");
        let err = first_error(&[], "stages:\n  gen:\n    uses: synht\n");
        assert!(
            err.contains("unknown built-in stage `synht`") && err.contains("did you mean `synth`?"),
            "{err}"
        );
        let err = first_error(
            &[],
            "stages:\n  gen:\n    uses: synth\n    with: {ot: x.tsv}\n",
        );
        assert!(
            err.contains("`synth` has no argument `ot`") && err.contains("did you mean `out`?"),
            "{err}"
        );
    }

    #[test]
    fn a_stage_needs_exactly_one_of_cmd_and_uses() {
        assert!(first_error(&[], "stages:\n  t:\n    deps: [a]\n")
            .contains("has neither `cmd` nor `uses`"));
        assert!(
            first_error(&[], "stages:\n  t:\n    cmd: x\n    uses: synth\n").contains("has both")
        );
    }

    #[test]
    fn undefined_template_variables_are_named() {
        let err = first_error(&[], "stages:\n  t:\n    cmd: run ${nope.x}\n");
        assert!(err.contains("`${nope.x}` is not defined"), "{err}");
    }
}
