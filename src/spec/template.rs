//! `${…}` templating, as in `dvc.yaml`.
//!
//! The context is a YAML mapping built from `params.yaml` (always loaded when
//! present), the `vars:` entries of `pipeline.yaml` (inline mappings or file
//! names), and for generated stages `item` / `key`. A reference is a dotted
//! path (`fit.C`, `item.model`, `models.0`); `\${` escapes a literal `${`.
//! A string that is exactly one reference keeps the referenced value's type
//! (so `foreach: ${models}` yields a list); inside a longer string scalars are
//! rendered as YAML would print them and lists are joined with spaces.
//!
//! Every generated stage gets its own context (its `item`), so cloning one
//! must not copy `params.yaml`: the shared part (params and `vars:`) sits
//! behind an `Arc`, and only the few names set per stage are copied.

use std::sync::Arc;

use serde_yaml::{Mapping, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`${{{0}}}` is not defined (not in params.yaml, `vars`, or the stage's `item`)")]
    Undefined(String),
    #[error("`${{{0}}}` is a mapping and cannot be written into a string")]
    NotScalar(String),
    #[error("unclosed `${{` in `{0}`")]
    Unclosed(String),
}

/// The variables templates may refer to.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Names from merged mappings, shared by the clones of a context.
    shared: Arc<Mapping>,
    /// Names set one by one; they hide a shared name of the same key.
    own: Mapping,
    /// A file meant to fill it could not be read: an undefined name may be
    /// one of its names, and is not worth reporting on top of that error.
    incomplete: bool,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// Adds (or replaces) the top-level keys of `mapping`.
    pub fn merge(&mut self, mapping: &Mapping) {
        let shared = Arc::make_mut(&mut self.shared);
        for (k, v) in mapping {
            self.own.remove(k);
            shared.insert(k.clone(), v.clone());
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

    pub fn set(&mut self, key: &str, value: Value) {
        self.own.insert(Value::String(key.to_string()), value);
    }

    /// Looks up a dotted path such as `fit.C` or `models.0`.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut current = self.own.get(first).or_else(|| self.shared.get(first))?;
        for part in parts {
            current = step(current, part)?;
        }
        Some(current)
    }

    /// The names referenced by `${…}` in `text`, in order.
    pub fn references(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find("${") {
            let escaped = pos > 0 && rest.as_bytes()[pos - 1] == b'\\';
            let after = &rest[pos + 2..];
            let Some(end) = after.find('}') else { break };
            if !escaped {
                names.push(after[..end].trim().to_string());
            }
            rest = &after[end + 1..];
        }
        names
    }

    /// Expands every `${…}` in `text`.
    pub fn render(&self, text: &str) -> Result<String, TemplateError> {
        render_with(text, |name| self.lookup(name).cloned())
    }

    /// Expands a YAML value: a string that is exactly `${name}` becomes the
    /// referenced value; other strings are rendered; lists and mappings are
    /// expanded element by element.
    pub fn render_value(&self, value: &Value) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => match whole_reference(s) {
                Some(name) => self
                    .lookup(name)
                    .cloned()
                    .ok_or_else(|| TemplateError::Undefined(name.to_string()))?,
                None => Value::String(self.render(s)?),
            },
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|v| self.render_value(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (k, v) in map {
                    let key = match k {
                        Value::String(s) => Value::String(self.render(s)?),
                        other => other.clone(),
                    };
                    out.insert(key, self.render_value(v)?);
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        })
    }
}

/// Expands every `${…}` in `text`, looking names up with `lookup`.
pub fn render_with(
    text: &str,
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
        let name = after[..end].trim();
        let value = lookup(name).ok_or_else(|| TemplateError::Undefined(name.to_string()))?;
        out.push_str(&scalar_text(name, &value)?);
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
        _ => None,
    }
}

fn whole_reference(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("${")?.strip_suffix('}')?;
    (!inner.contains("${") && !inner.contains('}')).then(|| inner.trim())
}

/// A scalar as YAML would print it: `1`, `0.5`, `true`, `text`.
pub fn scalar_plain(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

fn scalar_text(name: &str, value: &Value) -> Result<String, TemplateError> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|v| scalar_text(name, v))
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join(" ")),
        Value::Tagged(t) => scalar_text(name, &t.value),
        other => scalar_plain(other).ok_or_else(|| TemplateError::NotScalar(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(yaml: &str) -> Context {
        let mut c = Context::new();
        c.merge(
            serde_yaml::from_str::<Value>(yaml)
                .unwrap()
                .as_mapping()
                .unwrap(),
        );
        c
    }

    #[test]
    fn renders_dotted_references_and_escapes() {
        let c = ctx("fit: {C: 0.5, max_iter: 100}\nname: demo\nlist: [a, b]");
        assert_eq!(
            c.render("train --c ${fit.C} --n ${ fit.max_iter } ${name}")
                .unwrap(),
            "train --c 0.5 --n 100 demo"
        );
        assert_eq!(
            c.render("echo \\${HOME} ${list}").unwrap(),
            "echo ${HOME} a b"
        );
        assert_eq!(c.render("${list.1}").unwrap(), "b");
    }

    #[test]
    fn reports_undefined_unclosed_and_mapping_references() {
        let c = ctx("fit: {C: 1}");
        assert_eq!(
            c.render("x ${fit.D}"),
            Err(TemplateError::Undefined("fit.D".into()))
        );
        assert!(matches!(
            c.render("x ${fit.C"),
            Err(TemplateError::Unclosed(_))
        ));
        assert_eq!(
            c.render("${fit}"),
            Err(TemplateError::NotScalar("fit".into()))
        );
    }

    #[test]
    fn lists_references_but_not_escaped_ones() {
        assert_eq!(Context::references("a ${x.y} \\${no} ${ z }"), ["x.y", "z"]);
    }

    #[test]
    fn later_names_replace_earlier_ones_whether_merged_or_set() {
        let mut c = ctx("a: 1\nb: 1");
        c.set("a", Value::from(2));
        assert_eq!(c.render("${a} ${b}").unwrap(), "2 1");
        let copy = c.clone();
        c.merge(
            serde_yaml::from_str::<Value>("a: 3")
                .unwrap()
                .as_mapping()
                .unwrap(),
        );
        assert_eq!(c.render("${a}").unwrap(), "3");
        assert_eq!(copy.render("${a}").unwrap(), "2");
    }

    #[test]
    fn a_whole_reference_keeps_its_type() {
        let c = ctx("models: [cnn, xgb]");
        let v = c.render_value(&Value::String("${models}".into())).unwrap();
        assert_eq!(v, serde_yaml::from_str::<Value>("[cnn, xgb]").unwrap());
    }
}
