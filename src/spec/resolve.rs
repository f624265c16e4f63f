//! From the raw schema to typed stages.
//!
//! Order of work: parse the YAML (syntax and unknown-field errors carry
//! serde's line and column, plus a "did you mean"; alias bombs are refused
//! by [`super::yaml`]), build the template context (`params.yaml`, then
//! `vars:`), expand `foreach`/`matrix` into `name@item` stages (counted
//! against [`limits::MAX_STAGES`] before any is made), render templates,
//! convert each stage and check its paths (length, [`reserved`] outputs,
//! symlinks out of the project) and params. Problems are collected, not
//! returned at the first one, and reported once each: a broken params file
//! is one error, not one per stage that reads it, and the names it would
//! have defined are not reported as undefined on top of it.
//!
//! The work is linear in the size of the files: stages are put in
//! declaration order through a name → position map, generated stages share
//! the template context instead of copying it, and what the disk says about
//! a directory (is it a symlink leading out?) is asked once per directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHashSet};
use serde_yaml::{Mapping, Value};

use super::diagnostic::{did_you_mean, Diagnostic, PipelineError};
use super::limits::{self, Generator};
use super::params::{self, ParamsFiles, DEFAULT_PARAMS_FILE};
use super::raw::{RawPipeline, RawStage, OUTPUT_FIELDS, STAGE_FIELDS};
use super::template::{scalar_plain, Context};
use super::{reserved, yaml};
use super::{Action, OutKind, Output, ParamRef, Pipeline, SourceMap, Stage, PIPELINE_FILE};
use crate::builtin::{self, ArgRole};
use crate::paths::RelPath;

