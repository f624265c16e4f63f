//! `${…}` templating, as `dvc.yaml` has it.
//!
//! The context is built as DVC builds it: `params.yaml` next to the
//! pipeline file (when present), then each `vars:` entry in order (a file,
//! `file:key1,key2`, or an inline mapping), then, for a generated stage,
//! `item` (and `key`), and last the stage's own `vars:` (read relative to
//! its `wdir`). Sources are merged key by key: `{grp: {a: 1}}` and `{grp:
//! {b: 2}}` make `{grp: {a: 1, b: 2}}`, while a value defined twice is an
//! error naming both places ([`TemplateError::Redefined`]), since nothing
//! says which one the user meant. Each merged value remembers where it came
//! from for that message. `item` and `key` are reserved in generated
//! stages: a stage's `vars:` cannot redefine them.
//!
//! A reference is `${name}`, with `.key`, `[key]` or `[index]` steps
//! (`${fit.C}`, `${item[thresh]}`, `${names[0]}`, `${a[b][c]}`); `\${`
//! escapes a literal `${`. A string that is exactly one reference keeps the
//! referenced value's type (so `foreach: ${models}` yields a list, and
//! `frozen: ${freeze}` a boolean); inside a longer string a scalar is
//! written as text. Where a value goes decides what it may be
//! ([`Field`]): in `cmd`, a mapping is written as command-line flags, as
//! DVC does (`--key value`, `true` as a bare `--key`, `false` left out or
//! `--no-key`, a list as several values or a repeated flag, nested keys
//! dotted, text quoted for the shell when it must be), and a list as its
//! items separated by spaces; in a path or any other field, a list or a
//! mapping is an error.
//!
//! Numbers are written as YAML reads them (`0.5`, `1e-5`, `100000.0`) and
//! null as `null`; DVC writes Python's `str()` of the value (`1e-05`,
//! `None`). Only exotic values differ.
//!
//! Every generated stage gets its own context (its `item`), so cloning one
//! must not copy `params.yaml`: the shared part (params and `vars:`) sits
//! behind an `Arc`, and only the few names set per stage are copied.

use std::collections::BTreeMap;
use std::sync::Arc;

use yaml_serde::{Mapping, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`${{{0}}}` is not defined (not in params.yaml, `vars`, or the stage's `item`)")]
    Undefined(String),
    #[error("`${{{0}}}` is a mapping and cannot be written into a string")]
    NotScalar(String),
    #[error("`${{{name}}}` is a {kind}; only `cmd` can take a {kind} (a mapping becomes --flags)")]
    NotInCmd { name: String, kind: &'static str },
    #[error("`${{{name}}}`: `{key}` holds a list inside a list, which cannot be written as flags")]
    NestedList { name: String, key: String },
    #[error("unclosed `${{` in `{0}`")]
    Unclosed(String),
    #[error("`${{{expr}}}` is not a reference: {why}")]
    BadExpression { expr: String, why: String },
    #[error("cannot redefine `{path}` from {new} as it already exists in {old}")]
    Redefined {
        path: String,
        new: String,
        old: String,
    },
    #[error("`{keys}` {verb} reserved in a generated stage and cannot be redefined{}", .source_name.as_ref().map(|s| format!(" (in {s})")).unwrap_or_default())]
    Reserved {
        keys: String,
        verb: &'static str,
        source_name: Option<String>,
    },
    #[error("interpolating is not allowed in `vars`: `{0}`")]
    InVars(String),
}

/// Where a rendered value goes, which decides what a reference may hold
/// (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A command: mappings become flags, lists their items.
    Cmd,
    /// A path, a flag, a description: scalars only.
    Scalar,
    /// `foreach`, `matrix`, `with`, the top-level sections: a whole
    /// reference keeps any type; inside text, as in `cmd`.
    Any,
}

/// How a mapping is written into a command (`.dvc/config`'s `[parsing]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parsing {
    /// `bool = boolean_optional`: `false` is written `--no-key` (DVC's
    /// default, `store_true`, leaves it out).
    pub bool_optional: bool,
    /// `list = append`: `--key a --key b` (DVC's default, `nargs`, writes
    /// `--key a b`).
    pub list_append: bool,
}

