//! The `.dvc` file: DVC's own format, read and written.
//!
//! ```yaml
//! outs:
//! - md5: 53d025127ae99ab79e8502aae2d9bea6   # DVC's content hash (`….dir` for a directory)
//!   size: 3893
//!   hash: md5                              # DVC 3; absent in DVC 2 files (md5-dos2unix)
//!   path: data.csv                         # relative to the .dvc file's directory
//! meta:
//!   pipe:
//!     data.csv:
//!       md5: 53d025127ae99ab79e8502aae2d9bea6
//!       blake3: 7d8c…                      # pipe's cache key for that content
//! ```
//!
//! pipe writes the file exactly as `dvc add` does, so DVC reads it (and
//! pipe reads DVC's), and keeps its own BLAKE3 under `meta: pipe:`. That
//! is the one place DVC leaves to tools: it refuses unknown keys in an
//! `outs` entry ("extra keys not allowed") and a `hash:` it does not know,
//! but `meta` may hold anything, and `dvc add` keeps it when it rewrites
//! the file. As `dvc add` does not update it, each BLAKE3 is recorded with
//! the md5 it was computed for, and is used only while the entry still has
//! that md5; otherwise pipe checks the md5 itself (see [`super::md5`]).
//!
//! An import (`pipe import-url`, `dvc import-url`) also has `frozen: true`
//! and `deps:` with the source's URL and version: `md5` and `size` of a
//! local file, or the `etag`, `version_id` and `size` of an object (an
//! HTTP server's `Last-Modified` goes in `checksum` when it sends no
//! ETag). Fields pipe does not use (`desc`, `remote`, `push`, …) are kept
//! as they are when pipe rewrites the file; comments are not.

use yaml_serde::{Mapping, Value};

use super::md5::{is_md5, Md5Kind, Md5Stream};
use crate::hash::Digest;
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::remote::source::ObjectVersion;

/// What `.dvc` files end with.
pub const DVC_SUFFIX: &str = ".dvc";

/// A `.dvc` file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct DvcFileError {
    pub file: RelPath,
    pub message: String,
}

/// One tracked path of a `.dvc` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedOut {
    /// The project path of the data.
    pub path: RelPath,
    /// The path as the file writes it (relative to its directory).
    pub written: String,
    /// DVC's hash of the content (`….dir` for a directory), if recorded.
    pub md5: Option<String>,
    pub kind: Md5Kind,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    /// pipe's BLAKE3 of the content, when `meta: pipe:` records it for
    /// this md5.
    pub blake3: Option<Digest>,
    /// `cache: false` entries are tracked by hash only.
    pub cache: bool,
}

impl TrackedOut {
    pub fn is_dir(&self) -> bool {
        self.md5.as_deref().is_some_and(|m| m.ends_with(".dir")) || self.nfiles.is_some()
    }

    /// The record of the content, as the cache and remotes know it, when
    /// its BLAKE3 is known.
    pub fn record_with(&self, blake3: Digest) -> PathRecord {
        PathRecord {
            path: self.path.clone(),
            blake3,
            size: self.size.unwrap_or(0),
            nfiles: if self.is_dir() {
                Some(self.nfiles.unwrap_or(0))
            } else {
                None
            },
            cache: true,
            persist: false,
        }
    }
}

/// The source of an import: its URL as written and its recorded version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDep {
    pub url: String,
    pub version: ObjectVersion,
}

/// A parsed `.dvc` file; see the module docs.
#[derive(Debug, Clone)]
pub struct DvcFile {
    /// The project path of the `.dvc` file itself.
    pub file: RelPath,
    pub outs: Vec<TrackedOut>,
    pub deps: Vec<SourceDep>,
    pub frozen: bool,
    doc: Mapping,
}

fn key(name: &str) -> Value {
    Value::String(name.to_string())
}

