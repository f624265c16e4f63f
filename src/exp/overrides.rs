//! `-S [FILE:]KEY=VALUE[,VALUE…]`: params changed for an experiment.
//!
//! A key is dotted (`fit.C`) and lives in `params.yaml` unless a file is
//! named (`train.yaml:lr=0.1`). A value is read as YAML (`1` an integer,
//! `0.1` a float, `adam` text, `[1, 2]` a list). Several values separated
//! by commas give one experiment each; several `-S` give every
//! combination. Only keys that already exist can be set: a misspelt key
//! would otherwise add a param that no stage reads, and the experiment
//! would silently equal its baseline.
//!
//! A value takes the type the file has at that key ([`resolve`]): `1` where
//! the file has `1.0` is written `1.0` (so an unchanged value is unchanged,
//! and its stage is not rerun), `2` where it has text is the text `2`, and
//! a value that cannot have that type (`abc` where the file has a number)
//! is refused, naming the `-S` argument, unless it is quoted (`'"abc"'`:
//! text, as written). `null` can replace anything, and anything `null`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::Error;
use crate::paths::RelPath;
use crate::spec::diagnostic::did_you_mean;
use crate::spec::params::{self, DEFAULT_PARAMS_FILE};

/// One param set to one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub file: RelPath,
    pub key: String,
    pub value: Json,
    /// The value as it was typed (empty in queue entries of older
    /// versions, whose values are taken as they are).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file.as_str() != DEFAULT_PARAMS_FILE {
            write!(f, "{}:", self.file)?;
        }
        write!(f, "{}={}", self.key, params::display_value(&self.value))
    }
}

impl Override {
    /// `[FILE:]KEY=VALUE` with the value as it was typed.
    pub fn as_typed(&self) -> String {
        if self.text.is_empty() {
            return self.to_string();
        }
        let file = if self.file.as_str() == DEFAULT_PARAMS_FILE {
            String::new()
        } else {
            format!("{}:", self.file)
        };
        format!("{file}{}={}", self.key, self.text)
    }
}

/// One `-S` argument: a key and its values (each with its text).
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    pub file: RelPath,
    pub key: String,
    pub values: Vec<Json>,
    pub texts: Vec<String>,
}

fn refused(message: String, hint: &str) -> Error {
    Error::Refused {
        message,
        hint: Some(hint.to_string()),
    }
}

/// Parses `[FILE:]KEY=VALUE[,VALUE…]`.
pub fn parse_set(arg: &str) -> Result<SetArg, Error> {
    const FORM: &str = "write -S KEY=VALUE (e.g. -S fit.C=0.1), -S FILE:KEY=VALUE, or several values as -S fit.C=0.1,1,10";
    let Some((target, values)) = arg.split_once('=') else {
        return Err(refused(format!("-S `{arg}` has no `=`"), FORM));
    };
    let (file, key) = match target.split_once(':') {
        Some((file, key)) => (file, key),
        None => (DEFAULT_PARAMS_FILE, target),
    };
    let file = RelPath::parse(file, None)
        .map_err(|e| refused(format!("-S `{arg}`: bad params file: {e}"), FORM))?;
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(refused(format!("-S `{arg}`: the key is empty"), FORM));
    }
    let texts: Vec<&str> = if values.starts_with(['[', '{', '"', '\'']) {
        vec![values]
    } else {
        values.split(',').collect()
    };
    let mut parsed = Vec::new();
    let mut typed = Vec::new();
    for text in texts {
        let text = text.trim();
        if text.is_empty() {
            return Err(refused(format!("-S `{arg}`: a value is empty"), FORM));
        }
        let value: yaml_serde::Value = yaml_serde::from_str(text)
            .map_err(|e| refused(format!("-S `{arg}`: `{text}` is not a value: {e}"), FORM))?;
        let spelt_null = matches!(text, "null" | "Null" | "NULL" | "~");
        if value.is_null() && !spelt_null {
            // `#x` is a YAML comment, `&a` an anchor: nothing is left.
            return Err(refused(
                format!("-S `{arg}`: `{text}` reads as no value in YAML"),
                "quote it to mean the text: -S 'KEY=\"#x\"'",
            ));
        }
        let value = params::to_json(&value);
        if !parsed.contains(&value) {
            parsed.push(value);
            typed.push(text.to_string());
        }
    }
    Ok(SetArg {
        file,
        key: key.to_string(),
        values: parsed,
        texts: typed,
    })
}

