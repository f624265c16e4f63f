//! `pipe checkout`: put the outputs recorded in `pipeline.lock` back.
//!
//! For every output of the selected stages that the lock records: if it is
//! missing, restore it from the cache; if it differs from the recorded hash,
//! replace it when the cache holds what is there now (another commit's
//! version after a `git checkout`: nothing is lost), and keep it otherwise
//! (a user's edit is never thrown away silently) unless `force`; if the
//! cache does not have the recorded version, or its copy is damaged, say
//! so. Nothing is run, and nothing damaged is restored.
//!
//! Tracked data (`.dvc` files, [`crate::track`]) is checked out the same
//! way, by [`checkout_tracked`]: the version each `.dvc` file records.

use crate::error::Error;
use crate::lock::{LockFile, PathRecord};
use crate::paths::RelPath;
use crate::project::Project;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutAction {
    UpToDate,
    Restored,
    /// Edited since it was recorded, and the cache has no copy of what is
    /// there now: kept (without `force`).
    KeptModified,
    NotInCache,
    /// Missing, and declared `cache: false`: only a rerun can make it.
    NotCached,
    /// The cache's copy was damaged (and is now moved aside): not restored.
    Damaged,
}

#[derive(Debug, Clone)]
pub struct CheckoutItem {
    /// The stage, or the `.dvc` file of tracked data.
    pub stage: String,
    pub path: RelPath,
    pub action: CheckoutAction,
    /// True for tracked data (`stage` is then its `.dvc` file).
    pub tracked: bool,
}

/// Puts `record` in place where the workspace holds `now` (see the
/// module docs for when it is replaced).
fn place(
    project: &Project,
    record: &PathRecord,
    now: Option<crate::hash::Hashed>,
    force: bool,
) -> Result<CheckoutAction, Error> {
    Ok(match now {
        Some(h) if h.hash == record.blake3 => CheckoutAction::UpToDate,
        _ if !project.cache.contains(record) => CheckoutAction::NotInCache,
        Some(h)
            if !force
                && !project
                    .cache
                    .holds(&PathRecord::new(record.path.clone(), &h)) =>
        {
            CheckoutAction::KeptModified
        }
        _ => match project.cache.restore(&project.workspace, record) {
            Ok(()) => CheckoutAction::Restored,
            Err(e) if e.is_damaged() => CheckoutAction::Damaged,
            Err(e) => return Err(e.into()),
        },
    })
}

/// Checks out the data the `.dvc` files `files` record.
pub fn checkout_tracked(
    project: &Project,
    files: &[crate::track::DvcFile],
    force: bool,
) -> Result<Vec<CheckoutItem>, Error> {
    let hasher = project.hasher();
    let tracker = crate::track::Tracker::new(project, &hasher);
    let mut report = Vec::new();
    for file in files {
        for out in file.outs.iter().filter(|o| o.cache) {
            let (state, now) = tracker.state(out)?;
            let action = match state {
                crate::track::TrackedState::UpToDate => CheckoutAction::UpToDate,
                crate::track::TrackedState::NotRecorded => continue,
                _ => match tracker.record(out, true)? {
                    Some(record) => place(project, &record, now, force)?,
                    None => CheckoutAction::NotInCache,
                },
            };
            report.push(CheckoutItem {
                stage: file.file.to_string(),
                path: out.path.clone(),
                action,
                tracked: true,
            });
        }
    }
    tracker.save();
    let _ = hasher.save();
    project.cache.save_verified();
    Ok(report)
}

pub fn checkout(
    project: &Project,
    selected: &[usize],
    force: bool,
) -> Result<Vec<CheckoutItem>, Error> {
    let lock = LockFile::read(&project.root)?;
    let hasher = project.hasher();
    let mut report = Vec::new();
    for &i in selected {
        let stage = &project.pipeline.stages[i];
        let Some(entry) = lock.stages.get(&stage.name) else {
            continue;
        };
        for record in &entry.outs {
            let declared = stage.outs.iter().find(|o| o.path == record.path);
            let Some(declared) = declared else { continue };
            let now = hasher.hash_output(&record.path)?;
            let action = match now {
                None if !declared.cache => CheckoutAction::NotCached,
                _ if !declared.cache => CheckoutAction::UpToDate,
                now => place(project, record, now, force)?,
            };
            report.push(CheckoutItem {
                stage: stage.name.clone(),
                path: record.path.clone(),
                action,
                tracked: false,
            });
        }
    }
    let _ = hasher.save();
    project.cache.save_verified();
    Ok(report)
}
