//! `pipeline.lock`: what each stage last ran with and produced.
//!
//! YAML, written by pipe and committed to git next to `pipeline.yaml`. Per
//! stage: its command (or built-in name, version and arguments), the values of
//! its params, and `{path, blake3, size, nfiles}` for each dep and out. The
//! file is deterministic (sorted maps, project-relative paths), so that two
//! runs producing the same results write the same bytes and `git diff` shows
//! only real changes.
//!
//! It is written by temp file + fsync + rename after each successful stage:
//! a reader (or a crash) sees the old file or the new one, never half of one.
//! An entry is replaced only when its stage finished successfully, so no entry
//! ever claims a result that a failed or killed stage did not produce.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::hash::{Digest, Hashed};
use crate::paths::RelPath;
use crate::spec::params::ParamValues;

pub const LOCK_FILE: &str = "pipeline.lock";
/// 2: outputs record `cache`/`persist`, and the file ends with [`END`].
pub const SCHEMA: u32 = 2;

const HEADER: &str =
    "# Written by `pipe repro`: what each stage ran with and produced. Commit it; do not edit.\n";

/// The last line of every lock of schema 2 or later. A file cut short
/// (a full disk, a copy interrupted, a bad merge) lacks it and is refused,
/// even when what is left is valid YAML. A line rather than a checksum, so
/// that git can still merge two locks.
pub const END: &str = "# End of pipeline.lock (a lock without this last line is incomplete).";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub schema: u32,
    #[serde(default)]
    pub stages: BTreeMap<String, LockStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, Json>,
    #[serde(default, skip_serializing_if = "is_root")]
    pub wdir: RelPath,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: ParamValues,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<PathRecord>,
    /// The deps named by URL, with the version each had when the stage ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_deps: Vec<UrlDep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outs: Vec<PathRecord>,
}

/// A dep named by URL and the version of the object it names (ETag,
/// version id, …: no download is needed to know it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlDep {
    pub url: String,
    pub version: crate::remote::source::ObjectVersion,
}

fn is_root(p: &RelPath) -> bool {
    p.is_root()
}

/// A hashed path as recorded in the lock and the run cache. An output's
/// record also keeps its options when they are not the defaults
/// (`cache: false`, `persist: true`), so that changing one is a reason to
/// rerun, as it changes the stage's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRecord {
    pub path: RelPath,
    pub blake3: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfiles: Option<u64>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub persist: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl PathRecord {
    pub fn new(path: RelPath, hashed: &Hashed) -> PathRecord {
        PathRecord {
            path,
            blake3: hashed.hash,
            size: hashed.size,
            nfiles: hashed.nfiles(),
            cache: true,
            persist: false,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.nfiles.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `location` is `:line:column` when known.
    #[error("{LOCK_FILE}{location}: not a valid lock file: {message}")]
    Parse { location: String, message: String },
    #[error(
        "{LOCK_FILE} was written by a newer pipe (lock schema {found}, this pipe knows {SCHEMA})"
    )]
    Schema { found: u32 },
    #[error("{LOCK_FILE} is incomplete: its last line is not the end marker, so it was cut short")]
    Truncated,
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LockError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LockError::Parse { .. } | LockError::Truncated => Some(
                "restore it from git (`git checkout pipeline.lock`), or delete it: `pipe repro` then restores what the run cache holds and reruns the rest",
            ),
            LockError::Schema { .. } => Some("upgrade pipe"),
            _ => None,
        }
    }
}

impl LockFile {
    /// Reads the lock in `root`; an absent file is an empty lock.
    pub fn read(root: &Path) -> Result<LockFile, LockError> {
        let path = root.join(LOCK_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    schema: SCHEMA,
                    stages: BTreeMap::new(),
                })
            }
            Err(source) => return Err(LockError::Read { path, source }),
        };
        LockFile::from_bytes(&bytes)
    }

    /// Parses the bytes of a lock file; text that is not UTF-8 is a parse
    /// error located at the first bad byte.
    pub fn from_bytes(bytes: &[u8]) -> Result<LockFile, LockError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => LockFile::from_text(text),
            Err(e) => {
                let good = &bytes[..e.valid_up_to()];
                let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
                let column = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
                Err(LockError::Parse {
                    location: format!(":{line}:{column}"),
                    message: "not UTF-8 text (a binary or damaged file)".into(),
                })
            }
        }
    }

    /// Parses the text of a lock file (as read from disk or from git).
    pub fn from_text(text: &str) -> Result<LockFile, LockError> {
        LockFile::parse(text).map_err(|problem| match problem {
            ParseProblem::Schema(found) => LockError::Schema { found },
            ParseProblem::Truncated => LockError::Truncated,
            ParseProblem::Yaml(e) => LockError::Parse {
                location: e
                    .location()
                    .map(|l| format!(":{}:{}", l.line(), l.column()))
                    .unwrap_or_default(),
                message: crate::spec::params::strip_location(&e.to_string()),
            },
        })
    }

    fn parse(text: &str) -> Result<LockFile, ParseProblem> {
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.starts_with('#'))
        {
            // pipe never writes its header alone: that is a file cut short.
            if text.starts_with(HEADER) || HEADER.starts_with(text) {
                return Err(ParseProblem::Truncated);
            }
            return Ok(LockFile {
                schema: SCHEMA,
                stages: BTreeMap::new(),
            });
        }
        let lock: LockFile = match crate::spec::yaml::from_str(text) {
            Ok(lock) => lock,
            // A newer schema may have fields this pipe does not know.
            Err(e) => {
                return Err(match schema_of(text) {
                    Some(found) if found > SCHEMA => ParseProblem::Schema(found),
                    _ => ParseProblem::Yaml(e),
                })
            }
        };
        if lock.schema > SCHEMA {
            return Err(ParseProblem::Schema(lock.schema));
        }
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        if lock.schema >= 2 && last.map(str::trim_end) != Some(END) {
            return Err(ParseProblem::Truncated);
        }
        Ok(lock)
    }

    /// The whole file: header, YAML body, end marker. Written with the
    /// current [`SCHEMA`] whatever was read.
    pub fn to_text(&self) -> String {
        #[derive(Serialize)]
        struct Current<'a> {
            schema: u32,
            stages: &'a BTreeMap<String, LockStage>,
        }
        let current = Current {
            schema: SCHEMA,
            stages: &self.stages,
        };
        let body = yaml_serde::to_string(&current).expect("a lock serializes");
        format!("{HEADER}{body}{END}\n")
    }

    /// Writes the lock atomically: temp file in the same directory, fsync,
    /// rename over the old one.
    pub fn write(&self, root: &Path) -> Result<(), LockError> {
        let path = root.join(LOCK_FILE);
        crate::atomic_write::write(&path, self.to_text().as_bytes(), false)
            .map_err(|source| LockError::Write { path, source })
    }
}