/// Every combination of the values of `sets`, in argument order (the last
/// argument varies fastest). No `-S` at all is one empty combination.
pub fn combinations(sets: &[SetArg]) -> Vec<Vec<Override>> {
    let mut out: Vec<Vec<Override>> = vec![Vec::new()];
    for set in sets {
        let mut next = Vec::new();
        for prefix in &out {
            for (value, text) in set.values.iter().zip(&set.texts) {
                let mut combo = prefix.clone();
                // A key given twice: the later one wins.
                combo.retain(|o: &Override| !(o.file == set.file && o.key == set.key));
                combo.push(Override {
                    file: set.file.clone(),
                    key: set.key.clone(),
                    value: value.clone(),
                    text: text.clone(),
                });
                next.push(combo);
            }
        }
        out = next;
    }
    out
}

/// A params file that overrides name: its text and its parsed form.
struct ParamsFile<'o> {
    file: &'o RelPath,
    text: String,
    doc: yaml_serde::Value,
    overrides: Vec<&'o Override>,
}

/// Reads each file the overrides name, once, and checks that every key
/// exists in it.
fn load_checked<'o>(root: &Path, overrides: &'o [Override]) -> Result<Vec<ParamsFile<'o>>, Error> {
    let mut files: Vec<&RelPath> = overrides.iter().map(|o| &o.file).collect();
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file.to_path(root)).map_err(|e| Error::Refused {
            message: format!("cannot read params file {file}: {e}"),
            hint: Some(
                "-S sets params in files that exist; name another with -S FILE:KEY=VALUE".into(),
            ),
        })?;
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| Error::Refused {
            message: format!("{file} is not valid YAML: {e}"),
            hint: None,
        })?;
        let mine: Vec<&Override> = overrides.iter().filter(|o| &o.file == file).collect();
        for o in &mine {
            if params::lookup(&doc, &o.key).is_none() {
                let mut flat = std::collections::BTreeMap::new();
                params::flatten("", &params::to_json(&doc), &mut flat);
                let hint = match did_you_mean(&o.key, flat.keys().map(String::as_str)) {
                    Some(near) => format!("did you mean `{near}`? Only keys that exist can be set"),
                    None => format!("only keys that exist in {} can be set", o.file),
                };
                return Err(Error::Refused {
                    message: format!("{} has no param `{}`", o.file, o.key),
                    hint: Some(hint),
                });
            }
        }
        out.push(ParamsFile {
            file,
            text,
            doc,
            overrides: mine,
        });
    }
    Ok(out)
}

/// Checks that every key exists in the params files under `root`, and
/// gives each value the type the file has there (see the module doc);
/// returns the overrides with those values.
pub fn resolve(root: &Path, overrides: &[Override]) -> Result<Vec<Override>, Error> {
    let files = load_checked(root, overrides)?;
    let mut out = Vec::new();
    for o in overrides {
        let file = files
            .iter()
            .find(|f| f.file == &o.file)
            .expect("every file was loaded");
        let old = params::lookup(&file.doc, &o.key).expect("checked when loaded");
        let value = typed_like(&params::to_json(old), o)?;
        out.push(Override { value, ..o.clone() });
    }
    Ok(out)
}

