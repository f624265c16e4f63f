//! Project-relative paths.
//!
//! Everything the engine stores or compares (lock entries, fingerprints, DAG
//! edges, the stat cache) speaks of paths as a [`RelPath`]: relative to the
//! project root, `/`-separated, with no `.` or `..` components and no trailing
//! slash. Absolute paths never enter a fingerprint or `pipeline.lock`, so a
//! project can be moved or cloned elsewhere and stay fresh.
//!
//! [`RelPath::parse`] is the one gate from user text to a `RelPath`: it
//! rejects absolute paths and paths that climb out of the project, and it
//! resolves a stage's `wdir`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A normalized path relative to the project root.
///
/// Deserializing one (from `pipeline.lock`, a run-cache entry, a manifest)
/// goes through the same gate as user text and accepts only the normalized
/// form: a damaged or hostile file cannot name `../x`, `/etc` or `a/./b`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RelPath::normalized(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a path written by the user cannot be a project path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is an absolute path; paths in the pipeline file are relative to its directory")]
    Absolute(String),
    #[error("`{0}` points outside the project (it climbs above the project root with `..`)")]
    Escapes(String),
    #[error("the path is empty")]
    Empty,
    #[error("`{0}` is not a normalized project path (no `.`, `..`, `//`, `\\` or trailing `/`)")]
    NotNormalized(String),
}

impl RelPath {
    /// Normalizes `text`, written relative to `base` (itself project-relative,
    /// `None` for the root), into a project path.
    pub fn parse(text: &str, base: Option<&RelPath>) -> Result<RelPath, PathError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(PathError::Empty);
        }
        if trimmed.starts_with('/') || trimmed.starts_with('\\') || Path::new(trimmed).is_absolute()
        {
            return Err(PathError::Absolute(text.to_string()));
        }
        let mut parts: Vec<&str> = match base {
            Some(b) if !b.0.is_empty() => b.0.split('/').collect(),
            _ => Vec::new(),
        };
        for comp in trimmed.split(['/', '\\']) {
            match comp {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::Escapes(text.to_string()));
                    }
                }
                other => parts.push(other),
            }
        }
        Ok(RelPath(parts.join("/")))
    }

    /// `text` if it is already a normalized project path (as pipe writes
    /// them), else why not.
    pub fn normalized(text: &str) -> Result<RelPath, PathError> {
        let parsed = RelPath::parse(text, None)?;
        if parsed.0 != text || text.contains('\\') {
            return Err(PathError::NotNormalized(text.to_string()));
        }
        Ok(parsed)
    }

    /// The project root itself.
    pub fn root() -> RelPath {
        RelPath(String::new())
    }

    /// Builds a path from text already known to be normalized (e.g. read back
    /// from `pipeline.lock` after validation, or joined from walk entries).
    pub fn from_normalized(text: impl Into<String>) -> RelPath {
        RelPath(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path on disk under `root`.
    pub fn to_path(&self, root: &Path) -> PathBuf {
        if self.0.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&self.0)
        }
    }

    /// True when `self` is `other` or lies inside it.
    pub fn is_within(&self, other: &RelPath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// True when one of the two paths is inside (or equal to) the other.
    pub fn overlaps(&self, other: &RelPath) -> bool {
        self.is_within(other) || other.is_within(self)
    }

    pub fn join(&self, name: &str) -> RelPath {
        if self.0.is_empty() {
            RelPath(name.to_string())
        } else {
            RelPath(format!("{}/{}", self.0, name))
        }
    }

    pub fn parent(&self) -> Option<RelPath> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => RelPath(self.0[..i].to_string()),
            None => RelPath::root(),
        })
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    #[test]
    fn normalizes_dots_slashes_and_trailing_separators() {
        assert_eq!(p("./data//raw/").as_str(), "data/raw");
        assert_eq!(p("a/b/../c").as_str(), "a/c");
        assert_eq!(p("model/").as_str(), "model");
    }

    #[test]
    fn rejects_absolute_and_escaping_paths() {
        assert!(matches!(
            RelPath::parse("/etc/passwd", None),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            RelPath::parse("../x", None),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            RelPath::parse("a/../../x", None),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(RelPath::parse("  ", None), Err(PathError::Empty)));
    }

    #[test]
    fn resolves_against_a_working_directory() {
        let wdir = p("sub/dir");
        assert_eq!(
            RelPath::parse("../x.txt", Some(&wdir)).unwrap().as_str(),
            "sub/x.txt"
        );
        assert!(RelPath::parse("../../../x", Some(&wdir)).is_err());
    }

    #[test]
    fn only_normalized_paths_deserialize() {
        let ok: RelPath = serde_json::from_str("\"data/raw.csv\"").unwrap();
        assert_eq!(ok.as_str(), "data/raw.csv");
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "",
            "a\\\\b",
        ] {
            let text = serde_json::to_string(bad).unwrap();
            assert!(
                serde_json::from_str::<RelPath>(&text).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn within_respects_component_boundaries() {
        assert!(p("model/w.bin").is_within(&p("model")));
        assert!(p("model").is_within(&p("model")));
        assert!(!p("models/w.bin").is_within(&p("model")));
        assert!(p("a").overlaps(&p("a/b")));
        assert!(!p("a").overlaps(&p("b")));
    }
}
