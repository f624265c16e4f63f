//! The run cache: stage fingerprint → the outputs that run produced.
//!
//! After a stage runs and its outputs are stored, its fingerprint is recorded
//! in `runs/ab/cdef…` with the `{path, blake3, size, nfiles}` of every output.
//! When a later `repro` computes a fingerprint it has seen before (a param
//! changed and changed back, a branch switched), the outputs are linked back
//! from the objects without running the command.
//!
//! Only stages whose outputs are all cached and none persistent are eligible:
//! an uncached output could not be restored, and a persistent one depends on
//! its own previous state, which the fingerprint does not capture.
//!
//! # Claims
//!
//! Several `pipe` processes can share one cache (parallel experiments do),
//! and may reach a stage of the same fingerprint at the same time, none of
//! them having run it before. Before running such a stage a process takes
//! the [`RunClaim`] of its fingerprint, an exclusive lock on the empty file
//! `claims/<fingerprint>`, and holds it until the run is recorded; whoever
//! comes second waits, then finds the run recorded and restores it instead
//! of computing it again. A process that dies drops its lock with it. `gc`
//! removes the claim files nobody holds. A stage's command learns which
//! claims are held above it ([`HELD_CLAIMS_ENV`]), so that a `pipe` it
//! starts never waits for its own parent.

use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{io, Cache, CacheError};
use crate::hash::Digest;
use crate::lock::PathRecord;

/// The directory of the claim files, in the cache directory.
const CLAIMS: &str = "claims";

/// The fingerprints (hex, comma-separated) whose claims the `pipe`
/// processes above a stage's command hold, set for that command. A `pipe`
/// the command starts (a stage that runs `pipe repro` in another project
/// sharing the cache) does not wait for those claims: it would wait for
/// its own parent, forever. It runs such a stage without a claim.
pub const HELD_CLAIMS_ENV: &str = "PIPE_HELD_CLAIMS";

/// The claims held by the processes this one runs under (see
/// [`HELD_CLAIMS_ENV`]).
pub fn inherited_claims() -> String {
    std::env::var(HELD_CLAIMS_ENV).unwrap_or_default()
}

/// Whether `held` (a [`HELD_CLAIMS_ENV`] value) names `fingerprint`.
pub fn holds(held: &str, fingerprint: &Digest) -> bool {
    let hex = fingerprint.to_hex();
    held.split(',').any(|h| h == hex)
}

/// `held` with `fingerprint` added, for the commands of a claimed stage.
pub fn with_claim(held: &str, fingerprint: &Digest) -> String {
    if held.is_empty() {
        fingerprint.to_hex()
    } else {
        format!("{held},{}", fingerprint.to_hex())
    }
}

/// The claim on running one fingerprint; released when dropped (see the
/// module docs).
#[derive(Debug)]
pub struct RunClaim {
    _file: File,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub stage: String,
    pub outs: Vec<PathRecord>,
}

impl RunRecord {
    /// True when the record's outputs are exactly the stage's declared
    /// outputs (always, for a record this pipe wrote: the fingerprint
    /// covers them). A record that names other paths is never restored.
    pub fn matches(&self, stage: &crate::spec::Stage) -> bool {
        self.outs.len() == stage.outs.len()
            && self
                .outs
                .iter()
                .zip(&stage.outs)
                .all(|(r, o)| r.path == o.path)
    }
}

impl Cache {
    fn run_path(&self, fingerprint: &Digest) -> PathBuf {
        let hex = fingerprint.to_hex();
        self.dir().join("runs").join(&hex[..2]).join(&hex[2..])
    }

    /// The recorded outputs of a run with this fingerprint, if every object
    /// they need is still in the cache.
    pub fn lookup_run(&self, fingerprint: &Digest) -> Option<RunRecord> {
        let bytes = std::fs::read(self.run_path(fingerprint)).ok()?;
        let record: RunRecord = serde_json::from_slice(&bytes).ok()?;
        record
            .outs
            .iter()
            .all(|o| self.contains(o))
            .then_some(record)
    }

    /// Takes the claim on running the stage of `fingerprint` (see the module
    /// docs). When another process holds it, calls `waiting` and blocks
    /// until that process is done with it.
    pub fn claim_run(
        &self,
        fingerprint: &Digest,
        waiting: impl FnOnce(),
    ) -> Result<RunClaim, CacheError> {
        let dir = self.dir().join(CLAIMS);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(fingerprint.to_hex());
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(io("lock", &path))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
        }
        Ok(RunClaim { _file: file })
    }

    /// Removes the claim files no process holds; returns how many.
    pub(super) fn remove_free_claims(&self) -> Result<usize, CacheError> {
        let dir = self.dir().join(CLAIMS);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // Held: its run is under way. Free: nobody needs the file (one
            // who opens it meanwhile at worst runs the stage twice).
            if file.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn record_run(&self, fingerprint: &Digest, record: &RunRecord) -> Result<(), CacheError> {
        let dest = self.run_path(fingerprint);
        let bytes = serde_json::to_vec_pretty(record).expect("a run record serializes");
        crate::atomic_write::write(&dest, &bytes, false).map_err(io("write", &dest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::LinkMode;
    use crate::hash::{Hasher, StatCache};
    use crate::paths::RelPath;
    use crate::workspace::Workspace;

    #[test]
    fn a_claim_makes_the_next_claimant_wait_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), LinkMode::Copy);
        let fp = Digest::of(b"fingerprint");
        let first = cache
            .claim_run(&fp, || panic!("nobody holds it yet"))
            .unwrap();
        // Another fingerprint is free.
        drop(
            cache
                .claim_run(&Digest::of(b"other"), || panic!("free"))
                .unwrap(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let waited = std::cell::Cell::new(false);
                let _second = cache.claim_run(&fp, || waited.set(true)).unwrap();
                tx.send(waited.get()).unwrap();
            });
            // Still blocked while the first claim is held.
            let held = std::time::Duration::from_millis(200);
            assert!(rx.recv_timeout(held).is_err());
            drop(first);
            assert_eq!(rx.recv_timeout(held * 25), Ok(true));
        });
        // Free claims are removed, held ones kept.
        let held = cache.claim_run(&fp, || panic!("free again")).unwrap();
        assert_eq!(cache.remove_free_claims().unwrap(), 1);
        assert!(dir
            .path()
            .join(".pipeline-cache/v1/claims")
            .join(fp.to_hex())
            .exists());
        drop(held);
        assert_eq!(cache.remove_free_claims().unwrap(), 1);
    }

    #[test]
    fn a_run_is_found_only_while_its_objects_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, LinkMode::Copy);
        let path = RelPath::parse("out.txt", None).unwrap();
        std::fs::write(root.join("out.txt"), b"result").unwrap();
        let hashed = Hasher::new(root, StatCache::in_memory())
            .hash_output(&path)
            .unwrap()
            .unwrap();
        let fp = Digest::of(b"fingerprint");
        let record = RunRecord {
            stage: "s".into(),
            outs: vec![PathRecord::new(path, &hashed)],
        };
        cache.record_run(&fp, &record).unwrap();
        assert_eq!(cache.lookup_run(&fp), None, "objects not stored yet");
        cache
            .store(
                &Workspace::open(root).unwrap(),
                &record.outs[0].path,
                &hashed,
            )
            .unwrap();
        assert_eq!(cache.lookup_run(&fp), Some(record));
        assert_eq!(cache.lookup_run(&Digest::of(b"other")), None);
    }
}