/// What a value is, for messages.
fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "true or false",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// `o`'s value with the type of `old`, the file's value at its key.
fn typed_like(old: &Json, o: &Override) -> Result<Json, Error> {
    let new = &o.value;
    if o.text.is_empty() {
        return Ok(new.clone());
    }
    let quoted = o.text.starts_with(['"', '\'']);
    let refused = || {
        let example = match old {
            Json::Bool(_) => "true".to_string(),
            Json::Number(_) => "0.5".to_string(),
            Json::Array(_) => "'[1, 2]'".to_string(),
            Json::Object(_) => "'{a: 1}'".to_string(),
            _ => "…".to_string(),
        };
        let text = &o.text;
        Error::Refused {
            message: format!(
                "-S {}: `{text}` is {}, but {} has {} at `{}` ({})",
                o.as_typed(),
                kind(new),
                o.file,
                kind(old),
                o.key,
                params::display_value(old),
            ),
            hint: Some(match old {
                Json::Array(_) | Json::Object(_) => {
                    format!("give {} in its place, e.g. -S {}={example}", kind(old), o.key)
                }
                _ => format!(
                    "give {}, e.g. -S {}={example}; to put text in its place, quote it: -S '{}=\"{text}\"'",
                    kind(old),
                    o.key,
                    o.key
                ),
            }),
        }
    };
    Ok(match (old, new) {
        (_, Json::Null) | (Json::Null, _) => new.clone(),
        (_, Json::String(_)) if quoted => new.clone(),
        (Json::Number(was), Json::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if was.is_f64() && !n.is_f64() {
                // `1` where the file has `1.0`: the same value, a float.
                Json::from(x)
            } else if !was.is_f64() && n.is_f64() && x.fract() == 0.0 && x.abs() < 9.0e15 {
                Json::from(x as i64)
            } else {
                new.clone()
            }
        }
        (Json::String(_), Json::String(_)) => new.clone(),
        // `2` where the file has text: the text `2`, as typed.
        (Json::String(_), Json::Number(_) | Json::Bool(_)) => Json::String(o.text.clone()),
        (Json::Bool(_), Json::Bool(_))
        | (Json::Array(_), Json::Array(_))
        | (Json::Object(_), Json::Object(_)) => new.clone(),
        _ => return Err(refused()),
    })
}

/// Writes the overrides into the params files under `root` (each file
/// replaced whole, by rename). In a YAML file only the values change:
/// comments, order, anchors and quoting elsewhere stay as written (when a
/// value cannot be edited in place, a flow mapping say, the file is
/// written anew from its parsed form). A JSON file is written as JSON.
pub fn apply(root: &Path, overrides: &[Override]) -> Result<(), Error> {
    let overrides = &resolve(root, overrides)?;
    for ParamsFile {
        file,
        text: original,
        mut doc,
        overrides: mine,
    } in load_checked(root, overrides)?
    {
        for o in &mine {
            let slot = lookup_mut(&mut doc, &o.key).expect("checked when loaded");
            *slot = yaml_serde::to_value(&o.value).expect("JSON converts to YAML");
        }
        let text = if file.as_str().ends_with(".json") {
            let json = params::to_json(&doc);
            format!(
                "{}\n",
                serde_json::to_string_pretty(&json).expect("JSON serializes")
            )
        } else {
            edited_in_place(&original, &mine, &doc)
                .unwrap_or_else(|| yaml_serde::to_string(&doc).expect("a YAML value serializes"))
        };
        crate::atomic_write::write(&file.to_path(root), text.as_bytes(), false)
            .map_err(Error::io(format!("cannot write {file}")))?;
    }
    Ok(())
}

/// `text` with each override's value replaced on its own line, if that
/// gives exactly `want` when parsed; `None` otherwise.
fn edited_in_place(
    text: &str,
    overrides: &[&Override],
    want: &yaml_serde::Value,
) -> Option<String> {
    let mut text = text.to_string();
    for o in overrides {
        text = edit_value(&text, &o.key, &o.value)?;
    }
    let parsed: yaml_serde::Value = yaml_serde::from_str(&text).ok()?;
    (parsed == *want).then_some(text)
}

