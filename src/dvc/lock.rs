//! Reading `dvc.lock`: what DVC recorded for each stage it ran.
//!
//! The format of DVC 2 and 3 (`schema: '2.0'`, `dvc/schema.py`): per stage
//! its `cmd` (a string or a list), `deps` and `outs` as `{path, md5,
//! size, nfiles}` (DVC 3 adds `hash: md5`; a directory's md5 ends in
//! `.dir`), and `params` as file → dotted key → value. Paths are relative to
//! the stage's `wdir`, params files too. Fields pipe has no use for (`etag`,
//! `cloud`, `files`, `datasets`, …) are skipped. pipe reads this file and
//! never writes it.

use std::collections::BTreeMap;

use serde::Deserialize;
use yaml_serde::Value;

use super::md5::Md5Kind;

/// A parsed `dvc.lock`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DvcLock {
    pub stages: BTreeMap<String, DvcStage>,
}

/// One stage of `dvc.lock`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DvcStage {
    #[serde(default, deserialize_with = "one_or_many")]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub deps: Vec<DvcEntry>,
    #[serde(default)]
    pub outs: Vec<DvcEntry>,
    /// Params file (relative to the stage's wdir) → key → value.
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, Value>>,
}

/// A dep or an out: its path and what DVC hashed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DvcEntry {
    pub path: String,
    #[serde(default, deserialize_with = "scalar_text")]
    pub md5: Option<String>,
    /// `md5` (DVC 3); absent in DVC 2 locks, whose md5 is `md5-dos2unix`.
    #[serde(default)]
    pub hash: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub nfiles: Option<u64>,
}

impl DvcEntry {
    /// Which md5 the entry records.
    pub fn kind(&self) -> Md5Kind {
        match self.hash.as_deref() {
            Some("md5") => Md5Kind::Plain,
            _ => Md5Kind::Dos2Unix,
        }
    }

    /// True for a directory (`….dir`).
    pub fn is_dir(&self) -> bool {
        self.md5.as_deref().is_some_and(|m| m.ends_with(".dir"))
    }
}

/// A hash written unquoted may read as a number: take it as text.
fn scalar_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .as_ref()
        .and_then(crate::spec::template::scalar_plain)
        .filter(|s| s != "null"))
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Cmd {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Cmd>::deserialize(d)? {
        None => Vec::new(),
        Some(Cmd::One(s)) => vec![s],
        Some(Cmd::Many(v)) => v,
    })
}

/// Why a `dvc.lock` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DvcLockError {
    #[error("{file}{location}: not a valid dvc.lock: {message}")]
    Parse {
        file: String,
        location: String,
        message: String,
    },
    #[error("{file}: a dvc.lock of schema `{found}`; pipe reads DVC 2 and 3 locks (schema '2.0')")]
    Schema { file: String, found: String },
}

impl DvcLockError {
    pub fn hint(&self) -> &'static str {
        match self {
            DvcLockError::Parse { .. } => "restore it from git, or delete it: pipe then runs the stages it recorded",
            DvcLockError::Schema { .. } => "run `dvc repro` once with DVC 2 or later to rewrite it, or delete it: pipe then runs the stages",
        }
    }
}

impl DvcLock {
    /// Parses the text of `file` (named in errors).
    pub fn from_text(file: &str, text: &str) -> Result<DvcLock, DvcLockError> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            schema: Option<Value>,
            #[serde(default)]
            stages: BTreeMap<String, DvcStage>,
        }
        if text.trim().is_empty() {
            return Ok(DvcLock::default());
        }
        let parse_error = |e: yaml_serde::Error| DvcLockError::Parse {
            file: file.to_string(),
            location: e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default(),
            message: crate::spec::params::strip_location(&e.to_string()),
        };
        let value: Value = crate::spec::yaml::from_str(text).map_err(parse_error)?;
        let schema = value.get("schema").cloned();
        match schema
            .as_ref()
            .and_then(crate::spec::template::scalar_plain)
        {
            Some(s) if s == "2.0" || s == "2" => {}
            found => {
                return Err(DvcLockError::Schema {
                    file: file.to_string(),
                    found: found.unwrap_or_else(|| "1 (none written)".into()),
                })
            }
        }
        let raw: Raw = yaml_serde::from_value(value).map_err(parse_error)?;
        let _ = raw.schema;
        Ok(DvcLock { stages: raw.stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dvc_3_and_dvc_2_entries() {
        let text = "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prepare.py\n    deps:\n    - path: data.xml\n      hash: md5\n      md5: 22a1a2931c8370d3aeedd7183606fd7f\n      size: 14445097\n    params:\n      params.yaml:\n        prepare.seed: 20170428\n    outs:\n    - path: data/prepared\n      hash: md5\n      md5: 153aad06d376b6595932470e459ef42a.dir\n      size: 8437363\n      nfiles: 2\n  old:\n    cmd: [a, b]\n    outs:\n    - path: x\n      md5: 9123\n      cloud: {r: {etag: e}}\n";
        let lock = DvcLock::from_text("dvc.lock", text).unwrap();
        let prepare = &lock.stages["prepare"];
        assert_eq!(prepare.cmd, ["python prepare.py"]);
        assert_eq!(prepare.deps[0].kind(), Md5Kind::Plain);
        assert!(prepare.outs[0].is_dir());
        assert_eq!(prepare.outs[0].nfiles, Some(2));
        assert_eq!(
            prepare.params["params.yaml"]["prepare.seed"],
            Value::from(20170428)
        );
        let old = &lock.stages["old"];
        assert_eq!(old.cmd, ["a", "b"]);
        assert_eq!(old.outs[0].kind(), Md5Kind::Dos2Unix);
    }

    #[test]
    fn refuses_other_schemas_and_broken_files_naming_them() {
        let err = DvcLock::from_text("sub/dvc.lock", "train:\n  cmd: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sub/dvc.lock: a dvc.lock of schema `1 (none written)`; pipe reads DVC 2 and 3 locks (schema '2.0')"
        );
        let err = DvcLock::from_text("dvc.lock", "schema: '2.0'\nstages: [\n").unwrap_err();
        assert!(err.to_string().starts_with("dvc.lock:"), "{err}");
    }
}
