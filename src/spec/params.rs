//! Params files (`params.yaml` and others named in a stage's `params:`).
//!
//! A stage depends on keys of a params file, not on the whole file, so that
//! editing an unrelated param does not rerun it. [`ParamsFiles`] loads each
//! file once per command and answers dotted-key look-ups; values are turned
//! into JSON values (sorted maps) so that they compare and hash canonically.
//! A file that cannot be read or parsed is remembered as such too, so that
//! a broken file is parsed once, not once per reference to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use yaml_serde::Value;

use super::diagnostic::Diagnostic;
use crate::paths::RelPath;

/// The default params file, like DVC's.
pub const DEFAULT_PARAMS_FILE: &str = "params.yaml";

/// Param values of one stage: file → (key → value). An empty key stands for
/// the whole file.
pub type ParamValues = BTreeMap<String, BTreeMap<String, Json>>;

/// Params files loaded so far, by project path: the parsed file, `None` if
/// it does not exist, or why it could not be read.
#[derive(Debug, Default)]
pub struct ParamsFiles {
    root: PathBuf,
    loaded: BTreeMap<RelPath, Result<Option<Value>, Diagnostic>>,
}

impl ParamsFiles {
    pub fn new(root: &Path) -> ParamsFiles {
        ParamsFiles {
            root: root.to_path_buf(),
            loaded: BTreeMap::new(),
        }
    }

    /// The parsed file, `None` if it does not exist.
    pub fn get(&mut self, file: &RelPath) -> Result<Option<&Value>, Diagnostic> {
        if !self.loaded.contains_key(file) {
            let value = load(&file.to_path(&self.root), file);
            self.loaded.insert(file.clone(), value);
        }
        match &self.loaded[file] {
            Ok(value) => Ok(value.as_ref()),
            Err(d) => Err(d.clone()),
        }
    }

    /// The value of `key` (dotted) in `file`, or of the whole file when `key`
    /// is empty. `Ok(None)` when the file or key does not exist.
    pub fn value(&mut self, file: &RelPath, key: &str) -> Result<Option<Json>, Diagnostic> {
        let Some(doc) = self.get(file)? else {
            return Ok(None);
        };
        if key.is_empty() {
            return Ok(Some(to_json(doc)));
        }
        Ok(lookup(doc, key).map(to_json))
    }
}

fn load(path: &Path, file: &RelPath) -> Result<Option<Value>, Diagnostic> {
    // Reading a FIFO would wait for a writer forever.
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            let kind = if t.is_dir() {
                "a directory"
            } else if t.is_fifo() {
                "a named pipe (FIFO)"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            return Err(Diagnostic::new(
                file.as_str(),
                format!("cannot read: it is {kind}, not a file"),
            ));
        }
        _ => {}
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Diagnostic::new(file.as_str(), format!("cannot read: {e}"))),
    };
    if text.trim().is_empty() {
        return Ok(Some(Value::Mapping(Default::default())));
    }
    parse_text(file, &text).map(Some)
}

/// The format of a params file, by its extension: JSON for `.json`, TOML
/// for `.toml`, YAML for anything else (DVC's formats, less Python).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
    Python,
}

impl Format {
    pub fn of(path: &str) -> Format {
        match path
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
        {
            Some(ext) if ext == "json" => Format::Json,
            Some(ext) if ext == "toml" => Format::Toml,
            Some(ext) if ext == "py" => Format::Python,
            _ => Format::Yaml,
        }
    }
}

/// Parses the text of a params (or vars) file in the format its name says,
/// keeping the order of its keys.
pub fn parse_text(file: &RelPath, text: &str) -> Result<Value, Diagnostic> {
    match Format::of(file.as_str()) {
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| {
            Diagnostic::new(file.as_str(), format!("invalid JSON: {e}"))
                .at(Some(e.line()), Some(e.column()))
        }),
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    (Some(line), Some(column))
                })
                .unwrap_or((None, None));
            Diagnostic::new(
                file.as_str(),
                format!("invalid TOML: {}", e.message().trim_end()),
            )
            .at(line, column)
        }),
        Format::Python => Err(Diagnostic::new(
            file.as_str(),
            "Python params files are not supported (pipe runs without Python)",
        )
        .hint("write the values in params.yaml (or a JSON or TOML file)")),
        Format::Yaml => parse_yaml(file, text),
    }
}

