//! Metrics and params at a revision, and the differences between two.
//!
//! `pipe metrics show/diff`, `pipe params diff` and `pipe exp show/diff`
//! all look at the same thing: some files of the project (the pipeline's
//! `metrics:` outputs, or the params files its stages read) at one
//! [`Side`]: the working tree, or a commit. Each file is flattened into
//! dotted keys (`results.accuracy`), so that two sides compare key by key.
//!
//! Where a file comes from at a commit: the commit's tree when git tracks
//! it; otherwise, when the commit's `pipeline.lock` records it as a cached
//! output, or as a file inside a cached directory output (a metrics file
//! in `eval/`, as DVC's example project has), the cache object (as DVC
//! reads its cached metrics). A file that
//! is absent, or that does not parse, is [`Loaded::Missing`] or
//! [`Loaded::Bad`]: its keys show as missing, and the reason is reported
//! once as a warning instead of failing the whole comparison.

pub mod diff;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::error::Error;
use crate::git::{Repo, Rev};
use crate::lock::LockFile;
use crate::paths::RelPath;
use crate::project::Project;
use crate::spec::params;

/// Dotted key → value.
pub type Flat = BTreeMap<String, Json>;

/// Where to read the files.
#[derive(Debug, Clone)]
pub enum Side {
    Workspace,
    Commit(Rev),
    /// Nothing: a repository without commits, for `HEAD`.
    Empty(String),
}

impl Side {
    /// The column heading for this side.
    pub fn label(&self) -> String {
        match self {
            Side::Workspace => "workspace".into(),
            Side::Commit(rev) => rev.label.clone(),
            Side::Empty(label) => label.clone(),
        }
    }
}

/// One file at one side.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    Missing,
    /// Present but not readable as JSON or YAML: why.
    Bad(String),
    Values(Flat),
    /// Read, but some dotted keys are written two ways (`"a.b": 1` and
    /// `a: {b: 2}`): those are left out of `values`, and reported.
    Ambiguous {
        values: Flat,
        keys: Vec<String>,
    },
}

impl Loaded {
    pub fn values(&self) -> Option<&Flat> {
        match self {
            Loaded::Values(v) | Loaded::Ambiguous { values: v, .. } => Some(v),
            _ => None,
        }
    }

    fn values_mut(&mut self) -> Option<&mut Flat> {
        match self {
            Loaded::Values(v) | Loaded::Ambiguous { values: v, .. } => Some(v),
            _ => None,
        }
    }
}

/// Project-relative file → what it holds at one side.
pub type Files = BTreeMap<RelPath, Loaded>;

/// The pipeline's metric files: the `metrics:` outputs of every stage
/// (those inside a directory output too) and the top-level `metrics:`.
pub fn metric_files(project: &Project) -> Vec<RelPath> {
    project.pipeline.metric_files()
}

/// The params files the pipeline's stages read, with the keys they depend
/// on (an empty key: the whole file), and the top-level `params:` files
/// (whole).
pub fn params_files(project: &Project) -> BTreeMap<RelPath, BTreeSet<String>> {
    let mut out: BTreeMap<RelPath, BTreeSet<String>> = BTreeMap::new();
    for p in project.pipeline.stages.iter().flat_map(|s| s.params.iter()) {
        out.entry(p.file.clone()).or_default().insert(p.key.clone());
    }
    for file in &project.pipeline.params {
        out.entry(file.clone()).or_default().insert(String::new());
    }
    out
}

/// Reads project files at one side.
pub struct Reader<'a> {
    project: &'a Project,
    repo: Option<&'a Repo>,
    side: Side,
    /// The side's `pipeline.lock`, read on first need.
    lock: Option<Option<LockFile>>,
}

