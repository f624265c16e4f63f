//! The stat cache: (inode, size, mtime, ctime) → BLAKE3, so that a file that
//! has not changed is never read again.
//!
//! An entry is keyed by the file's project path and trusted only while all
//! four stat fields match. The racy-mtime rule (as in git's index): a file
//! modified within [`RACY_WINDOW_NS`] of the moment it was hashed could be
//! modified again within the same timestamp tick without its stat changing,
//! so such an entry is not recorded; the file is hashed again next time, by
//! which point it is old enough to be trusted.
//!
//! On disk it is one binary file, `.pipeline-cache/v1/stat-cache`, written
//! by temp file + rename only when it changed. It is a pure cache: a missing,
//! truncated or foreign file is treated as empty and rebuilt, and two
//! processes writing it at once can only lose entries, never corrupt one.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use super::Digest;

const MAGIC: &[u8; 10] = b"PIPESTAT1\n";

/// Files modified less than this long before they were hashed are not cached.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// The stat fields an entry is trusted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatKey {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl StatKey {
    pub fn of(meta: &Metadata) -> StatKey {
        StatKey {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }
}

#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: FxHashMap<String, (StatKey, Digest)>,
    dirty: bool,
}

impl StatCache {
    /// An in-memory cache that is never saved.
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// Loads the cache stored at `file` (empty if absent or unreadable).
    pub fn load(file: &Path) -> StatCache {
        let entries = std::fs::read(file)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        StatCache {
            file: Some(file.to_path_buf()),
            entries,
            dirty: false,
        }
    }

    pub fn get(&self, path: &str, key: &StatKey) -> Option<Digest> {
        match self.entries.get(path) {
            Some((k, digest)) if k == key => Some(*digest),
            _ => None,
        }
    }

    /// Records a freshly computed hash, unless the file is too new to trust.
    pub fn insert(&mut self, path: String, key: StatKey, digest: Digest) {
        if now_ns() - key.mtime_ns < RACY_WINDOW_NS {
            return;
        }
        if self.entries.get(&path) != Some(&(key, digest)) {
            self.entries.insert(path, (key, digest));
            self.dirty = true;
        }
    }

    /// Records the hash of a file this process has just written and
    /// renamed into place itself: no other writer had it, so the racy
    /// window does not apply.
    pub fn insert_own_write(&mut self, path: String, key: StatKey, digest: Digest) {
        if self.entries.get(&path) != Some(&(key, digest)) {
            self.entries.insert(path, (key, digest));
            self.dirty = true;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the cache back if it changed (temp file + rename).
    pub fn save(&mut self) -> std::io::Result<()> {
        let (Some(file), true) = (&self.file, self.dirty) else {
            return Ok(());
        };
        crate::atomic_write::write(file, &encode(&self.entries), false)?;
        self.dirty = false;
        Ok(())
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn encode(entries: &FxHashMap<String, (StatKey, Digest)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * 96);
    out.extend_from_slice(MAGIC);
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (path, (k, digest)) in sorted {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&k.ino.to_le_bytes());
        out.extend_from_slice(&k.size.to_le_bytes());
        out.extend_from_slice(&k.mtime_ns.to_le_bytes());
        out.extend_from_slice(&k.ctime_ns.to_le_bytes());
        out.extend_from_slice(digest.as_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<FxHashMap<String, (StatKey, Digest)>> {
    let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let mut entries = FxHashMap::default();
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Some(head)
    }
    fn u64_of(b: &[u8]) -> u64 {
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(&mut rest, len)?).ok()?.to_string();
        let ino = u64_of(take(&mut rest, 8)?);
        let size = u64_of(take(&mut rest, 8)?);
        let mtime_ns = u64_of(take(&mut rest, 8)?) as i64;
        let ctime_ns = u64_of(take(&mut rest, 8)?) as i64;
        let digest = Digest(take(&mut rest, 32)?.try_into().ok()?);
        entries.insert(
            path,
            (
                StatKey {
                    ino,
                    size,
                    mtime_ns,
                    ctime_ns,
                },
                digest,
            ),
        );
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_key(ino: u64) -> StatKey {
        StatKey {
            ino,
            size: 10,
            mtime_ns: 1_000_000_000,
            ctime_ns: 1_000_000_000,
        }
    }

    #[test]
    fn round_trips_through_disk_and_checks_every_stat_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat-cache");
        let mut cache = StatCache::load(&file);
        let digest = Digest(*blake3::hash(b"x").as_bytes());
        cache.insert("a/b.txt".into(), old_key(7), digest);
        cache.save().unwrap();
        let loaded = StatCache::load(&file);
        assert_eq!(loaded.get("a/b.txt", &old_key(7)), Some(digest));
        assert_eq!(loaded.get("a/b.txt", &old_key(8)), None);
        let mut touched = old_key(7);
        touched.mtime_ns += 1;
        assert_eq!(loaded.get("a/b.txt", &touched), None);
    }

    #[test]
    fn does_not_record_racily_new_files() {
        let mut cache = StatCache::in_memory();
        let mut key = old_key(1);
        key.mtime_ns = now_ns();
        cache.insert("new.txt".into(), key, Digest([0; 32]));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_corrupt_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat-cache");
        std::fs::write(&file, b"PIPESTAT1\n\x05\x00\x00\x00ab").unwrap();
        assert!(StatCache::load(&file).is_empty());
    }
}