fn parse_yaml(file: &RelPath, text: &str) -> Result<Value, Diagnostic> {
    super::yaml::from_str::<Value>(text).map_err(|e| {
        let loc = e.location();
        let d = Diagnostic::new(
            file.as_str(),
            format!("invalid YAML: {}", strip_location(&e.to_string())),
        )
        .at(
            loc.as_ref().map(|l| l.line()),
            loc.as_ref().map(|l| l.column()),
        );
        match super::yaml::hint(&e) {
            Some(h) => d.hint(h),
            None => d,
        }
    })
}

/// yaml_serde appends " at line L column C" to its messages; diagnostics
/// carry the location separately.
pub fn strip_location(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        // Skip " at line N column M".
        let tail = rest[i + " at line ".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        rest = match tail.strip_prefix(" column ") {
            Some(t) => t.trim_start_matches(|c: char| c.is_ascii_digit()),
            None => tail,
        };
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

/// Looks up a dotted key (`fit.C`, `layers.0.size`).
pub fn lookup<'v>(doc: &'v Value, key: &str) -> Option<&'v Value> {
    let mut current = doc;
    for part in key.split('.') {
        current = match current {
            Value::Mapping(m) => m.get(part)?,
            Value::Sequence(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Converts a YAML value to JSON; mapping keys become strings.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number)
                    .unwrap_or_else(|| Json::String(n.to_string()))
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => super::template::scalar_plain(other).unwrap_or_default(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Tagged(t) => to_json(&t.value),
    }
}

/// Flattens nested mappings into dotted leaf keys: `{fit: {C: 1}}` →
/// `fit.C = 1`. Lists are leaves.
pub fn flatten(prefix: &str, value: &Json, out: &mut BTreeMap<String, Json>) {
    flatten_checked(prefix, value, out);
}

/// [`flatten`], returning the dotted keys written twice (a file with both
/// `"a.b": 1` and `a: {b: 2}`), each once; the last value wins.
pub fn flatten_checked(
    prefix: &str,
    value: &Json,
    out: &mut BTreeMap<String, Json>,
) -> Vec<String> {
    let mut twice = Vec::new();
    flatten_into(prefix, value, out, &mut twice);
    twice.sort();
    twice.dedup();
    twice
}

fn flatten_into(
    prefix: &str,
    value: &Json,
    out: &mut BTreeMap<String, Json>,
    twice: &mut Vec<String>,
) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&key, v, out, twice);
            }
        }
        other => {
            if out.insert(prefix.to_string(), other.clone()).is_some() {
                twice.push(prefix.to_string());
            }
        }
    }
}

/// Renders a param value for messages: `1`, `0.5`, `"text"` → `text`, lists
/// and mappings as compact JSON.
pub fn display_value(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_dotted_keys_and_flattens() {
        let doc: Value =
            yaml_serde::from_str("fit: {C: 1.5, opts: {tol: 0.001}}\nlist: [1, 2]").unwrap();
        assert_eq!(
            to_json(lookup(&doc, "fit.C").unwrap()),
            serde_json::json!(1.5)
        );
        assert_eq!(
            to_json(lookup(&doc, "list.1").unwrap()),
            serde_json::json!(2)
        );
        assert!(lookup(&doc, "fit.D").is_none());
        let mut flat = BTreeMap::new();
        flatten("fit", &to_json(lookup(&doc, "fit").unwrap()), &mut flat);
        let keys: Vec<_> = flat.keys().cloned().collect();
        assert_eq!(keys, ["fit.C", "fit.opts.tol"]);
    }

    #[test]
    fn strips_every_location_from_serde_messages() {
        assert_eq!(
            strip_location("did not find expected ',' or ']' at line 5 column 1, while parsing a flow sequence at line 4 column 11"),
            "did not find expected ',' or ']', while parsing a flow sequence"
        );
        assert_eq!(strip_location("plain"), "plain");
    }

    #[test]
    fn a_missing_file_is_none_and_bad_yaml_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = ParamsFiles::new(dir.path());
        let f = RelPath::parse("params.yaml", None).unwrap();
        assert_eq!(files.value(&f, "a").unwrap(), None);
        std::fs::write(dir.path().join("bad.yaml"), "a: [1, 2\nb: 3\n").unwrap();
        let mut files = ParamsFiles::new(dir.path());
        let err = files
            .get(&RelPath::parse("bad.yaml", None).unwrap())
            .unwrap_err();
        assert!(err.line.is_some(), "{err}");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }
}