pub fn resolve(root: &Path, text: &str) -> Result<Pipeline, PipelineError> {
    let empty = || -> PipelineError {
        Diagnostic::new(PIPELINE_FILE, "the pipeline file is empty")
            .hint("declare stages under `stages:`, e.g.\n  stages:\n    hello:\n      cmd: echo hello > hello.txt\n      outs: [hello.txt]")
            .into()
    };
    if text.trim().is_empty() {
        return Err(empty());
    }
    let source = SourceMap::new(text);
    let duplicates: Vec<Diagnostic> = source
        .duplicates()
        .into_iter()
        .map(|(name, first, second)| {
            Diagnostic::new(
                PIPELINE_FILE,
                format!("stage `{name}` is declared twice (first on line {first})"),
            )
            .at(Some(second), None)
            .hint("give each stage its own name; YAML keeps only the last of two equal keys")
        })
        .collect();
    if !duplicates.is_empty() {
        return Err(PipelineError {
            diagnostics: duplicates,
        });
    }
    // One parse when the file is right; what a wrong one is (empty, not a
    // mapping, a syntax or schema error) is worked out only then.
    let not_a_mapping = || -> PipelineError {
        Diagnostic::new(
            PIPELINE_FILE,
            "the pipeline file must be a mapping with a `stages:` key",
        )
        .at(Some(1), Some(1))
        .hint("start it with `stages:` and put one stage name per line below it")
        .into()
    };
    let raw: RawPipeline = match yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(match yaml::from_str::<Value>(text) {
                Ok(v) if v.is_null() => empty(),
                Ok(v) if !v.is_mapping() => not_a_mapping(),
                _ => yaml_error(e, text).into(),
            })
        }
    };
    if raw.stages.is_empty() {
        if raw.vars.is_empty() && yaml::from_str::<Value>(text).is_ok_and(|v| v.is_null()) {
            return Err(empty());
        }
        return Err(Diagnostic::new(PIPELINE_FILE, "no stages are declared")
            .hint("add at least one stage under `stages:`")
            .into());
    }

    let mut diags = Vec::new();
    let mut files = ParamsFiles::new(root);
    let mut ctx = build_context(&raw.vars, &mut files, &mut diags);
    if !diags.is_empty() {
        ctx.mark_incomplete();
    }
    let checker = PathChecker::new(root);

    // Declaration order from the text; serde's map is sorted by name.
    let position: FxHashMap<&str, usize> = source
        .declaration_order()
        .enumerate()
        .map(|(i, name)| (name, i))
        .collect();
    let mut order: Vec<&String> = raw.stages.keys().collect();
    order.sort_by_key(|n| position.get(n.as_str()).copied().unwrap_or(usize::MAX));

    let mut stages = Vec::new();
    let mut too_many = false;
    // Stages made so far (even those with errors), and their names.
    let mut made = 0;
    let mut names: FxHashSet<String> = FxHashSet::default();
    for name in order {
        let body = &raw.stages[name];
        let here = |msg: String| {
            Diagnostic::new(PIPELINE_FILE, msg)
                .at(source.stage_line(name), None)
                .stage(name.as_str())
        };
        if name.contains('@') || name.contains('/') || name.trim().is_empty() {
            diags.push(here(format!("`{name}` is not a valid stage name")).hint(
                "use letters, digits, `-` and `_`; `@` is reserved for stages made by foreach/matrix",
            ));
            continue;
        }
        match expand(name, body, &ctx, made) {
            Ok(generated) => {
                made += generated.len();
                let mut reported = false;
                for (stage_name, stage_body, stage_ctx) in generated {
                    if !names.insert(stage_name.clone()) {
                        // `foreach: [a, a]`, or matrix values `1` and "1".
                        if !reported {
                            diags.push(here(format!("makes two stages named `{stage_name}`: items that read the same give the same name"))
                                .hint("make the items distinct, or name each one with a mapping: `foreach: {name: item, …}`"));
                            reported = true;
                        }
                        continue;
                    }
                    match convert(
                        &stage_name,
                        stage_body,
                        &stage_ctx,
                        &source,
                        &mut files,
                        &checker,
                    ) {
                        Ok(stage) => stages.push(stage),
                        Err(mut d) => diags.append(&mut d),
                    }
                }
            }
            Err(Refused::Invalid(msg)) => diags.push(here(msg)),
            Err(Refused::TooMany(msg)) => {
                // The generator makes no stage; the first one over the
                // limit is enough to report.
                if !too_many {
                    diags.push(here(msg).hint(limits::TOO_MANY_STAGES_HINT));
                    too_many = true;
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(Pipeline::new(root.to_path_buf(), stages, source))
    } else {
        // A file that is wrong (an invalid params.yaml) is reported once,
        // not once per stage that reads it.
        let mut seen = HashSet::new();
        diags.retain(|d| seen.insert(d.clone()));
        Err(PipelineError { diagnostics: diags })
    }
}

/// Turns a serde_yaml error into a diagnostic with a location and, for an
/// unknown field, the closest known one.
fn yaml_error(e: serde_yaml::Error, text: &str) -> Diagnostic {
    let loc = e.location();
    let full = e.to_string();
    let mut message = params::strip_location(&full);
    let mut stage = None;
    let mut hint = yaml::hint(&e).map(str::to_string);
    // "stages.train: unknown field `cmdd`, expected one of …"
    if let Some(rest) = message.strip_prefix("stages.") {
        if let Some((name, msg)) = rest.split_once(": ") {
            stage = Some(name.split('.').next().unwrap_or(name).to_string());
            message = msg.to_string();
        }
    }
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        let field = field.to_string();
        let candidates: &[&str] = if stage.is_some() {
            STAGE_FIELDS
        } else {
            &["stages", "vars"]
        };
        message = format!("unknown field `{field}`");
        hint = Some(match did_you_mean(&field, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known fields are: {}", candidates.join(", ")),
        });
    }
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
    let mut d = Diagnostic::new(PIPELINE_FILE, message).at(
        loc.as_ref().map(|l| l.line()),
        loc.as_ref().map(|l| l.column()),
    );
    if let Some(s) = stage {
        d = d.stage(s);
    }
    if let Some(h) = hint {
        d = d.hint(h);
    }
    d
}

fn build_context(vars: &[Value], files: &mut ParamsFiles, diags: &mut Vec<Diagnostic>) -> Context {
    let mut ctx = Context::new();
    let default = RelPath::from_normalized(DEFAULT_PARAMS_FILE);
    match files.get(&default) {
        Ok(Some(Value::Mapping(m))) => ctx.merge(m),
        Ok(_) => {}
        Err(d) => diags.push(d),
    }
    for var in vars {
        match var {
            Value::Mapping(m) => ctx.merge(m),
            Value::String(spec) => {
                // `file.yaml` or `file.yaml:key1,key2`
                let (file, keys) = match spec.split_once(':') {
                    Some((f, k)) => (f, Some(k)),
                    None => (spec.as_str(), None),
                };
                let rel = match RelPath::parse(file, None) {
                    Ok(r) => r,
                    Err(e) => {
                        diags.push(Diagnostic::new(PIPELINE_FILE, format!("vars: {e}")));
                        continue;
                    }
                };
                match files.get(&rel) {
                    Ok(Some(Value::Mapping(m))) => match keys {
                        None => ctx.merge(m),
                        Some(keys) => {
                            for key in keys.split(',').map(str::trim) {
                                match params::lookup(&Value::Mapping(m.clone()), key) {
                                    Some(v) => ctx.set(key, v.clone()),
                                    None => diags.push(Diagnostic::new(
                                        PIPELINE_FILE,
                                        format!("vars: key `{key}` is not in {file}"),
                                    )),
                                }
                            }
                        }
                    },
                    Ok(Some(_)) => diags.push(Diagnostic::new(
                        PIPELINE_FILE,
                        format!("vars: {file} is not a mapping of names to values"),
                    )),
                    Ok(None) => diags.push(
                        Diagnostic::new(
                            PIPELINE_FILE,
                            format!("vars: file `{file}` does not exist"),
                        )
                        .hint("create it, or remove it from `vars:`"),
                    ),
                    Err(d) => diags.push(d),
                }
            }
            other => diags.push(Diagnostic::new(
                PIPELINE_FILE,
                format!(
                    "vars: each entry is a mapping or a file name, not `{}`",
                    serde_yaml::to_string(other).unwrap_or_default().trim()
                ),
            )),
        }
    }
    ctx
}

type Generated<'a> = Vec<(String, &'a RawStage, Context)>;

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

