//! Keeping cached outputs out of git, as DVC does.
//!
//! When a stage's result is recorded (it ran, was restored from the run
//! cache, or `pipe commit` recorded it), each of its cached outputs is
//! added to the `.gitignore` of the output's own directory as `/name`
//! (the leading `/` anchors the entry to that directory), creating the
//! file if needed: `data/train.csv` becomes `/train.csv` in
//! `data/.gitignore`, the directory output `model/` becomes `/model` in
//! the project's `.gitignore`. That is exactly what `dvc repro` and
//! `dvc add` write, so the files read the same to a DVC user and git shows
//! what is left to commit: `pipeline.lock`, the params, the code, the
//! metrics.
//!
//! Nothing is written
//!
//! * outside a git repository;
//! * for an output that git ignores already (by any rule: a `/data/`
//!   written by hand, `.git/info/exclude`, a parent directory), so a
//!   hand-made `.gitignore` is never second-guessed and an entry is never
//!   added twice;
//! * for an output with `cache: false`: the cache cannot bring it back, so
//!   it belongs in git;
//! * for a metrics file (`metrics:`), cached or not. This is where pipe
//!   differs from DVC, which ignores cached metrics too: pipe's record of
//!   runs is git's history (`pipe metrics diff`, `pipe exp show` read
//!   metrics from commits), so metrics files are left for git to track;
//! * for an output that git tracks already: an entry would not untrack it.
//!   DVC refuses such an output; pipe warns (see [`Ignored::Tracked`]) and
//!   goes on, since the run itself is fine.
//!
//! Entries are escaped as gitignore patterns (`*`, `?`, `[`, `\`, a
//! trailing space). An existing `.gitignore` keeps its lines; the entry is
//! appended (after a newline if the file lacks a final one) and the file is
//! replaced whole through [`Workspace::write`], never outside the project.
//!
//! The repository is opened on first use, so a run that records nothing
//! never touches git.

use std::collections::BTreeSet;
use std::path::Path;

use crate::git::Repo;
use crate::paths::RelPath;
use crate::spec::{OutKind, Output};
use crate::workspace::{Workspace, WorkspaceError};

/// The name of git's ignore files.
pub const GITIGNORE: &str = ".gitignore";

/// What became of one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// The entry was added to this `.gitignore` (a project path).
    Added { file: RelPath },
    /// Git ignores it already, or it is not an output pipe keeps out of
    /// git (`cache: false`, a metrics file), or there is no repository.
    Nothing,
    /// Git tracks the output: pipe caches it, and git holds a second copy.
    Tracked,
}

/// Adds outputs to `.gitignore` files; see the module docs.
pub struct GitIgnorer<'a> {
    root: &'a Path,
    /// `None` until first used; then `Some(None)` outside git.
    repo: Option<Option<Repo>>,
    written: BTreeSet<RelPath>,
}

impl<'a> GitIgnorer<'a> {
    /// For the project at `root`; nothing is opened yet.
    pub fn new(root: &'a Path) -> GitIgnorer<'a> {
        GitIgnorer {
            root,
            repo: None,
            written: BTreeSet::new(),
        }
    }

    /// Whether pipe keeps `out` out of git when it is recorded.
    pub fn applies_to(out: &Output) -> bool {
        out.cache && out.kind != OutKind::Metric
    }

    /// Adds `out` to its directory's `.gitignore` when it should be (see
    /// the module docs).
    pub fn ignore(&mut self, ws: &Workspace, out: &Output) -> Result<Ignored, WorkspaceError> {
        if !Self::applies_to(out) {
            return Ok(Ignored::Nothing);
        }
        let root = self.root;
        let Some(repo) = self
            .repo
            .get_or_insert_with(|| Repo::discover(root, "pipe").ok())
            .as_ref()
        else {
            return Ok(Ignored::Nothing);
        };
        let path = &out.path;
        // A repository git cannot read is treated as no repository: the
        // outputs are recorded all the same.
        if repo.is_ignored(path).unwrap_or(true) {
            return Ok(Ignored::Nothing);
        }
        if repo.is_tracked(path).unwrap_or(false) {
            return Ok(Ignored::Tracked);
        }
        let (file, entry) = entry_for(path);
        let existing = std::fs::read(file.to_path(self.root)).unwrap_or_default();
        let mut text = String::from_utf8_lossy(&existing).into_owned();
        if text.lines().any(|l| l == entry) {
            // Present, and yet git does not ignore the path: a later rule
            // (`!name`) overrides it. The user's rules win.
            return Ok(Ignored::Nothing);
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&entry);
        text.push('\n');
        ws.write(&file, text.as_bytes(), false)?;
        self.written.insert(file.clone());
        Ok(Ignored::Added { file })
    }

    /// The `.gitignore` files written so far, sorted.
    pub fn written(&self) -> Vec<RelPath> {
        self.written.iter().cloned().collect()
    }
}

/// The `.gitignore` beside `path` and the entry that ignores `path` there.
fn entry_for(path: &RelPath) -> (RelPath, String) {
    let (dir, name) = match path.as_str().rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path.as_str()),
    };
    let file = match dir {
        Some(dir) => RelPath::from_normalized(format!("{dir}/{GITIGNORE}")),
        None => RelPath::from_normalized(GITIGNORE),
    };
    (file, format!("/{}", escape(name)))
}

/// A file name as a gitignore pattern that matches only that name.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    // Trailing spaces are dropped by git unless escaped.
    let kept = out.trim_end_matches(' ').len();
    let spaces = out.len() - kept;
    out.truncate(kept);
    for _ in 0..spaces {
        out.push_str("\\ ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_goes_beside_the_output_anchored_and_escaped() {
        let rel = |s: &str| RelPath::parse(s, None).unwrap();
        assert_eq!(
            entry_for(&rel("data/train.csv")),
            (rel("data/.gitignore"), "/train.csv".to_string())
        );
        assert_eq!(
            entry_for(&rel("model")),
            (rel(".gitignore"), "/model".to_string())
        );
        assert_eq!(
            entry_for(&RelPath::from_normalized("a/b/run[1]*.log ")),
            (rel("a/b/.gitignore"), "/run\\[1\\]\\*.log\\ ".to_string())
        );
    }
}
