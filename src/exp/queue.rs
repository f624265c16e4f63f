//! Experiments waiting to run, one JSON file each in
//! `.pipeline-cache/exp-queue/`, named so that they sort in the order they
//! were queued. `pipe exp run --run-all` claims a file by renaming it
//! (`*.running`), so two of them never run the same experiment.

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

fn io(message: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { message, source }
}

/// Adds `queued` at the end of the queue.
pub fn push(cache_root: &Path, queued: &Queued) -> Result<(), Error> {
    let dir = dir(cache_root);
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = dir.join(format!("{nanos:024}-{}.json", queued.name));
    let text = serde_json::to_string_pretty(queued).expect("a queue entry serializes");
    let tmp = dir.join(format!(".{nanos}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(io(format!("cannot write {}", path.display())))
}

/// The waiting entries, in queue order (entries being run are left out).
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
        let queued: Queued = serde_json::from_str(&text).map_err(|e| Error::Refused {
            message: format!("queue entry {} is damaged: {e}", path.display()),
            hint: Some("remove it with `pipe exp remove --queue NAME` or delete the file".into()),
        })?;
        out.push(Entry { path, queued });
    }
    Ok(out)
}

/// Claims `entry` for running: `None` when another process took it.
pub fn claim(entry: &Entry) -> Option<PathBuf> {
    let running = entry.path.with_extension("running");
    std::fs::rename(&entry.path, &running).ok().map(|_| running)
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
