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

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{io, Cache, CacheError};
use crate::hash::Digest;
use crate::lock::PathRecord;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub stage: String,
    pub outs: Vec<PathRecord>,
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

    pub fn record_run(&self, fingerprint: &Digest, record: &RunRecord) -> Result<(), CacheError> {
        let dest = self.run_path(fingerprint);
        let parent = dest.parent().expect("runs have a parent");
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".run.")
            .tempfile_in(parent)
            .map_err(io("write", parent))?;
        let bytes = serde_json::to_vec_pretty(record).expect("a run record serializes");
        tmp.write_all(&bytes).map_err(io("write", &dest))?;
        tmp.persist(&dest).map_err(|e| CacheError::Io {
            action: "write",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::LinkMode;
    use crate::hash::{Hasher, StatCache};
    use crate::paths::RelPath;

    #[test]
    fn a_run_is_found_only_while_its_objects_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, LinkMode::Copy);
        let path = RelPath::parse("out.txt", None).unwrap();
        std::fs::write(root.join("out.txt"), b"result").unwrap();
        let hashed = Hasher::new(root, StatCache::in_memory())
            .hash(&path)
            .unwrap()
            .unwrap();
        let fp = Digest::of(b"fingerprint");
        let record = RunRecord {
            stage: "s".into(),
            outs: vec![PathRecord::new(path, &hashed)],
        };
        cache.record_run(&fp, &record).unwrap();
        assert_eq!(cache.lookup_run(&fp), None, "objects not stored yet");
        cache.store(root, &record.outs[0].path, &hashed).unwrap();
        assert_eq!(cache.lookup_run(&fp), Some(record));
        assert_eq!(cache.lookup_run(&Digest::of(b"other")), None);
    }
}