enum ParseProblem {
    Schema(u32),
    Truncated,
    Yaml(yaml_serde::Error),
}

/// The `schema:` of a lock that does not parse as this pipe's schema.
fn schema_of(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("schema:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LockFile {
        let mut params = ParamValues::new();
        params
            .entry("params.yaml".into())
            .or_default()
            .insert("fit.C".into(), serde_json::json!(1.5));
        let record = PathRecord {
            path: RelPath::parse("data/x.tsv", None).unwrap(),
            blake3: Digest::of(b"x"),
            size: 1,
            nfiles: None,
            cache: true,
            persist: false,
        };
        let mut lock = LockFile {
            schema: SCHEMA,
            stages: BTreeMap::new(),
        };
        lock.stages.insert(
            "train".into(),
            LockStage {
                cmd: Some(vec!["python train.py".into()]),
                uses: None,
                version: None,
                with: BTreeMap::new(),
                wdir: RelPath::root(),
                params,
                deps: vec![record.clone()],
                url_deps: vec![],
                outs: vec![PathRecord {
                    nfiles: Some(3),
                    cache: false,
                    persist: true,
                    ..record
                }],
            },
        );
        lock
    }

    #[test]
    fn writes_atomically_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let lock = sample();
        lock.write(dir.path()).unwrap();
        assert_eq!(LockFile::read(dir.path()).unwrap(), lock);
        // No temp files are left next to it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(LOCK_FILE)]);
    }

    #[test]
    fn is_deterministic_text() {
        assert_eq!(sample().to_text(), sample().to_text());
        assert!(sample().to_text().contains("fit.C: 1.5"));
    }

    #[test]
    fn refuses_garbage_and_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "schema: 1\nstages: [oops\n").unwrap();
        assert!(matches!(
            LockFile::read(dir.path()),
            Err(LockError::Parse { .. })
        ));
        std::fs::write(dir.path().join(LOCK_FILE), "schema: 9\n").unwrap();
        assert!(matches!(
            LockFile::read(dir.path()),
            Err(LockError::Schema { found: 9 })
        ));
    }

    #[test]
    fn a_lock_cut_anywhere_is_refused_as_incomplete() {
        let text = sample().to_text();
        assert!(text.ends_with(&format!("{END}\n")));
        assert_eq!(LockFile::from_text(&text).unwrap(), sample());
        // Every cut short of the end marker, valid YAML or not, is refused.
        let end = text.rfind(END).unwrap();
        for cut in 1..end {
            let Some(part) = text.get(..cut) else {
                continue;
            };
            match LockFile::from_text(part) {
                Err(LockError::Truncated | LockError::Parse { .. }) => {}
                other => panic!("cut at {cut} gave {other:?}:\n{part}"),
            }
        }
    }

    #[test]
    fn a_lock_of_schema_1_without_an_end_marker_still_reads() {
        let text = "schema: 1\nstages:\n  s:\n    cmd: [echo]\n    outs:\n    - path: a.txt\n      blake3: 6a953581d60dbebc9749b56d2383277fb02b58d260b4ccf6f119108fa0f1d4ef\n      size: 1\n";
        let lock = LockFile::from_text(text).unwrap();
        assert!(lock.stages["s"].outs[0].cache);
        assert!(lock
            .to_text()
            .starts_with(&format!("{HEADER}schema: {SCHEMA}\n")));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_a_located_parse_error() {
        let err = LockFile::from_bytes(b"schema: 2\nstages:\n  \xff\xfe: {}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pipeline.lock:3:3: not a valid lock file: not UTF-8 text (a binary or damaged file)"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn paths_that_leave_the_project_are_refused() {
        let text = sample()
            .to_text()
            .replace("path: data/x.tsv", "path: ../x.tsv");
        assert!(matches!(
            LockFile::from_text(&text),
            Err(LockError::Parse { .. })
        ));
    }
}