/// The variables templates may refer to.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Names merged from files and `vars:`, shared by the clones of a
    /// context.
    shared: Arc<Merged>,
    /// `item` and `key` of a generated stage; they hide a shared name of
    /// the same key.
    own: Mapping,
    /// A file meant to fill it could not be read: an undefined name may be
    /// one of its names, and is not worth reporting on top of that error.
    incomplete: bool,
    pub parsing: Parsing,
}

#[derive(Debug, Clone, Default)]
struct Merged {
    values: Mapping,
    /// Dotted path of each merged subtree → where it came from.
    origins: BTreeMap<String, String>,
    /// Files loaded whole (`None`) or in part (their keys).
    imports: BTreeMap<String, Option<Vec<String>>>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// Merges `mapping` key by key, recording `source` (`params.yaml`,
    /// `vars[0]`, `train.vars[1]`) as where its values come from. A value
    /// that exists already is an error, unless both are mappings (which
    /// are merged). `item` and `key` of a generated stage are reserved.
    pub fn merge(&mut self, mapping: &Mapping, source: &str) -> Result<(), TemplateError> {
        let reserved: Vec<String> = self
            .own
            .keys()
            .filter(|k| mapping.contains_key(*k))
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        if !reserved.is_empty() {
            return Err(TemplateError::Reserved {
                verb: if reserved.len() == 1 { "is" } else { "are" },
                keys: reserved.join("` and `"),
                source_name: (!source.contains("vars[")).then(|| source.to_string()),
            });
        }
        let merged = Arc::make_mut(&mut self.shared);
        let Merged {
            values, origins, ..
        } = merged;
        merge_into(values, mapping, "", source, origins)
    }

    /// Records that `file` was loaded whole (`keys` empty) or for some
    /// keys. Loading a whole file twice is allowed and does nothing the
    /// second time (`Ok(false)`); mixing whole and partial loads, or
    /// loading a key twice, is an error, as in DVC.
    pub fn import(&mut self, file: &str, keys: &[String]) -> Result<bool, String> {
        let merged = Arc::make_mut(&mut self.shared);
        match merged.imports.get_mut(file) {
            None => {
                let entry = (!keys.is_empty()).then(|| keys.to_vec());
                merged.imports.insert(file.to_string(), entry);
                Ok(true)
            }
            Some(None) if keys.is_empty() => Ok(false),
            Some(None) => Err(format!(
                "cannot load keys of `{file}` as the whole file is loaded already"
            )),
            Some(Some(_)) if keys.is_empty() => Err(format!(
                "cannot load `{file}` whole as some of its keys are loaded already"
            )),
            Some(Some(loaded)) => {
                if let Some(k) = keys.iter().find(|k| loaded.contains(k)) {
                    return Err(format!("`{file}:{k}` is loaded twice"));
                }
                loaded.extend(keys.iter().cloned());
                Ok(true)
            }
        }
    }

    /// Records that a file meant to fill the context could not be read.
    pub fn mark_incomplete(&mut self) {
        self.incomplete = true;
    }

    /// True when `error` says nothing new: an undefined name in a context
    /// that misses a file.
    pub fn explained(&self, error: &TemplateError) -> bool {
        self.incomplete && matches!(error, TemplateError::Undefined(_))
    }

    /// True if `name` is a top-level name of the merged sources.
    pub fn defines(&self, name: &str) -> bool {
        self.shared.values.contains_key(name)
    }

    /// Sets a name of a generated stage (`item`, `key`).
    pub fn set(&mut self, key: &str, value: Value) {
        self.own.insert(Value::String(key.to_string()), value);
    }

    /// Where the value at dotted `path` came from (`params.yaml`,
    /// `vars[0]`), if it came from a merged source.
    pub fn origin(&self, path: &str) -> Option<&str> {
        if self
            .own
            .contains_key(path.split('.').next().unwrap_or(path))
        {
            return None;
        }
        origin_of(&self.shared.origins, path)
    }

