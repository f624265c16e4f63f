//! `.dvcignore`: files left out of directories, as DVC leaves them out.
//!
//! A `.dvcignore` file has gitignore syntax and applies to its own
//! directory and everything below it, as in DVC (and git): a pattern in a
//! deeper file overrides one above it, `!pattern` re-includes, and a
//! directory that is ignored is not entered, so nothing below it can be
//! re-included. DVC also always leaves out `.git`, `.hg` and `.dvc`
//! directories; so does pipe.
//!
//! What it changes: the walk that hashes a directory (a dependency, an
//! output, tracked data) skips what is ignored, so an ignored file is not
//! part of the directory's hash or manifest, is not stored in the cache,
//! and changing it reruns nothing. That is what makes a directory's
//! `md5: ….dir` the one `dvc add` computes for the same tree.
//!
//! Matching uses the `ignore` crate's gitignore matcher. Each directory's
//! `.dvcignore` is read once per process, when the walk first needs it
//! (one `stat` per directory walked when there is none).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use rustc_hash::FxHashMap;

/// The name of DVC's ignore files.
pub const DVCIGNORE: &str = ".dvcignore";

/// Directory names DVC never looks into.
const ALWAYS_IGNORED: &[&str] = &[".git", ".hg", ".dvc"];

/// The `.dvcignore` rules of one project; see the module docs.
#[derive(Debug)]
pub struct DvcIgnore {
    root: PathBuf,
    /// Project-relative directory (`""`: the root) → its rules, if it has
    /// a `.dvcignore`.
    by_dir: RwLock<FxHashMap<String, Option<Arc<Gitignore>>>>,
}

impl DvcIgnore {
    pub fn new(root: &Path) -> DvcIgnore {
        DvcIgnore {
            root: root.to_path_buf(),
            by_dir: RwLock::default(),
        }
    }

    /// True when the entry `rel` (a project path, `/`-separated) of a
    /// directory being walked is left out. Its parent directories are
    /// taken to be walked, so not ignored themselves.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if ALWAYS_IGNORED.contains(&name) && (is_dir || name == ".git") {
            return true;
        }
        let abs = self.root.join(rel);
        // The deepest `.dvcignore` with an opinion decides.
        let mut dir = parent_of(rel);
        loop {
            if let Some(rules) = self.rules(dir) {
                match rules.matched(&abs, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            if dir.is_empty() {
                return false;
            }
            dir = parent_of(dir);
        }
    }

    /// The rules of the `.dvcignore` in `dir`, read on first use.
    fn rules(&self, dir: &str) -> Option<Arc<Gitignore>> {
        if let Some(found) = self.by_dir.read().expect("dvcignore lock").get(dir) {
            return found.clone();
        }
        let abs_dir = if dir.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir)
        };
        let file = abs_dir.join(DVCIGNORE);
        let rules = if file.is_file() {
            let mut builder = GitignoreBuilder::new(&abs_dir);
            // A line that is not a valid pattern is skipped, as git does.
            let _ = builder.add(&file);
            builder.build().ok().map(Arc::new)
        } else {
            None
        };
        self.by_dir
            .write()
            .expect("dvcignore lock")
            .insert(dir.to_string(), rules.clone());
        rules
    }
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(parent, _)| parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_below_their_file_and_deeper_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/keep")).unwrap();
        std::fs::write(root.join(DVCIGNORE), "*.tmp\n/data/logs/\n").unwrap();
        std::fs::write(root.join("data/keep").join(DVCIGNORE), "!*.tmp\n").unwrap();
        let ignore = DvcIgnore::new(root);
        assert!(ignore.is_ignored("data/x.tmp", false));
        assert!(!ignore.is_ignored("data/x.csv", false));
        assert!(ignore.is_ignored("data/logs", true));
        assert!(
            !ignore.is_ignored("data/logs", false),
            "a directory pattern"
        );
        assert!(!ignore.is_ignored("data/keep/x.tmp", false));
        assert!(ignore.is_ignored("data/.git", true));
        assert!(ignore.is_ignored("data/.dvc", true));
        assert!(!ignore.is_ignored("data/.dvc", false));
    }
}
