//! `pipe gc`: remove from the cache what nothing refers to.
//!
//! What is kept: every object (and directory manifest) of the roots the
//! caller gives (the outputs the locks in `pipe gc`'s scope record, see
//! [`crate::gc`]), and, with `keep_runs`, every object a
//! run-cache entry records. Without `keep_runs` the run-cache entries are
//! dropped too, except those whose outputs are all kept. The staging areas
//! of processes that are gone are always removed (see `staging`), and so
//! are damaged objects set aside in `quarantine/` and the run claims no
//! process holds (see `runs`).
//!
//! Objects are deleted one by one; an interrupted gc leaves a cache with
//! fewer objects, which is still valid (a run-cache hit checks that its
//! objects exist, and a missing output is rebuilt).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::runs::RunRecord;
use super::{io, Cache, CacheError};
use crate::hash::Digest;
use crate::lock::PathRecord;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub objects_removed: usize,
    pub bytes_removed: u64,
    pub runs_removed: usize,
    pub objects_kept: usize,
    /// Damaged objects set aside in `quarantine/` (removed, or with `dry`,
    /// to be removed).
    pub quarantined_removed: usize,
}

impl Cache {
    /// Removes unreferenced objects. `roots` are the records to keep (from
    /// the locks in scope). With `dry`, only counts what would go.
    pub fn gc(
        &self,
        roots: &[PathRecord],
        keep_runs: bool,
        dry: bool,
    ) -> Result<GcReport, CacheError> {
        let mut keep: HashSet<PathBuf> = HashSet::new();
        for r in roots {
            self.mark(r, &mut keep);
        }
        let mut report = GcReport::default();
        let runs_dir = self.dir().join("runs");
        for (path, record) in self.run_records(&runs_dir) {
            let all_kept = record.outs.iter().all(|o| {
                let mut probe = HashSet::new();
                self.mark(o, &mut probe);
                probe.is_subset(&keep)
            });
            if keep_runs {
                for o in &record.outs {
                    self.mark(o, &mut keep);
                }
            } else if !all_kept {
                report.runs_removed += 1;
                if !dry {
                    std::fs::remove_file(&path).map_err(io("remove", &path))?;
                }
            }
        }
        let objects = self.dir().join("objects");
        for entry in walkdir::WalkDir::new(&objects).min_depth(2).max_depth(2) {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            if keep.contains(entry.path()) {
                report.objects_kept += 1;
                continue;
            }
            report.objects_removed += 1;
            report.bytes_removed += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if !dry {
                std::fs::remove_file(entry.path()).map_err(io("remove", entry.path()))?;
            }
        }
        if !dry {
            self.clean_staging();
            self.remove_free_claims()?;
        }
        let quarantine = self.dir().join(super::verify::QUARANTINE);
        if let Ok(entries) = std::fs::read_dir(&quarantine) {
            for entry in entries.flatten() {
                report.quarantined_removed += 1;
                if !dry {
                    super::remove_path(&entry.path()).map_err(io("remove", &entry.path()))?;
                }
            }
        }
        Ok(report)
    }

    /// Adds the object files needed to restore `record` to `keep`.
    fn mark(&self, record: &PathRecord, keep: &mut HashSet<PathBuf>) {
        if !record.is_dir() {
            keep.insert(self.object_path(&record.blake3));
            return;
        }
        keep.insert(self.manifest_path(&record.blake3));
        if let Ok(manifest) = self.manifest(&record.blake3) {
            for e in manifest.files() {
                keep.insert(self.object_path(&e.hash));
            }
        }
    }

    fn run_records(&self, runs_dir: &Path) -> Vec<(PathBuf, RunRecord)> {
        walkdir::WalkDir::new(runs_dir)
            .min_depth(2)
            .max_depth(2)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let record = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())?;
                Some((e.into_path(), record))
            })
            .collect()
    }

    /// True if an object with this hash is stored (for tests and tools).
    pub fn has_object(&self, hash: &Digest) -> bool {
        self.object_path(hash).is_file()
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
    fn keeps_what_the_lock_records_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, LinkMode::Copy);
        let hasher = Hasher::new(root, StatCache::in_memory());
        let mut records = Vec::new();
        for (name, bytes) in [("kept.txt", &b"keep me"[..]), ("old.txt", &b"old"[..])] {
            std::fs::write(root.join(name), bytes).unwrap();
            let path = RelPath::parse(name, None).unwrap();
            let hashed = hasher.hash_output(&path).unwrap().unwrap();
            cache
                .store(&Workspace::open(root).unwrap(), &path, &hashed)
                .unwrap();
            let record = PathRecord::new(path, &hashed);
            cache
                .record_run(
                    &Digest::of(name.as_bytes()),
                    &RunRecord {
                        stage: name.into(),
                        outs: vec![record.clone()],
                    },
                )
                .unwrap();
            records.push(record);
        }
        let dry = cache.gc(&records[..1], false, true).unwrap();
        assert_eq!((dry.objects_removed, dry.runs_removed), (1, 1));
        assert!(
            cache.has_object(&records[1].blake3),
            "a dry run removes nothing"
        );

        let with_runs = cache.gc(&records[..1], true, false).unwrap();
        assert_eq!(
            with_runs.objects_removed, 0,
            "run-cache entries keep their objects"
        );

        let report = cache.gc(&records[..1], false, false).unwrap();
        assert_eq!(report.objects_removed, 1);
        assert_eq!(report.bytes_removed, 3);
        assert!(cache.has_object(&records[0].blake3));
        assert!(!cache.has_object(&records[1].blake3));
        assert!(cache.lookup_run(&Digest::of(b"kept.txt")).is_some());
        assert!(cache.lookup_run(&Digest::of(b"old.txt")).is_none());
    }
}