impl DvcFile {
    /// An empty `.dvc` file at `file` (written by [`DvcFile::to_text`]).
    pub fn new(file: RelPath) -> DvcFile {
        DvcFile {
            file,
            outs: Vec::new(),
            deps: Vec::new(),
            frozen: false,
            doc: Mapping::new(),
        }
    }

    /// The directory paths in the file are relative to.
    fn base(file: &RelPath, doc: &Mapping) -> Result<RelPath, String> {
        let dir = file.parent().unwrap_or_default();
        match doc.get(key("wdir")).and_then(Value::as_str) {
            Some(wdir) => RelPath::parse(wdir, Some(&dir)).map_err(|e| format!("wdir: {e}")),
            None => Ok(dir),
        }
    }

    /// Parses the text of the `.dvc` file at `file`.
    pub fn parse(file: &RelPath, text: &str) -> Result<DvcFile, DvcFileError> {
        let err = |message: String| DvcFileError {
            file: file.clone(),
            message,
        };
        let doc: Mapping = if text.trim().is_empty() {
            Mapping::new()
        } else {
            crate::spec::yaml::from_str(text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("{}:{}: ", l.line(), l.column()))
                    .unwrap_or_default();
                err(format!(
                    "{at}not a valid .dvc file: {}",
                    crate::spec::params::strip_location(&e.to_string())
                ))
            })?
        };
        let base = Self::base(file, &doc).map_err(err)?;
        let pipe_meta = doc
            .get(key("meta"))
            .and_then(|m| m.get("pipe"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let mut outs = Vec::new();
        let entries = match doc.get(key("outs")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(s)) => s.clone(),
            Some(_) => return Err(err("`outs` must be a list".into())),
        };
        for (i, entry) in entries.iter().enumerate() {
            let Some(entry) = entry.as_mapping() else {
                return Err(err(format!("outs[{i}] must be a mapping with a `path`")));
            };
            let Some(written) = entry.get(key("path")).and_then(Value::as_str) else {
                return Err(err(format!("outs[{i}] has no `path`")));
            };
            let path =
                RelPath::parse(written, Some(&base)).map_err(|e| err(format!("outs[{i}]: {e}")))?;
            if path.is_root() {
                return Err(err(format!("outs[{i}]: `{written}` is the project root")));
            }
            let md5 = match entry.get(key("md5")) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) if is_md5(&s.to_ascii_lowercase()) => {
                    Some(s.to_ascii_lowercase())
                }
                Some(other) => {
                    return Err(err(format!(
                        "outs[{i}]: `md5` is not an md5 hash: {}",
                        yaml_serde::to_string(other).unwrap_or_default().trim()
                    )))
                }
            };
            let kind = match entry.get(key("hash")).and_then(Value::as_str) {
                None => Md5Kind::Dos2Unix,
                Some("md5") => Md5Kind::Plain,
                Some(other) => {
                    return Err(err(format!(
                        "outs[{i}]: `hash: {other}` is not a hash pipe knows (md5)"
                    )))
                }
            };
            let number = |name: &str| entry.get(key(name)).and_then(Value::as_u64);
            let blake3 = pipe_meta
                .get(key(written))
                .filter(|m| m.get("md5").and_then(Value::as_str) == md5.as_deref() && md5.is_some())
                .and_then(|m| m.get("blake3"))
                .and_then(Value::as_str)
                .and_then(Digest::from_hex);
            outs.push(TrackedOut {
                path,
                written: written.to_string(),
                md5,
                kind,
                size: number("size"),
                nfiles: number("nfiles"),
                blake3,
                cache: entry.get(key("cache")).and_then(Value::as_bool) != Some(false),
            });
        }
        let mut deps = Vec::new();
        if let Some(Value::Sequence(entries)) = doc.get(key("deps")) {
            for (i, entry) in entries.iter().enumerate() {
                let Some(url) = entry.get("path").and_then(Value::as_str) else {
                    return Err(err(format!("deps[{i}] has no `path`")));
                };
                let text = |name: &str| {
                    entry.get(name).and_then(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                };
                deps.push(SourceDep {
                    url: url.to_string(),
                    version: ObjectVersion {
                        md5: text("md5"),
                        etag: text("etag"),
                        last_modified: text("checksum"),
                        version_id: text("version_id"),
                        size: entry.get("size").and_then(Value::as_u64),
                    },
                });
            }
        }
        Ok(DvcFile {
            file: file.clone(),
            outs,
            deps,
            frozen: doc.get(key("frozen")).and_then(Value::as_bool) == Some(true),
            doc,
        })
    }

    /// The path `path` is written as in this file (relative to its
    /// directory).
    fn written_for(&self, path: &RelPath) -> String {
        let base = Self::base(&self.file, &self.doc).unwrap_or_default();
        if base.is_root() {
            return path.as_str().to_string();
        }
        match path.as_str().strip_prefix(&format!("{}/", base.as_str())) {
            Some(rest) => rest.to_string(),
            None => {
                // Outside the file's directory: climb with `..`.
                let ups = base.as_str().split('/').count();
                format!("{}{}", "../".repeat(ups), path.as_str())
            }
        }
    }

    /// Records `path`'s content: DVC's md5 (of `kind` Plain, as DVC 3
    /// writes), size, file count for a directory, and pipe's BLAKE3.
    /// Replaces the entry of that path, keeping its other fields.
    pub fn set_out(
        &mut self,
        path: &RelPath,
        md5: &str,
        blake3: Digest,
        size: u64,
        nfiles: Option<u64>,
    ) {
        let written = self
            .outs
            .iter()
            .find(|o| &o.path == path)
            .map(|o| o.written.clone())
            .unwrap_or_else(|| self.written_for(path));
        let out = TrackedOut {
            path: path.clone(),
            written,
            md5: Some(md5.to_string()),
            kind: Md5Kind::Plain,
            size: Some(size),
            nfiles,
            blake3: Some(blake3),
            cache: true,
        };
        match self.outs.iter_mut().find(|o| &o.path == path) {
            Some(o) => {
                out.clone_into(o);
                o.cache = true;
            }
            None => self.outs.push(out),
        }
    }

    /// Sets the source of an import (`frozen: true`, one dep).
    pub fn set_source(&mut self, url: &str, version: ObjectVersion) {
        self.frozen = true;
        self.deps = vec![SourceDep {
            url: url.to_string(),
            version,
        }];
    }

    /// The file's text: DVC's layout (`frozen`, `deps`, `outs`, `meta`,
    /// then what else it had).
    pub fn to_text(&self) -> String {
        let mut doc = Mapping::new();
        let old_outs: Vec<Mapping> = match self.doc.get(key("outs")) {
            Some(Value::Sequence(s)) => s.iter().filter_map(|v| v.as_mapping().cloned()).collect(),
            _ => Vec::new(),
        };
        if let Some(md5) = self.doc.get(key("md5")).filter(|_| self.deps.is_empty()) {
            doc.insert(key("md5"), md5.clone());
        }
        if self.frozen {
            doc.insert(key("frozen"), Value::Bool(true));
        }
        if !self.deps.is_empty() {
            let deps: Vec<Value> = self
                .deps
                .iter()
                .map(|d| {
                    let mut m = Mapping::new();
                    let v = &d.version;
                    for (name, value) in [
                        ("md5", &v.md5),
                        ("etag", &v.etag),
                        ("checksum", &v.last_modified),
                        ("version_id", &v.version_id),
                    ] {
                        if let Some(value) = value {
                            m.insert(key(name), Value::String(value.clone()));
                        }
                    }
                    if let Some(size) = v.size {
                        m.insert(key("size"), Value::Number(size.into()));
                    }
                    // DVC 3 marks every entry it writes so.
                    m.insert(key("hash"), key("md5"));
                    m.insert(key("path"), Value::String(d.url.clone()));
                    Value::Mapping(m)
                })
                .collect();
            doc.insert(key("deps"), Value::Sequence(deps));
        }
        let mut pipe_meta = Mapping::new();
        let outs: Vec<Value> = self
            .outs
            .iter()
            .map(|o| {
                let old = old_outs
                    .iter()
                    .find(|m| m.get(key("path")).and_then(Value::as_str) == Some(&o.written));
                let mut m = Mapping::new();
                if let Some(md5) = &o.md5 {
                    m.insert(key("md5"), Value::String(md5.clone()));
                }
                if let Some(size) = o.size {
                    m.insert(key("size"), Value::Number(size.into()));
                }
                if let Some(n) = o.nfiles {
                    m.insert(key("nfiles"), Value::Number(n.into()));
                }
                if o.kind == Md5Kind::Plain {
                    m.insert(key("hash"), key("md5"));
                }
                m.insert(key("path"), Value::String(o.written.clone()));
                for (k, v) in old.into_iter().flatten() {
                    let name = k.as_str().unwrap_or_default();
                    if !["md5", "size", "nfiles", "hash", "path", "files"].contains(&name) {
                        m.insert(k.clone(), v.clone());
                    }
                }
                if let (Some(md5), Some(b)) = (&o.md5, &o.blake3) {
                    let mut entry = Mapping::new();
                    entry.insert(key("md5"), Value::String(md5.clone()));
                    entry.insert(key("blake3"), Value::String(b.to_hex()));
                    pipe_meta.insert(Value::String(o.written.clone()), Value::Mapping(entry));
                }
                Value::Mapping(m)
            })
            .collect();
        doc.insert(key("outs"), Value::Sequence(outs));
        let mut meta = match self.doc.get(key("meta")) {
            Some(Value::Mapping(m)) => m.clone(),
            _ => Mapping::new(),
        };
        meta.remove(key("pipe"));
        if !pipe_meta.is_empty() {
            meta.insert(key("pipe"), Value::Mapping(pipe_meta));
        }
        if !meta.is_empty() {
            doc.insert(key("meta"), Value::Mapping(meta));
        }
        for (k, v) in &self.doc {
            let name = k.as_str().unwrap_or_default();
            if !["md5", "frozen", "deps", "outs", "meta"].contains(&name) {
                doc.insert(k.clone(), v.clone());
            }
        }
        if !self.deps.is_empty() {
            // An import is a stage to DVC: its `md5` (first) covers the rest.
            let mut with_md5 = Mapping::new();
            with_md5.insert(key("md5"), Value::String(stage_md5(&doc)));
            with_md5.extend(doc);
            doc = with_md5;
        }
        yaml_serde::to_string(&Value::Mapping(doc)).expect("a .dvc file serializes")
    }
}