impl<'a> Reader<'a> {
    pub fn new(project: &'a Project, repo: Option<&'a Repo>, side: Side) -> Reader<'a> {
        Reader {
            project,
            repo,
            side,
            lock: None,
        }
    }

    /// The bytes of `path` at this side, `None` when absent.
    pub fn read(&mut self, path: &RelPath) -> Result<Option<Vec<u8>>, Error> {
        match &self.side {
            Side::Empty(_) => Ok(None),
            Side::Workspace => match std::fs::read(path.to_path(&self.project.root)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(Error::Io {
                    message: format!("cannot read {path}"),
                    source,
                }),
            },
            Side::Commit(rev) => {
                let repo = self.repo.expect("a commit side has a repository");
                if let Some(bytes) = repo.read(rev.oid, path)? {
                    return Ok(Some(bytes));
                }
                self.cached_output(path)
            }
        }
    }

    /// `path` from the cache, when the side's lock records it.
    fn cached_output(&mut self, path: &RelPath) -> Result<Option<Vec<u8>>, Error> {
        if self.lock.is_none() {
            let lock = match self.read_lock_text()? {
                Some(text) => LockFile::from_text(&text).ok(),
                None => None,
            };
            self.lock = Some(lock);
        }
        let Some(Some(lock)) = &self.lock else {
            return Ok(None);
        };
        let outs = || lock.stages.values().flat_map(|s| s.outs.iter());
        let cache = &self.project.cache;
        if let Some(record) = outs().find(|r| &r.path == path && !r.is_dir()) {
            // Verified: a damaged copy is set aside and shows as missing.
            return Ok(cache.read_object(&record.blake3, path).ok().flatten());
        }
        // A file inside a directory output: through the directory's
        // manifest (verified too).
        let Some(dir) = outs().find(|r| r.is_dir() && path.is_within(&r.path) && *path != r.path)
        else {
            return Ok(None);
        };
        let inside = &path.as_str()[dir.path.as_str().len() + 1..];
        let Ok(manifest) = cache.manifest(&dir.blake3) else {
            return Ok(None);
        };
        let Some(entry) = manifest
            .entries
            .iter()
            .find(|e| e.path == inside && e.link.is_none())
        else {
            return Ok(None);
        };
        Ok(cache.read_object(&entry.hash, path).ok().flatten())
    }

    fn read_lock_text(&self) -> Result<Option<String>, Error> {
        let Side::Commit(rev) = &self.side else {
            return Ok(None);
        };
        let repo = self.repo.expect("a commit side has a repository");
        let lock = RelPath::from_normalized(crate::lock::LOCK_FILE);
        Ok(repo
            .read(rev.oid, &lock)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// `path` read and flattened.
    pub fn load(&mut self, path: &RelPath) -> Result<Loaded, Error> {
        Ok(match self.read(path)? {
            None => Loaded::Missing,
            Some(bytes) => match parse(path, &bytes) {
                Ok((values, keys)) if keys.is_empty() => Loaded::Values(values),
                Ok((values, keys)) => Loaded::Ambiguous { values, keys },
                Err(why) => Loaded::Bad(why),
            },
        })
    }

    /// The pipeline's metric files at this side.
    pub fn metrics(&mut self) -> Result<Files, Error> {
        let mut out = Files::new();
        for path in metric_files(self.project) {
            let loaded = self.load(&path)?;
            out.insert(path, loaded);
        }
        Ok(out)
    }

    /// The params files at this side; with `deps_only`, only the keys that
    /// stages depend on.
    pub fn params(&mut self, deps_only: bool) -> Result<Files, Error> {
        let mut out = Files::new();
        for (path, keys) in params_files(self.project) {
            let mut loaded = self.load(&path)?;
            if let (true, Some(values)) = (deps_only, loaded.values_mut()) {
                if !keys.contains("") {
                    values.retain(|k, _| {
                        keys.iter()
                            .any(|dep| k == dep || k.starts_with(&format!("{dep}.")))
                    });
                }
            }
            out.insert(path, loaded);
        }
        Ok(out)
    }
}

/// A metrics or params file flattened: JSON for `.json`, YAML for `.yaml`
/// and `.yml`, TOML for `.toml`, and for anything else JSON, then YAML. Nested mappings
/// become dotted keys; lists stay values. A dotted key that two spellings
/// give (`"a.b": 1` and `a: {b: 2}`) is left out, and returned beside the
/// values: neither value could be shown under its name.
pub fn parse(path: &RelPath, bytes: &[u8]) -> Result<(Flat, Vec<String>), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let ext = path.as_str().rsplit('.').next().unwrap_or("");
    let json =
        || serde_json::from_str::<Json>(text).map_err(|e| format!("it is not valid JSON ({e})"));
    let yaml = || {
        crate::spec::yaml::from_str::<yaml_serde::Value>(text)
            .map(|v| params::to_json(&v))
            .map_err(|e| format!("it is not valid YAML ({e})"))
    };
    let value = match ext {
        "json" => json()?,
        "yaml" | "yml" => yaml()?,
        "toml" => toml::from_str::<yaml_serde::Value>(text)
            .map(|v| params::to_json(&v))
            .map_err(|e| format!("it is not valid TOML ({})", e.message().trim_end()))?,
        _ => json().or_else(|_| yaml())?,
    };
    if !value.is_object() {
        return Err("it does not hold a mapping of names to values".into());
    }
    let mut flat = Flat::new();
    let twice = params::flatten_checked("", &value, &mut flat);
    for key in &twice {
        flat.remove(key);
    }
    Ok((flat, twice))
}

