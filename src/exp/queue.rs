//! Experiments waiting to run, one JSON file each in
//! `.pipeline-cache/exp-queue/`, named so that they sort in the order they
//! were queued. `pipe exp run --run-all` claims a file by renaming it
//! (`*.running`), so two of them never run the same experiment, and holds
//! a lock on it while the experiment runs. An interrupted run puts its
//! claim back ([`release`]); a claim whose lock is free was left by a run
//! that was killed: [`recover`] puts it back in the queue.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::overrides::Override;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub name: String,
    /// The baseline commit, hex.
    pub baseline: String,
    /// What it runs from: the baseline with the workspace's changes at the
    /// time it was queued (see [`super::record::start_commit`]), hex.
    pub start: String,
    pub overrides: Vec<Override>,
    /// Seconds since the epoch.
    pub queued_at: u64,
}

/// A queue entry on disk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub queued: Queued,
}

pub fn dir(cache_root: &Path) -> PathBuf {
    cache_root.join("exp-queue")
}

/// Adds `queued` at the end of the queue.
pub fn push(cache_root: &Path, queued: &Queued) -> Result<(), Error> {
    let dir = dir(cache_root);
    crate::cache::ensure_root(cache_root)
        .and_then(|_| std::fs::create_dir_all(&dir))
        .map_err(Error::io(format!("cannot create {}", dir.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = dir.join(format!("{nanos:024}-{}.json", queued.name));
    let text = serde_json::to_string_pretty(queued).expect("a queue entry serializes");
    let tmp = dir.join(format!(".{nanos}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(Error::io(format!("cannot write {}", path.display())))
}

/// The waiting entries, in queue order (entries being run, and damaged
/// files, see [`damaged`], are left out).
pub fn list(cache_root: &Path) -> Result<Vec<Entry>, Error> {
    let dir = dir(cache_root);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                message: format!("cannot read {}", dir.display()),
                source,
            })
        }
    };
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // claimed meanwhile
        };
        if let Ok(queued) = serde_json::from_str::<Queued>(&text) {
            out.push(Entry { path, queued });
        }
    }
    Ok(out)
}

/// Queue files that cannot be read as entries.
pub fn damaged(cache_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir(cache_root)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|text| serde_json::from_str::<Queued>(&text).is_err())
        })
        .collect();
    out.sort();
    out
}

/// A claimed entry: the lock is held until it is dropped.
#[derive(Debug)]
pub struct Claim {
    pub path: PathBuf,
    _lock: std::fs::File,
}

/// Claims `entry` for running: `None` when another process took it.
pub fn claim(entry: &Entry) -> Option<Claim> {
    let running = entry.path.with_extension("running");
    std::fs::rename(&entry.path, &running).ok()?;
    let file = std::fs::File::open(&running).ok()?;
    file.lock().ok()?;
    Some(Claim {
        path: running,
        _lock: file,
    })
}

/// Puts back in the queue the claims of runs that were killed (their lock
/// is free); returns their names. (The copies they ran in are removed by
/// [`super::copies::sweep`].)
pub fn recover(cache_root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir(cache_root)) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "running") {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // still running
        }
        let Ok(queued) = std::fs::read_to_string(&path)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<Queued>(&t).map_err(|_| ()))
        else {
            continue;
        };
        if std::fs::rename(&path, path.with_extension("json")).is_ok() {
            names.push(queued.name);
        }
    }
    names.sort();
    names
}

/// Puts a claimed entry back in the queue (its run was interrupted).
pub fn release(claim: Claim) -> Result<(), Error> {
    let waiting = claim.path.with_extension("json");
    std::fs::rename(&claim.path, &waiting)
        .map_err(Error::io(format!("cannot write {}", waiting.display())))
}

/// Removes a queue file (waiting or claimed).
pub fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            message: format!("cannot remove {}", path.display()),
            source,
        }),
    }
}