/// Replaces the scalar value of the dotted `key` of block-style YAML.
fn edit_value(text: &str, key: &str, value: &Json) -> Option<String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let parts: Vec<&str> = key.split('.').collect();
    let (mut start, mut parent_indent) = (0usize, None::<usize>);
    for (depth, part) in parts.iter().enumerate() {
        let mut block_indent = None;
        let mut found = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.trim().is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if *block_indent.get_or_insert(indent) != indent {
                continue;
            }
            if let Some(rest) = after_key(trimmed, part) {
                found = Some((i, indent, line.len() - rest.len()));
                break;
            }
        }
        let (i, indent, value_at) = found?;
        if depth + 1 < parts.len() {
            start = i + 1;
            parent_indent = Some(indent);
            continue;
        }
        let line = &lines[i];
        let rest = &line[value_at..];
        let old = rest.trim_end_matches(['\n', '\r']);
        // Keep a trailing comment; give up on quotes that might hold `#`.
        let (old_value, comment) = match old.find(" #") {
            Some(at) if !old[..at].contains(['"', '\'']) => (&old[..at], &old[at..]),
            _ if old.contains('#') => return None,
            _ => (old, ""),
        };
        if old_value.trim().is_empty()
            || old_value
                .trim_start()
                .starts_with(['{', '[', '|', '>', '&', '*'])
        {
            return None;
        }
        let new_value = match yaml_serde::to_string(value).ok()?.trim_end() {
            // Words YAML 1.1 readers (PyYAML) take for booleans stay text.
            word if value.is_string() && is_yaml11_bool(word) => format!("'{word}'"),
            single if !single.contains('\n') => single.to_string(),
            _ => serde_json::to_string(value).ok()?,
        };
        let ending = &rest[old.len()..];
        let pad = old_value.len() - old_value.trim_start().len();
        let kept_width = old_value.trim_end().len();
        let spaces_after = old_value.len() - kept_width;
        lines[i] = format!(
            "{}{}{}{}{}{}",
            &line[..value_at],
            &old_value[..pad],
            new_value,
            " ".repeat(spaces_after),
            comment,
            ending
        );
        return Some(lines.concat());
    }
    None
}

fn is_yaml11_bool(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off"
    )
}

/// The text after `part:` when `line` (indentation removed) is that key.
fn after_key<'l>(line: &'l str, part: &str) -> Option<&'l str> {
    for quoted in [part.to_string(), format!("\"{part}\""), format!("'{part}'")] {
        if let Some(rest) = line.strip_prefix(&quoted).and_then(|r| r.strip_prefix(':')) {
            if rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r']) {
                return Some(rest);
            }
        }
    }
    None
}

