//! `-S [FILE:]KEY=VALUE[,VALUE…]`: params changed for an experiment.
//!
//! A key is dotted (`fit.C`) and lives in `params.yaml` unless a file is
//! named (`train.yaml:lr=0.1`). A value is read as YAML (`1` an integer,
//! `0.1` a float, `adam` text, `[1, 2]` a list). Several values separated
//! by commas give one experiment each; several `-S` give every
//! combination. Only keys that already exist can be set: a misspelt key
//! would otherwise add a param that no stage reads, and the experiment
//! would silently equal its baseline.

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
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file.as_str() != DEFAULT_PARAMS_FILE {
            write!(f, "{}:", self.file)?;
        }
        write!(f, "{}={}", self.key, params::display_value(&self.value))
    }
}

/// One `-S` argument: a key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    pub file: RelPath,
    pub key: String,
    pub values: Vec<Json>,
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
    for text in texts {
        let text = text.trim();
        if text.is_empty() {
            return Err(refused(format!("-S `{arg}`: a value is empty"), FORM));
        }
        let value: serde_yaml::Value = serde_yaml::from_str(text)
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
        }
    }
    Ok(SetArg {
        file,
        key: key.to_string(),
        values: parsed,
    })
}

/// Every combination of the values of `sets`, in argument order (the last
/// argument varies fastest). No `-S` at all is one empty combination.
pub fn combinations(sets: &[SetArg]) -> Vec<Vec<Override>> {
    let mut out: Vec<Vec<Override>> = vec![Vec::new()];
    for set in sets {
        let mut next = Vec::new();
        for prefix in &out {
            for value in &set.values {
                let mut combo = prefix.clone();
                // A key given twice: the later one wins.
                combo.retain(|o: &Override| !(o.file == set.file && o.key == set.key));
                combo.push(Override {
                    file: set.file.clone(),
                    key: set.key.clone(),
                    value: value.clone(),
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
    doc: serde_yaml::Value,
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
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| Error::Refused {
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

/// Checks that every key exists in the params files under `root`.
pub fn check(root: &Path, overrides: &[Override]) -> Result<(), Error> {
    load_checked(root, overrides).map(|_| ())
}

/// Writes the overrides into the params files under `root` (each file
/// replaced whole, by rename). In a YAML file only the values change:
/// comments, order, anchors and quoting elsewhere stay as written (when a
/// value cannot be edited in place, a flow mapping say, the file is
/// written anew from its parsed form). A JSON file is written as JSON.
pub fn apply(root: &Path, overrides: &[Override]) -> Result<(), Error> {
    for ParamsFile {
        file,
        text: original,
        mut doc,
        overrides: mine,
    } in load_checked(root, overrides)?
    {
        for o in &mine {
            let slot = lookup_mut(&mut doc, &o.key).expect("checked when loaded");
            *slot = serde_yaml::to_value(&o.value).expect("JSON converts to YAML");
        }
        let text = if file.as_str().ends_with(".json") {
            let json = params::to_json(&doc);
            format!(
                "{}\n",
                serde_json::to_string_pretty(&json).expect("JSON serializes")
            )
        } else {
            edited_in_place(&original, &mine, &doc)
                .unwrap_or_else(|| serde_yaml::to_string(&doc).expect("a YAML value serializes"))
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
    want: &serde_yaml::Value,
) -> Option<String> {
    let mut text = text.to_string();
    for o in overrides {
        text = edit_value(&text, &o.key, &o.value)?;
    }
    let parsed: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
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
        let new_value = match serde_yaml::to_string(value).ok()?.trim_end() {
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

fn lookup_mut<'v>(doc: &'v mut serde_yaml::Value, key: &str) -> Option<&'v mut serde_yaml::Value> {
    let mut current = doc;
    for part in key.split('.') {
        current = match current {
            serde_yaml::Value::Mapping(m) => m.get_mut(part)?,
            serde_yaml::Value::Sequence(items) => items.get_mut(part.parse::<usize>().ok()?)?,
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
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.path().join("params.yaml")).unwrap())
                .unwrap();
        assert_eq!(doc["other"]["a"], serde_yaml::Value::from(2));
        assert_eq!(doc["fit"]["C"], serde_yaml::Value::from(0.25));
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