/// DVC's md5 of a stage (`compute_md5` in dvc/stage/utils.py): the md5 of
/// `json.dumps(d, sort_keys=True)` of the stage without `md5`, `meta` and
/// `desc`, leaving out at any depth the keys that do not change what the
/// stage does (`frozen`, `size`, `nfiles`, `isexec`, `metric`, `persist`,
/// `locked`).
fn stage_md5(doc: &Mapping) -> String {
    const SKIPPED: [&str; 7] = [
        "locked", "frozen", "metric", "persist", "isexec", "size", "nfiles",
    ];
    fn json(v: &Value, top: bool, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => super::md5::python_json_string(s, out),
            Value::Sequence(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    json(item, false, out);
                }
                out.push(']');
            }
            Value::Mapping(m) => {
                let mut entries: Vec<(&str, &Value)> = m
                    .iter()
                    .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
                    .filter(|(k, _)| !SKIPPED.contains(k))
                    .filter(|(k, _)| !top || !["md5", "meta", "desc"].contains(k))
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    super::md5::python_json_string(k, out);
                    out.push_str(": ");
                    json(v, false, out);
                }
                out.push('}');
            }
            Value::Tagged(t) => json(&t.value, top, out),
        }
    }
    let mut text = String::new();
    json(&Value::Mapping(doc.clone()), true, &mut text);
    let mut stream = Md5Stream::new(Md5Kind::Plain);
    stream.update(text.as_bytes());
    stream.finish()
}