fn lookup_mut<'v>(doc: &'v mut yaml_serde::Value, key: &str) -> Option<&'v mut yaml_serde::Value> {
    let mut current = doc;
    for part in key.split('.') {
        current = match current {
            yaml_serde::Value::Mapping(m) => m.get_mut(part)?,
            yaml_serde::Value::Sequence(items) => items.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keys_files_and_several_values() {
        let s = parse_set("fit.C=0.1,1,10").unwrap();
        assert_eq!(s.file.as_str(), "params.yaml");
        assert_eq!(s.key, "fit.C");
        assert_eq!(s.values, [json!(0.1), json!(1), json!(10)]);
        let s = parse_set("train.yaml:opt=[1, 2]").unwrap();
        assert_eq!(s.file.as_str(), "train.yaml");
        assert_eq!(s.values, [json!([1, 2])]);
        assert_eq!(parse_set("a=adam").unwrap().values, [json!("adam")]);
        assert_eq!(parse_set("a=0.5,0.5").unwrap().values, [json!(0.5)]);
        assert_eq!(parse_set("a=~").unwrap().values, [Json::Null]);
        for bad in ["fit.C", "=1", "a..b=1", "a=", "a=1,,2", "a=#c", "a=&x"] {
            assert!(parse_set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn combinations_vary_the_last_fastest() {
        let sets = [parse_set("a=1,2").unwrap(), parse_set("b=x,y").unwrap()];
        let combos: Vec<String> = combinations(&sets)
            .iter()
            .map(|c| {
                c.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(combos, ["a=1 b=x", "a=1 b=y", "a=2 b=x", "a=2 b=y"]);
        assert_eq!(combinations(&[]), vec![Vec::<Override>::new()]);
    }

    #[test]
    fn values_take_the_files_type() {
        let set = |arg: &str| combinations(&[parse_set(arg).unwrap()]).remove(0).remove(0);
        let typed = |old: Json, arg: &str| typed_like(&old, &set(arg));
        assert_eq!(typed(json!(1.0), "k=1").unwrap(), json!(1.0));
        assert!(typed(json!(1.0), "k=1").unwrap().is_f64());
        assert_eq!(typed(json!(100), "k=100.0").unwrap(), json!(100));
        assert_eq!(typed(json!(100), "k=0.5").unwrap(), json!(0.5));
        assert_eq!(typed(json!("cnn"), "k=2").unwrap(), json!("2"));
        assert_eq!(typed(json!("cnn"), "k=1.50").unwrap(), json!("1.50"));
        assert_eq!(typed(json!("cnn"), "k=true").unwrap(), json!("true"));
        assert_eq!(typed(json!(1), "k=null").unwrap(), Json::Null);
        assert_eq!(typed(Json::Null, "k=abc").unwrap(), json!("abc"));
        assert_eq!(typed(json!(1), "k=\"abc\"").unwrap(), json!("abc"));
        assert_eq!(typed(json!([1, 1]), "k=[1, 2]").unwrap(), json!([1, 2]));
        for (old, arg) in [
            (json!(1.0), "k=abc"),
            (json!(true), "k=1"),
            (json!([1, 1]), "k=2"),
            (json!({"a": 1}), "k=[1]"),
            (json!("x"), "k=[1]"),
        ] {
            assert!(typed(old.clone(), arg).is_err(), "{old} {arg}");
        }
        // A value stored by an older version (no text) is taken as it is.
        let mut stored = set("k=abc");
        stored.text.clear();
        assert_eq!(typed_like(&json!(1), &stored).unwrap(), json!("abc"));
    }

    #[test]
    fn apply_sets_existing_keys_and_refuses_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("params.yaml"),
            "fit:\n  C: 1.0\n  max_iter: 100\n",
        )
        .unwrap();
        let o = combinations(&[parse_set("fit.C=0.5").unwrap()]).remove(0);
        apply(dir.path(), &o).unwrap();
        let text = std::fs::read_to_string(dir.path().join("params.yaml")).unwrap();
        assert_eq!(text, "fit:\n  C: 0.5\n  max_iter: 100\n");
        // Comments, order and other values stay as written.
        let commented = "# model\nfit:\n  max_iter: 100   # cap\n  C: 1.0    # strength\n  flag: 'yes'\nother: {a: 1}\n";
        std::fs::write(dir.path().join("params.yaml"), commented).unwrap();
        let o = combinations(&[
            parse_set("fit.C=0.25").unwrap(),
            parse_set("fit.flag=no").unwrap(),
        ])
        .remove(0);
        apply(dir.path(), &o).unwrap();
        let text = std::fs::read_to_string(dir.path().join("params.yaml")).unwrap();
        assert_eq!(text, "# model\nfit:\n  max_iter: 100   # cap\n  C: 0.25    # strength\n  flag: 'no'\nother: {a: 1}\n");
        // A value in a flow mapping: the file is written anew, correctly.
        let o = combinations(&[parse_set("other.a=2").unwrap()]).remove(0);
        apply(dir.path(), &o).unwrap();
        let doc: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(dir.path().join("params.yaml")).unwrap())
                .unwrap();
        assert_eq!(doc["other"]["a"], yaml_serde::Value::from(2));
        assert_eq!(doc["fit"]["C"], yaml_serde::Value::from(0.25));
        // JSON stays JSON.
        std::fs::write(dir.path().join("conf.json"), "{\"lr\": 0.1, \"n\": 3}").unwrap();
        let o = combinations(&[parse_set("conf.json:lr=0.5").unwrap()]).remove(0);
        apply(dir.path(), &o).unwrap();
        let json: Json =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("conf.json")).unwrap())
                .unwrap();
        assert_eq!(json, json!({"lr": 0.5, "n": 3}));
        let o = combinations(&[parse_set("fit.c=2").unwrap()]).remove(0);
        let e = apply(dir.path(), &o).unwrap_err();
        assert_eq!(e.to_string(), "params.yaml has no param `fit.c`");
        assert!(e.hint().unwrap().contains("fit.C"), "{:?}", e.hint());
    }
}