    /// Looks up a dotted path such as `fit.C` or `models.0`.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let first = parts.next()?.trim();
        let mut current = self
            .own
            .get(first)
            .or_else(|| self.shared.values.get(first))?;
        for part in parts {
            current = step(current, part.trim())?;
        }
        Some(current)
    }

    /// The names referenced by `${…}` in `text`, in order, as dotted paths
    /// (`a[b]` is `a.b`); references that do not parse are left out.
    pub fn references(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find("${") {
            let escaped = pos > 0 && rest.as_bytes()[pos - 1] == b'\\';
            let after = &rest[pos + 2..];
            let Some(end) = after.find('}') else { break };
            if !escaped {
                if let Ok(name) = parse_expression(&after[..end]) {
                    names.push(name);
                }
            }
            rest = &after[end + 1..];
        }
        names
    }

    /// Expands every `${…}` in `text` into a string, for `field`.
    pub fn render(&self, text: &str, field: Field) -> Result<String, TemplateError> {
        render_with(text, field, self.parsing, |name| self.lookup(name).cloned())
    }

    /// Expands a YAML value for `field`: a string that is exactly one
    /// reference becomes the referenced value; other strings are rendered;
    /// lists and mappings (their keys too) are expanded element by element.
    pub fn render_value(&self, value: &Value, field: Field) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => match whole_reference(s) {
                Some(expr) => {
                    let name = parse_expression(expr)?;
                    let found = self
                        .lookup(&name)
                        .cloned()
                        .ok_or_else(|| TemplateError::Undefined(name.clone()))?;
                    match (field, &found) {
                        (Field::Scalar, Value::Mapping(_)) => {
                            return Err(TemplateError::NotInCmd {
                                name,
                                kind: "mapping",
                            })
                        }
                        (Field::Scalar, Value::Sequence(_)) => {
                            return Err(TemplateError::NotInCmd { name, kind: "list" })
                        }
                        (Field::Cmd, Value::Mapping(_) | Value::Sequence(_)) => {
                            Value::String(self.render(s, field)?)
                        }
                        _ => found,
                    }
                }
                None => Value::String(self.render(s, field)?),
            },
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|v| self.render_value(v, field))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    let key = match k {
                        Value::String(s) => Value::String(self.render(s, Field::Scalar)?),
                        other => other.clone(),
                    };
                    out.insert(key, self.render_value(v, field)?);
                }
                Value::Mapping(out)
            }
            Value::Tagged(t) => self.render_value(&t.value, field)?,
            other => other.clone(),
        })
    }
}

/// Fails with [`TemplateError::InVars`] if a `vars:` entry holds a `${`.
pub fn check_no_templates(value: &Value) -> Result<(), TemplateError> {
    match value {
        Value::String(s) if has_reference(s) => Err(TemplateError::InVars(s.clone())),
        Value::Sequence(items) => items.iter().try_for_each(check_no_templates),
        Value::Mapping(map) => map
            .iter()
            .try_for_each(|(k, v)| check_no_templates(k).and(check_no_templates(v))),
        Value::Tagged(t) => check_no_templates(&t.value),
        _ => Ok(()),
    }
}

/// True if `text` holds an unescaped `${`.
pub fn has_reference(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices("${")
        .any(|(i, _)| i == 0 || bytes[i - 1] != b'\\')
}

fn merge_into(
    into: &mut Mapping,
    new: &Mapping,
    prefix: &str,
    source: &str,
    origins: &mut BTreeMap<String, String>,
) -> Result<(), TemplateError> {
    for (k, v) in new {
        let name = match k {
            Value::String(s) => s.clone(),
            other => scalar_plain(other).unwrap_or_default(),
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match (into.get_mut(k), v) {
            (Some(Value::Mapping(existing)), Value::Mapping(more)) => {
                merge_into(existing, more, &path, source, origins)?;
            }
            (Some(_), _) => {
                return Err(TemplateError::Redefined {
                    old: origin_of(origins, &path)
                        .unwrap_or("an earlier source")
                        .to_string(),
                    new: source.to_string(),
                    path,
                })
            }
            (None, _) => {
                into.insert(k.clone(), v.clone());
                origins.insert(path, source.to_string());
            }
        }
    }
    Ok(())
}

/// The source recorded for `path` or the nearest subtree above it.
fn origin_of<'a>(origins: &'a BTreeMap<String, String>, path: &str) -> Option<&'a str> {
    let mut candidate = path;
    loop {
        if let Some(source) = origins.get(candidate) {
            return Some(source);
        }
        candidate = &candidate[..candidate.rfind('.')?];
    }
}

