//! `pipe commit`: record stages as they are now, without running them.
//!
//! As `dvc commit` does: after an output was edited by hand, or a dep
//! changed in a way the user knows does not change the results (a comment
//! in a script), the stage's current state is recorded: its cached
//! outputs are stored in the cache, and its entry in `pipeline.lock` gets
//! the current params, dep hashes and output hashes. From then on the
//! stage is up to date, and `pipe checkout` restores those outputs.
//!
//! [`pending`] says what would be recorded (each stage whose state differs
//! from its lock entry, with the reasons `pipe status` gives), and checks
//! everything first: a stage whose output or dep is missing has nothing to
//! record, and is an error before anything is written. [`record`] then
//! writes one stage. The run cache is left alone: it says what running a
//! stage produces, and a recorded edit was not produced by a run.

use crate::error::Error;
use crate::fingerprint::{compare, lock_entry, Fingerprint, StaleReason};
use crate::hash::Hasher;
use crate::lock::{LockFile, PathRecord};
use crate::plan::{observe, Observed};
use crate::project::Project;
use crate::spec::params::ParamsFiles;

/// A stage whose current state differs from what the lock records.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Index in the pipeline.
    pub stage: usize,
    pub reasons: Vec<StaleReason>,
    seen: Observed,
}

/// The selected stages (in order) whose state differs from their lock
/// entries. A missing output or dep is an error: there is nothing to
/// record for its stage.
pub fn pending(
    project: &Project,
    lock: &LockFile,
    hasher: &Hasher,
    selected: &[usize],
) -> Result<Vec<Pending>, Error> {
    let mut files = ParamsFiles::new(&project.root);
    let mut out = Vec::new();
    for &i in selected {
        let stage = &project.pipeline.stages[i];
        let seen = observe(project, stage, hasher, &mut files)?;
        let missing = seen
            .outs
            .iter()
            .map(|(p, r)| (p, r, "output"))
            .chain(seen.deps.iter().map(|(p, r)| (p, r, "dep")))
            .find(|(_, r, _)| r.is_none());
        if let Some((path, _, what)) = missing {
            return Err(Error::Refused {
                message: format!(
                    "stage {}: {what} {path} is missing, so there is nothing to record",
                    stage.name
                ),
                hint: Some(format!(
                    "`pipe repro {0}` runs the stage; `pipe checkout {0}` restores its recorded outputs",
                    stage.name
                )),
            });
        }
        let now = Fingerprint::of(stage, &seen.params, &seen.dep_records()).with_urls(&seen.urls);
        let reasons = compare(
            stage,
            lock.stages.get(&stage.name),
            &now,
            &seen.deps,
            &seen.outs,
        );
        if !reasons.is_empty() {
            out.push(Pending {
                stage: i,
                reasons,
                seen,
            });
        }
    }
    Ok(out)
}

/// Records `pending`'s stage: stores its cached outputs and writes its
/// entry in `lock` and in `pipeline.lock` (atomically).
pub fn record(
    project: &Project,
    lock: &mut LockFile,
    hasher: &Hasher,
    pending: &Pending,
) -> Result<(), Error> {
    let stage = &project.pipeline.stages[pending.stage];
    let mut outs = Vec::new();
    for out in &stage.outs {
        let hashed = hasher
            .hash_output(&out.path)?
            .ok_or_else(|| Error::Refused {
                message: format!(
                    "stage {}: output {} disappeared while it was being recorded",
                    stage.name, out.path
                ),
                hint: Some("make sure nothing else writes the stage's outputs".into()),
            })?;
        if out.cache {
            project
                .cache
                .store(&project.workspace, &out.path, &hashed)?;
        }
        outs.push(PathRecord::new(out.path.clone(), &hashed));
    }
    let seen = &pending.seen;
    let entry = lock_entry(stage, &seen.params, &seen.dep_records(), &seen.urls, outs);
    lock.stages.insert(stage.name.clone(), entry);
    lock.write(&project.root)?;
    crate::run::kept::forget_failed(project, &stage.name);
    Ok(())
}