/// The `.dvc` file that tracks `path` when pipe adds it: `PATH.dvc`.
pub fn dvc_file_for(path: &RelPath) -> RelPath {
    RelPath::from_normalized(format!("{}{DVC_SUFFIX}", path.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    #[test]
    fn an_import_carries_the_stage_md5_dvc_computes() {
        // As `dvc import-url` (DVC 3.67) wrote it, pipe's `meta` included.
        let text = "frozen: true\ndeps:\n- md5: e30260020baeb0398ff07b37dd33ed16\n  size: 3\n  hash: md5\n  path: /tmp/srv/r.tsv\nouts:\n- md5: e30260020baeb0398ff07b37dd33ed16\n  size: 3\n  hash: md5\n  path: r.tsv\nmeta:\n  pipe:\n    r.tsv:\n      md5: e30260020baeb0398ff07b37dd33ed16\n      blake3: c4edbcbf33a8f0638c08df7f4a130b12a59035f955a648b2766892a92d5a3afe\n";
        let f = DvcFile::parse(&rel("r.tsv.dvc"), text).unwrap();
        assert_eq!(
            f.to_text(),
            format!("md5: 597323ec4f03fff714e69fc2e579cd0a\n{text}")
        );
    }

    #[test]
    fn reads_dvc2_and_dvc3_entries_relative_to_the_file() {
        let dvc3 = "outs:\n- md5: 849835d274483dc683eb416d6e4f887d.dir\n  size: 4\n  nfiles: 2\n  hash: md5\n  path: imgs\n";
        let f = DvcFile::parse(&rel("data/imgs.dvc"), dvc3).unwrap();
        assert_eq!(f.outs[0].path, rel("data/imgs"));
        assert_eq!(f.outs[0].kind, Md5Kind::Plain);
        assert!(f.outs[0].is_dir());
        let dvc2 = "outs:\n- md5: a304afb96060aad90176268345e10355\n  path: data.xml\n";
        let f = DvcFile::parse(&rel("data/data.xml.dvc"), dvc2).unwrap();
        assert_eq!(f.outs[0].kind, Md5Kind::Dos2Unix);
        assert!(!f.outs[0].is_dir());
        assert!(DvcFile::parse(&rel("x.dvc"), "outs:\n- path: ../../x\n").is_err());
    }

    #[test]
    fn writes_what_dvc_writes_and_keeps_blake3_in_meta_for_its_md5_only() {
        let mut f = DvcFile::new(rel("data/data.csv.dvc"));
        let b = Digest::of(b"x");
        f.set_out(
            &rel("data/data.csv"),
            "53d025127ae99ab79e8502aae2d9bea6",
            b,
            3893,
            None,
        );
        let text = f.to_text();
        assert_eq!(
            text,
            format!("outs:\n- md5: 53d025127ae99ab79e8502aae2d9bea6\n  size: 3893\n  hash: md5\n  path: data.csv\nmeta:\n  pipe:\n    data.csv:\n      md5: 53d025127ae99ab79e8502aae2d9bea6\n      blake3: {}\n", b.to_hex())
        );
        let back = DvcFile::parse(&rel("data/data.csv.dvc"), &text).unwrap();
        assert_eq!(back.outs[0].blake3, Some(b));
        // `dvc add` changed the md5 and left meta as it was: not trusted.
        let stale = text.replacen("md5: 53d0", "md5: 63d0", 1);
        let back = DvcFile::parse(&rel("data/data.csv.dvc"), &stale).unwrap();
        assert_eq!(back.outs[0].blake3, None);
    }
}