/// Parses the inside of `${…}` into a dotted path: `a.b`, `a[b]`,
/// `a[0][c]`; spaces around the steps are allowed.
pub fn parse_expression(inner: &str) -> Result<String, TemplateError> {
    let bad = |why: String| TemplateError::BadExpression {
        expr: inner.to_string(),
        why,
    };
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = inner;
    let word = |rest: &str| -> usize { rest.find(['.', '[', ']']).unwrap_or(rest.len()) };
    let end = word(rest);
    if rest[..end].trim().is_empty() {
        return Err(bad("it does not start with a name".into()));
    }
    parts.push(rest[..end].trim());
    rest = &rest[end..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = word(after);
            if after[..end].trim().is_empty() {
                return Err(bad("a `.` must be followed by a name".into()));
            }
            parts.push(after[..end].trim());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = word(after);
            if after[..end].trim().is_empty() || !after[end..].starts_with(']') {
                return Err(bad(
                    "`[` must hold a name or an index and be closed by `]`".into()
                ));
            }
            parts.push(after[..end].trim());
            rest = &after[end + 1..];
        } else {
            return Err(bad(format!("unexpected `{}`", &rest[..1])));
        }
    }
    Ok(parts.join("."))
}

/// Expands every `${…}` in `text` for `field`, looking names (dotted
/// paths) up with `lookup`.
pub fn render_with(
    text: &str,
    field: Field,
    parsing: Parsing,
    lookup: impl Fn(&str) -> Option<Value>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        if pos > 0 && rest.as_bytes()[pos - 1] == b'\\' {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
        let name = parse_expression(&after[..end])?;
        let value = lookup(&name).ok_or_else(|| TemplateError::Undefined(name.clone()))?;
        out.push_str(&value_text(&name, &value, field, parsing)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn step<'v>(value: &'v Value, part: &str) -> Option<&'v Value> {
    match value {
        Value::Mapping(m) => m.get(part).or_else(|| {
            // Keys written as numbers (`1: …`) are looked up by their text too.
            m.iter()
                .find(|(k, _)| scalar_plain(k).as_deref() == Some(part))
                .map(|(_, v)| v)
        }),
        Value::Sequence(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Tagged(t) => step(&t.value, part),
        _ => None,
    }
}

/// The inside of a string that is exactly one `${…}` (DVC: nothing around
/// it, not even spaces).
fn whole_reference(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("${")?.strip_suffix('}')?;
    (!inner.contains("${") && !inner.contains('}')).then_some(inner)
}

/// A scalar as YAML would print it: `1`, `0.5`, `true`, `text`.
pub fn scalar_plain(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some("null".to_string()),
        Value::Tagged(t) => scalar_plain(&t.value),
        _ => None,
    }
}

/// A value written into text for `field`.
fn value_text(
    name: &str,
    value: &Value,
    field: Field,
    parsing: Parsing,
) -> Result<String, TemplateError> {
    match (value, field) {
        (Value::Tagged(t), _) => value_text(name, &t.value, field, parsing),
        (Value::Mapping(_), Field::Scalar) => Err(TemplateError::NotInCmd {
            name: name.to_string(),
            kind: "mapping",
        }),
        (Value::Sequence(_), Field::Scalar) => Err(TemplateError::NotInCmd {
            name: name.to_string(),
            kind: "list",
        }),
        (Value::Mapping(m), _) => flags(name, m, parsing),
        (Value::Sequence(items), _) => items
            .iter()
            .map(|v| match v {
                Value::Mapping(_) | Value::Sequence(_) => {
                    Err(TemplateError::NotScalar(name.to_string()))
                }
                _ => value_text(name, v, field, parsing),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join(" ")),
        (other, _) => scalar_plain(other).ok_or_else(|| TemplateError::NotScalar(name.into())),
    }
}

/// A mapping as command-line flags, as DVC writes it into `cmd`.
fn flags(name: &str, map: &Mapping, parsing: Parsing) -> Result<String, TemplateError> {
    let mut leaves = Vec::new();
    flatten_leaves("", map, &mut leaves);
    let mut out: Vec<String> = Vec::new();
    for (key, value) in leaves {
        match value {
            Value::Bool(true) => out.push(format!("--{key}")),
            Value::Bool(false) => {
                if parsing.bool_optional {
                    out.push(format!("--no-{key}"));
                }
            }
            Value::String(s) => out.push(format!("--{key} {}", shell_quote(s))),
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let text = match item {
                        Value::Sequence(_) | Value::Mapping(_) => {
                            return Err(TemplateError::NestedList {
                                name: name.to_string(),
                                key,
                            })
                        }
                        Value::String(s) => shell_quote(s),
                        other => scalar_plain(other).unwrap_or_default(),
                    };
                    if parsing.list_append || i == 0 {
                        out.push(format!("--{key} {text}"));
                    } else {
                        out.push(text);
                    }
                }
            }
            other => out.push(format!(
                "--{key} {}",
                scalar_plain(other).unwrap_or_default()
            )),
        }
    }
    Ok(out.join(" "))
}