/// One warning per file that is present but unreadable, for stderr.
pub fn warnings(side: &Side, files: &Files) -> Vec<String> {
    files
        .iter()
        .filter_map(|(path, loaded)| match loaded {
            Loaded::Bad(why) => Some(format!(
                "{path} at {}: {why}; its values show as missing",
                side.label()
            )),
            Loaded::Ambiguous { keys, .. } => Some(format!(
                "{path} at {}: {} written twice, once with a dot in a name and once as nested names, so {} left out; rename one of them",
                side.label(),
                keys.iter().map(|k| format!("`{k}` is")).collect::<Vec<_>>().join(", "),
                if keys.len() == 1 { "it is" } else { "they are" },
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str, text: &str) -> Result<(Flat, Vec<String>), String> {
        parse(&RelPath::parse(name, None).unwrap(), text.as_bytes())
    }

    #[test]
    fn nested_keys_are_dotted_and_lists_are_values() {
        let (flat, twice) = parsed(
            "m.json",
            r#"{"acc": 0.9, "per": {"pos": 1, "neg": [1, 2]}}"#,
        )
        .unwrap();
        assert!(twice.is_empty());
        let keys: Vec<&str> = flat.keys().map(String::as_str).collect();
        assert_eq!(keys, ["acc", "per.neg", "per.pos"]);
        assert_eq!(flat["per.neg"], serde_json::json!([1, 2]));
        let (flat, _) = parsed("m.yaml", "a:\n  b: 2\nc: x\n").unwrap();
        assert_eq!(flat["a.b"], serde_json::json!(2));
    }

    #[test]
    fn a_key_spelt_both_ways_is_left_out_and_named() {
        let (flat, twice) = parsed("m.json", r#"{"a.b": 1, "a": {"b": 2}, "c": 3}"#).unwrap();
        assert_eq!(twice, ["a.b"]);
        assert_eq!(flat.keys().collect::<Vec<_>>(), ["c"]);
        let (_, twice) = parsed("p.yaml", "x:\n  y.z: 1\n  y:\n    z: 2\n").unwrap();
        assert_eq!(twice, ["x.y.z"]);
        assert!(parsed("m.json", "[1, 2]").is_err());

        let mut files = Files::new();
        let path = RelPath::parse("m.json", None).unwrap();
        files.insert(
            path,
            Loaded::Ambiguous {
                values: flat,
                keys: twice,
            },
        );
        assert_eq!(
            warnings(&Side::Workspace, &files),
            ["m.json at workspace: `x.y.z` is written twice, once with a dot in a name and once as nested names, so it is left out; rename one of them"]
        );
    }
}
