//! Outputs pipe is about to replace that nobody else has a copy of.
//!
//! Before a stage runs, its outputs are cleared (unless `persist: true`);
//! before it is restored from the run cache, they are replaced. An output
//! whose current content is what `pipeline.lock` records is pipe's own
//! result, and one whose content the cache holds can be brought back; but
//! anything else there (an output edited by hand, a file that was in the
//! way before the stage first ran) would be lost. So such content is
//! stored in the cache first, and the run says so, naming the object that
//! holds it. `pipe commit` is how a user records an edit instead.
//!
//! One kind of unrecorded content is not the user's: what a stage that
//! failed (or was interrupted) left half-written. Each failed run
//! remembers the hashes of what its stage left in
//! `.pipeline-cache/v1/failed/<stage hash>` (the project's own directory,
//! even when the cache is shared), so that its next run clears those
//! without a word; a successful run forgets them.

use std::path::{Path, PathBuf};

use super::events::{Event, Reporter};
use crate::cache::VERSION_DIR;
use crate::error::Error;
use crate::hash::{Digest, Hasher};
use crate::lock::LockStage;
use crate::plan::Observed;
use crate::project::Project;
use crate::spec::Stage;

/// Stores in the cache every output of `stage` that is about to be
/// replaced and whose content exists nowhere else (see the module docs),
/// with a warning for each.
pub fn keep_unrecorded(
    project: &Project,
    stage: &Stage,
    locked: Option<&LockStage>,
    seen: &Observed,
    hasher: &Hasher,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let left = left_by_failed_run(project, &stage.name);
    for out in stage.outs.iter().filter(|o| !o.persist) {
        let Some(Some(now)) = seen
            .outs
            .iter()
            .find(|(p, _)| *p == out.path)
            .map(|(_, r)| r)
        else {
            continue;
        };
        let recorded = locked.and_then(|l| l.outs.iter().find(|r| r.path == out.path));
        if recorded.is_some_and(|r| r.blake3 == now.blake3)
            || left.contains(&now.blake3)
            || project.cache.holds(now)
        {
            continue;
        }
        // Hashed again for its manifest; the stat cache makes this cheap.
        let Some(hashed) = hasher.hash_output(&out.path)? else {
            continue;
        };
        project
            .cache
            .store(&project.workspace, &out.path, &hashed)?;
        let object = if hashed.is_dir() {
            project.cache.manifest_path(&hashed.hash)
        } else {
            project.cache.object_path(&hashed.hash)
        };
        let object = shown(&project.root, &object);
        let message = match recorded {
            Some(_) => format!(
                "output {} is not what pipe recorded (edited by hand?); this version is kept in the cache as {object} (`pipe commit {}` would have recorded it)",
                out.path, stage.name
            ),
            None => format!(
                "output {} was there before the stage wrote it; that version is kept in the cache as {object}",
                out.path
            ),
        };
        reporter.event(Event::Warning {
            stage: &stage.name,
            message: &message,
        });
    }
    Ok(())
}

/// Remembers what a failed run of `stage` left in its outputs.
pub fn remember_failed(project: &Project, stage: &Stage, hasher: &Hasher) {
    let left: Vec<String> = stage
        .outs
        .iter()
        .filter_map(|o| hasher.hash_output(&o.path).ok().flatten())
        .map(|h| h.hash.to_hex())
        .collect();
    let file = record_file(project, &stage.name);
    // Only a hint for the next run: losing it costs a warning, no data.
    let _ = if left.is_empty() {
        forget_file(&file)
    } else {
        let json = serde_json::to_string(&left).expect("hashes serialize");
        crate::atomic_write::write(&file, json.as_bytes(), false)
    };
}

/// Forgets what a failed run of `stage` left: it has run successfully
/// (or been recorded) since.
pub fn forget_failed(project: &Project, stage: &str) {
    let _ = forget_file(&record_file(project, stage));
}

fn forget_file(file: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn left_by_failed_run(project: &Project, stage: &str) -> Vec<Digest> {
    std::fs::read(record_file(project, stage))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<String>>(&b).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|h| Digest::from_hex(h))
        .collect()
}

fn record_file(project: &Project, stage: &str) -> PathBuf {
    project
        .cache_root()
        .join(VERSION_DIR)
        .join("failed")
        .join(Digest::of(stage.as_bytes()).to_hex())
}

/// `path` as the user reads it: relative to the project when inside it.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