/// The leaves of nested mappings, with dotted keys, in file order; empty
/// mappings have none.
fn flatten_leaves<'v>(prefix: &str, map: &'v Mapping, out: &mut Vec<(String, &'v Value)>) {
    for (k, v) in map {
        let name = match k {
            Value::String(s) => s.clone(),
            other => scalar_plain(other).unwrap_or_default(),
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match v {
            Value::Mapping(inner) => flatten_leaves(&key, inner, out),
            Value::Tagged(t) => out.push((key, &t.value)),
            other => out.push((key, other)),
        }
    }
}

/// Quotes `text` for a POSIX shell when it must be, as Python's
/// `shlex.quote` does (which DVC uses): unchanged if it is only letters,
/// digits and `@%+=:,./-_`; otherwise in single quotes.
pub fn shell_quote(text: &str) -> String {
    if text.is_empty() {
        return "''".into();
    }
    let safe = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(yaml: &str) -> Mapping {
        yaml_serde::from_str::<Value>(yaml)
            .unwrap()
            .as_mapping()
            .unwrap()
            .clone()
    }

    fn ctx(yaml: &str) -> Context {
        let mut c = Context::new();
        c.merge(&mapping(yaml), "params.yaml").unwrap();
        c
    }

    #[test]
    fn renders_dotted_and_bracketed_references_and_escapes() {
        let c = ctx("fit: {C: 0.5, max_iter: 100}\nname: demo\nlist: [a, b]\na: {b: {c: deep}}");
        assert_eq!(
            c.render(
                "train --c ${fit.C} --n ${ fit.max_iter } ${name}",
                Field::Cmd
            )
            .unwrap(),
            "train --c 0.5 --n 100 demo"
        );
        assert_eq!(
            c.render("echo \\${HOME} ${list}", Field::Cmd).unwrap(),
            "echo ${HOME} a b"
        );
        assert_eq!(c.render("${list.1}", Field::Scalar).unwrap(), "b");
        assert_eq!(c.render("${list[0]}", Field::Scalar).unwrap(), "a");
        assert_eq!(c.render("${fit[C]}", Field::Scalar).unwrap(), "0.5");
        assert_eq!(c.render("${a[b][c]}", Field::Scalar).unwrap(), "deep");
        assert_eq!(c.render("${a.b[c]}", Field::Scalar).unwrap(), "deep");
    }

    #[test]
    fn reports_undefined_unclosed_bad_and_composite_references() {
        let c = ctx("fit: {C: 1}\nl: [1]");
        assert_eq!(
            c.render("x ${fit.D}", Field::Cmd),
            Err(TemplateError::Undefined("fit.D".into()))
        );
        assert!(matches!(
            c.render("x ${fit.C", Field::Cmd),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(
            c.render("x ${fit.C.}", Field::Cmd),
            Err(TemplateError::BadExpression { .. })
        ));
        assert!(matches!(
            c.render("x ${fit[C}", Field::Cmd),
            Err(TemplateError::BadExpression { .. })
        ));
        assert_eq!(
            c.render("out/${fit}", Field::Scalar),
            Err(TemplateError::NotInCmd {
                name: "fit".into(),
                kind: "mapping"
            })
        );
        assert_eq!(
            c.render_value(&Value::from("${l}"), Field::Scalar),
            Err(TemplateError::NotInCmd {
                name: "l".into(),
                kind: "list"
            })
        );
    }

    #[test]
    fn lists_references_as_dotted_paths_but_not_escaped_ones() {
        assert_eq!(
            Context::references("a ${x.y} \\${no} ${ z } ${l[0]} ${bad.}"),
            ["x.y", "z", "l.0"]
        );
    }

    #[test]
    fn sources_merge_key_by_key_and_a_value_defined_twice_is_an_error() {
        let mut c = ctx("grp: {a: 1}\nmodels: {bar: bar}");
        c.merge(&mapping("grp: {b: 2}"), "vars[0]").unwrap();
        assert_eq!(c.render("${grp.a} ${grp.b}", Field::Cmd).unwrap(), "1 2");
        assert_eq!(
            c.merge(&mapping("models: {bar: baz}"), "params.json"),
            Err(TemplateError::Redefined {
                path: "models.bar".into(),
                new: "params.json".into(),
                old: "params.yaml".into()
            })
        );
        assert_eq!(
            c.merge(&mapping("grp: {b: 3}"), "vars[1]")
                .unwrap_err()
                .to_string(),
            "cannot redefine `grp.b` from vars[1] as it already exists in vars[0]"
        );
        assert_eq!(c.origin("grp.b"), Some("vars[0]"));
        assert_eq!(c.origin("models.bar"), Some("params.yaml"));
    }

    #[test]
    fn item_and_key_are_reserved_and_hide_nothing_shared() {
        let mut c = ctx("a: 1");
        c.set("item", Value::from(2));
        let copy = c.clone();
        assert_eq!(
            c.merge(&mapping("item: 5"), "build@x.vars[0]")
                .unwrap_err()
                .to_string(),
            "`item` is reserved in a generated stage and cannot be redefined"
        );
        assert_eq!(copy.render("${item} ${a}", Field::Cmd).unwrap(), "2 1");
    }

    #[test]
    fn a_whole_reference_keeps_its_type() {
        let c = ctx("models: [cnn, xgb]\nfreeze: true");
        let v = c
            .render_value(&Value::String("${models}".into()), Field::Any)
            .unwrap();
        assert_eq!(v, yaml_serde::from_str::<Value>("[cnn, xgb]").unwrap());
        let v = c
            .render_value(&Value::String("${freeze}".into()), Field::Scalar)
            .unwrap();
        assert_eq!(v, Value::Bool(true));
    }

    #[test]
    fn a_mapping_in_a_command_becomes_flags_as_in_dvc() {
        let c = ctx(
            "dict:\n  foo: foo\n  bar: 2\n  string: spaced string\n  mixed_quote_string: quote\"'d\n  bool: true\n  bool-false: false\n  list: [1, 2, foo, \"quote\\\"'d\"]\n  nested: {foo: foo}\n",
        );
        assert_eq!(
            c.render("python script.py ${dict}", Field::Cmd).unwrap(),
            "python script.py --foo foo --bar 2 --string 'spaced string' --mixed_quote_string 'quote\"'\"'\"'d' --bool --list 1 2 foo 'quote\"'\"'\"'d' --nested.foo foo"
        );
        let mut optional = c.clone();
        optional.parsing = Parsing {
            bool_optional: true,
            list_append: true,
        };
        assert_eq!(
            optional.render("${dict}", Field::Cmd).unwrap(),
            "--foo foo --bar 2 --string 'spaced string' --mixed_quote_string 'quote\"'\"'\"'d' --bool --no-bool-false --list 1 --list 2 --list foo --list 'quote\"'\"'\"'d' --nested.foo foo"
        );
        let nested = ctx("models: {list: [1, [2, 3]]}");
        assert_eq!(
            nested
                .render("echo ${models}", Field::Cmd)
                .unwrap_err()
                .to_string(),
            "`${models}`: `list` holds a list inside a list, which cannot be written as flags"
        );
    }

    #[test]
    fn vars_may_not_hold_templates() {
        assert!(check_no_templates(&Value::from("${file}_params.yaml")).is_err());
        assert!(check_no_templates(&yaml_serde::from_str("{foo: \"${foo}\"}").unwrap()).is_err());
        assert!(check_no_templates(&Value::from("a \\${literal}")).is_ok());
    }

    #[test]
    fn whole_and_partial_imports_of_a_file_follow_dvc() {
        let mut c = Context::new();
        assert_eq!(c.import("p.yaml", &[]), Ok(true));
        assert_eq!(c.import("p.yaml", &[]), Ok(false));
        assert!(c.import("p.yaml", &["a".into()]).is_err());
        assert_eq!(c.import("q.yaml", &["a".into()]), Ok(true));
        assert_eq!(c.import("q.yaml", &["b".into()]), Ok(true));
        assert!(c.import("q.yaml", &["b".into()]).is_err());
        assert!(c.import("q.yaml", &[]).is_err());
    }

    #[test]
    fn shell_quoting_matches_python_shlex() {
        assert_eq!(shell_quote("foo"), "foo");
        assert_eq!(
            shell_quote("a/b-c_d.e:f,g=h+i@j%k"),
            "a/b-c_d.e:f,g=h+i@j%k"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("spaced string"), "'spaced string'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
    }
}