/// Expands `foreach`/`do` and `matrix` into named stages with `item`/`key`
/// in their template context. `before` stages exist already: the stages
/// this one makes are counted, and refused past the limit, before any of
/// them is made.
fn expand<'a>(
    name: &str,
    body: &'a RawStage,
    ctx: &Context,
    before: usize,
) -> Result<Generated<'a>, Refused> {
    let count =
        |generator: Generator| limits::generated(&generator, before).map_err(Refused::TooMany);
    if let Some(foreach) = &body.foreach {
        let Some(template) = &body.do_ else {
            return Err("`foreach` needs a `do:` with the stage to repeat".into());
        };
        if body.cmd.is_some() || body.uses.is_some() || body.matrix.is_some() {
            return Err("a `foreach` stage puts its fields under `do:`".into());
        }
        let items = match ctx.render_value(foreach) {
            Ok(items) => items,
            Err(e) if ctx.explained(&e) => return Ok(Vec::new()),
            Err(e) => return Err(format!("foreach: {e}").into()),
        };
        let template: &RawStage = template;
        let mut out = Vec::new();
        match items {
            Value::Sequence(list) => {
                count(Generator::Foreach(list.len()))?;
                let all_scalars = list.iter().all(|v| scalar_plain(v).is_some());
                for (i, item) in list.into_iter().enumerate() {
                    let label = if all_scalars {
                        scalar_plain(&item).unwrap_or_default()
                    } else {
                        i.to_string()
                    };
                    let mut c = ctx.clone();
                    c.set("item", item);
                    out.push((format!("{name}@{label}"), template, c));
                }
            }
            Value::Mapping(map) => {
                count(Generator::Foreach(map.len()))?;
                for (key, item) in map {
                    let label = scalar_plain(&key).unwrap_or_default();
                    let mut c = ctx.clone();
                    c.set("key", Value::String(label.clone()));
                    c.set("item", item);
                    out.push((format!("{name}@{label}"), template, c));
                }
            }
            _ => return Err("`foreach` takes a list or a mapping".into()),
        }
        if out.is_empty() {
            return Err("`foreach` has no items".into());
        }
        return Ok(out);
    }
    if body.do_.is_some() {
        return Err("`do:` goes with `foreach:`".into());
    }
    if let Some(matrix) = &body.matrix {
        let mut lists = Vec::with_capacity(matrix.len());
        for (key, values) in matrix {
            let key_text = scalar_plain(key).unwrap_or_default();
            let values = match ctx.render_value(values) {
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
        count(Generator::Matrix(
            lists.iter().map(|(_, _, values)| values.len()).collect(),
        ))?;
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
        // `convert` does not read `matrix`: the stage is its own template.
        return Ok(combos
            .into_iter()
            .map(|(labels, item)| {
                let mut c = ctx.clone();
                c.set("item", Value::Mapping(item));
                (format!("{name}@{}", labels.join("-")), body, c)
            })
            .collect());
    }
    count(Generator::One)?;
    Ok(vec![(name.to_string(), body, ctx.clone())])
}

/// Converts one (expanded) stage and checks it on its own.
fn convert(
    name: &str,
    body: &RawStage,
    ctx: &Context,
    source: &SourceMap,
    files: &mut ParamsFiles,
    checker: &PathChecker,
) -> Result<Stage, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let at = |word: &str, msg: String| {
        let d = Diagnostic::new(PIPELINE_FILE, msg).stage(name);
        match source.find_in_stage(name, word) {
            Some((l, c)) => d.at(Some(l), Some(c)),
            None => d.at(source.stage_line(name), None),
        }
    };
    let render = |text: &str, diags: &mut Vec<Diagnostic>| match ctx.render(text) {
        Ok(t) => Some(t),
        Err(e) => {
            if !ctx.explained(&e) {
                diags.push(
                    at(text, e.to_string()).hint("define it in params.yaml or under `vars:`"),
                );
            }
            None
        }
    };

    let wdir = match body.wdir.as_deref().map(|w| render(w, &mut diags)) {
        None => RelPath::root(),
        Some(None) => RelPath::root(),
        Some(Some(w)) => match RelPath::parse(&w, None) {
            Ok(p) => match checker.too_long(&p) {
                Some(msg) => {
                    diags.push(at(&w, format!("wdir: {msg}")).hint(limits::LONG_PATH_HINT));
                    RelPath::root()
                }
                None => p,
            },
            Err(e) => {
                diags.push(at(&w, format!("wdir: {e}")));
                RelPath::root()
            }
        },
    };
    let path = |text: &str, field: &str, output: bool, diags: &mut Vec<Diagnostic>| {
        let rendered = render(text, diags)?;
        match RelPath::parse(&rendered, Some(&wdir)) {
            Ok(p) if p.is_root() => {
                diags.push(at(
                    text,
                    format!("{field}: `{text}` is the project root itself"),
                ));
                None
            }
            Ok(p) => {
                if let Some(msg) = checker.too_long(&p) {
                    diags.push(at(text, format!("{field}: {msg}")).hint(limits::LONG_PATH_HINT));
                    return None;
                }
                if let Some(msg) = reserved::reserved(&p).filter(|_| output) {
                    diags.push(at(text, format!("{field}: {msg}")).hint(reserved::HINT));
                    return None;
                }
                if let Some(msg) = checker.symlink_escape(&p) {
                    diags.push(
                        at(text, format!("{field}: {msg}"))
                            .hint("pipe only tracks files inside the project: copy the data in, or point the symlink inside it"),
                    );
                    return None;
                }
                Some(p)
            }
            Err(e) => {
                let hint = match e {
                    crate::paths::PathError::Absolute(_) => {
                        "write it relative to the project root (or to the stage's `wdir`)"
                    }
                    _ => "keep every path inside the project: the directory holding pipeline.yaml",
                };
                diags.push(at(text, format!("{field}: {e}")).hint(hint));
                None
            }
        }
    };

    let mut deps: Vec<RelPath> = Vec::new();
    for d in &body.deps {
        if let Some(p) = path(d, "deps", false, &mut diags) {
            deps.push(p);
        }
    }
    let mut outs: Vec<Output> = Vec::new();
    for (field, kind, entries) in [
        ("outs", OutKind::Out, &body.outs),
        ("metrics", OutKind::Metric, &body.metrics),
        ("plots", OutKind::Plot, &body.plots),
    ] {
        for entry in entries {
            match output_entry(entry) {
                Ok((text, cache, persist)) => {
                    if let Some(p) = path(&text, field, true, &mut diags) {
                        outs.push(Output {
                            path: p,
                            kind,
                            cache,
                            persist,
                            dir: text.trim_end().ends_with('/'),
                        });
                    }
                }
                Err((word, msg, hint)) => {
                    let mut d = at(&word, format!("{field}: {msg}"));
                    if let Some(h) = hint {
                        d = d.hint(h);
                    }
                    diags.push(d);
                }
            }
        }
    }

    let action = match (&body.cmd, &body.uses) {
        (Some(_), Some(_)) => {
            diags.push(at(
                "uses",
                "has both `cmd` and `uses`; a stage does one of the two".into(),
            ));
            None
        }
        (None, None) => {
            diags.push(
                at(name, "has neither `cmd` nor `uses`".into())
                    .hint("add `cmd: <shell command>` or `uses: <built-in stage>`"),
            );
            None
        }
        (Some(cmd), None) => {
            let texts: Vec<String> = match cmd {
                Value::String(s) => vec![s.clone()],
                Value::Sequence(items)
                    if items.iter().all(|v| v.is_string()) && !items.is_empty() =>
                {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                }
                _ => {
                    diags.push(at(
                        "cmd",
                        "`cmd` must be a string or a list of strings".into(),
                    ));
                    Vec::new()
                }
            };
            let rendered: Vec<String> =
                texts.iter().filter_map(|t| render(t, &mut diags)).collect();
            if rendered.iter().any(|c| c.trim().is_empty()) {
                diags.push(at("cmd", "`cmd` is empty".into()));
            }
            Some(Action::Cmd(rendered))
        }
        (None, Some(uses)) => builtin_action(
            uses, body, &wdir, &mut deps, &mut outs, ctx, &at, &path, &mut diags,
        ),
    };

    let mut params_refs = Vec::new();
    for entry in &body.params {
        match param_entry(entry, ctx) {
            Ok(refs) => {
                for (file_text, key) in refs {
                    let file = match RelPath::parse(&file_text, Some(&wdir)) {
                        Ok(f) => f,
                        Err(e) => {
                            diags.push(at(&file_text, format!("params: {e}")));
                            continue;
                        }
                    };
                    if let Some(msg) = checker.too_long(&file) {
                        diags.push(
                            at(&file_text, format!("params: {msg}")).hint(limits::LONG_PATH_HINT),
                        );
                        continue;
                    }
                    check_param(&file, &key, files, &at, &mut diags);
                    params_refs.push(ParamRef { file, key });
                }
            }
            Err(msg) => diags.push(at("params", format!("params: {msg}"))),
        }
    }
    // Like DVC: a params.yaml value written into the command is a param
    // dependency even when `params:` does not list it, so that `pipe status`
    // names the param rather than only a changed command.
    if let Some(Action::Cmd(_)) = &action {
        let default = RelPath::from_normalized(DEFAULT_PARAMS_FILE);
        let texts: Vec<String> = match &body.cmd {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        for name in texts.iter().flat_map(|t| Context::references(t)) {
            let from_params = match files.get(&default) {
                Ok(Some(doc)) => {
                    params::lookup(doc, &name).is_some_and(|v| ctx.lookup(&name) == Some(v))
                }
                _ => false,
            };
            let covered = params_refs.iter().any(|r| {
                r.file == default
                    && (r.key.is_empty()
                        || name == r.key
                        || name.starts_with(&format!("{}.", r.key)))
            });
            if from_params && !covered {
                params_refs.push(ParamRef {
                    file: default.clone(),
                    key: name,
                });
            }
        }
    }
    params_refs.sort();
    params_refs.dedup();
    if let Some(Action::Builtin { name: uses, .. }) = &action {
        check_builtin_params(uses, &params_refs, files, &at, &mut diags);
    }

    let mut seen = BTreeMap::new();
    for o in &outs {
        if let Some(prev) = seen.insert(o.path.clone(), o.kind) {
            let _ = prev;
            diags.push(at(
                o.path.as_str(),
                format!("`{}` is listed as an output twice", o.path),
            ));
        }
    }
    deps.sort();
    deps.dedup();

    let cmd_template: Vec<String> = match (&action, &body.cmd) {
        (Some(Action::Cmd(_)), Some(Value::String(s))) => vec![s.clone()],
        (Some(Action::Cmd(_)), Some(Value::Sequence(items))) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    match action {
        Some(action) if diags.is_empty() => Ok(Stage {
            name: name.to_string(),
            desc: body.desc.clone(),
            action,
            wdir,
            deps,
            outs,
            params: params_refs,
            frozen: body.frozen.unwrap_or(false),
            always_changed: body.always_changed.unwrap_or(false),
            cmd_vars: cmd_template
                .iter()
                .flat_map(|t| Context::references(t))
                .filter_map(|name| ctx.lookup(&name).map(|v| (name, params::to_json(v))))
                .collect(),
            cmd_template,
        }),
        _ => Err(diags),
    }
}

type Locate<'a> = dyn Fn(&str, String) -> Diagnostic + 'a;
/// Checks a path written in a field (`deps`, `with.out`…); `true` for an
/// output.
type PathOf<'a> = dyn Fn(&str, &str, bool, &mut Vec<Diagnostic>) -> Option<RelPath> + 'a;

#[allow(clippy::too_many_arguments)]
fn builtin_action(
    uses: &str,
    body: &RawStage,
    wdir: &RelPath,
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
    let with = body.with.clone().unwrap_or_default();
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
        let value = match ctx.render_value(value) {
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
    let _ = wdir;
    (diags.len() == before).then(|| Action::Builtin {
        name: b.name.to_string(),
        version: b.version,
        args,
    })
}

/// `path` or `path: {cache, persist}` → (path, cache, persist).
#[allow(clippy::type_complexity)]
fn output_entry(entry: &Value) -> Result<(String, bool, bool), (String, String, Option<String>)> {
    match entry {
        Value::String(s) => Ok((s.clone(), true, false)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            let Some(path) = k.as_str() else {
                return Err((String::new(), "an output is a path".into(), None));
            };
            let (mut cache, mut persist) = (true, false);
            match v {
                Value::Null => {}
                Value::Mapping(opts) => {
                    for (ok, ov) in opts {
                        let key = ok.as_str().unwrap_or_default();
                        match (key, ov.as_bool()) {
                            ("cache", Some(b)) => cache = b,
                            ("persist", Some(b)) => persist = b,
                            ("desc", _) => {}
                            ("cache" | "persist", None) => {
                                return Err((
                                    key.into(),
                                    format!("`{key}` of `{path}` must be true or false"),
                                    None,
                                ))
                            }
                            _ => {
                                let hint = did_you_mean(key, OUTPUT_FIELDS.iter().copied())
                                    .map(|s| format!("did you mean `{s}`?"))
                                    .unwrap_or_else(|| {
                                        format!("output options are: {}", OUTPUT_FIELDS.join(", "))
                                    });
                                return Err((
                                    key.into(),
                                    format!("unknown option `{key}` of `{path}`"),
                                    Some(hint),
                                ));
                            }
                        }
                    }
                }
                _ => {
                    return Err((
                        path.into(),
                        format!("options of `{path}` must be a mapping such as {{cache: false}}"),
                        None,
                    ))
                }
            }
            Ok((path.to_string(), cache, persist))
        }
        _ => Err((
            String::new(),
            "each entry is a path or `path: {cache: false, persist: true}`".into(),
            None,
        )),
    }
}

/// A `params:` entry → (file, key) pairs; key "" means the whole file.
fn param_entry(entry: &Value, ctx: &Context) -> Result<Vec<(String, String)>, String> {
    match entry {
        Value::String(key) => {
            let key = ctx.render(key).map_err(|e| e.to_string())?;
            // A bare file name (`- other.yaml`) means the whole file, as in DVC
            // when written as a mapping; a key never ends in .yaml.
            if key.ends_with(".yaml") || key.ends_with(".yml") || key.ends_with(".json") {
                Ok(vec![(key, String::new())])
            } else {
                Ok(vec![(DEFAULT_PARAMS_FILE.to_string(), key)])
            }
        }
        Value::Mapping(m) => {
            let mut out = Vec::new();
            for (file, keys) in m {
                let file = file
                    .as_str()
                    .ok_or("a params file name must be a string")?
                    .to_string();
                match keys {
                    Value::Null => out.push((file, String::new())),
                    Value::Sequence(list) if list.is_empty() => out.push((file, String::new())),
                    Value::Sequence(list) => {
                        for k in list {
                            let k = scalar_plain(k).ok_or("param keys must be strings")?;
                            out.push((file.clone(), ctx.render(&k).map_err(|e| e.to_string())?));
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
