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
        parsed.push(params::to_json(&value));
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

/// Checks that every key exists in the params files under `root`.
pub fn check(root: &Path, overrides: &[Override]) -> Result<(), Error> {
    for o in overrides {
        let doc = read(root, &o.file)?;
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
    Ok(())
}

fn read(root: &Path, file: &RelPath) -> Result<serde_yaml::Value, Error> {
    let path = file.to_path(root);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Refused {
        message: format!("cannot read params file {file}: {e}"),
        hint: Some(
            "-S sets params in files that exist; name another with -S FILE:KEY=VALUE".into(),
        ),
    })?;
    serde_yaml::from_str(&text).map_err(|e| Error::Refused {
        message: format!("{file} is not valid YAML: {e}"),
        hint: None,
    })
}

/// Writes the overrides into the params files under `root` (each file
/// replaced whole, by rename). Comments in a rewritten file are not kept.
pub fn apply(root: &Path, overrides: &[Override]) -> Result<(), Error> {
    check(root, overrides)?;
    let mut files: Vec<&RelPath> = overrides.iter().map(|o| &o.file).collect();
    files.sort();
    files.dedup();
    for file in files {
        let mut doc = read(root, file)?;
        for o in overrides.iter().filter(|o| &o.file == file) {
            let slot = lookup_mut(&mut doc, &o.key).expect("checked above");
            *slot = serde_yaml::to_value(&o.value).expect("JSON converts to YAML");
        }
        let text = serde_yaml::to_string(&doc).expect("a YAML value serializes");
        let path = file.to_path(root);
        let dir = path.parent().expect("a params file has a parent");
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| Error::Io {
            message: format!("cannot write {file}"),
            source,
        })?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|source| Error::Io {
                message: format!("cannot write {file}"),
                source,
            })?;
        let _ = std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        );
        tmp.persist(&path).map_err(|e| Error::Io {
            message: format!("cannot write {file}"),
            source: e.error,
        })?;
    }
    Ok(())
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
        for bad in ["fit.C", "=1", "a..b=1", "a=", "a=1,,2"] {
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
        let o = combinations(&[parse_set("fit.c=2").unwrap()]).remove(0);
        let e = apply(dir.path(), &o).unwrap_err();
        assert_eq!(e.to_string(), "params.yaml has no param `fit.c`");
        assert!(e.hint().unwrap().contains("fit.C"), "{:?}", e.hint());
    }
}
