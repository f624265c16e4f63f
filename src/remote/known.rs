//! What a remote is known to hold, recorded locally.
//!
//! Every object (or run-cache entry) this machine uploaded to a remote, or
//! found there, is recorded in `.pipeline-cache/v1/remotes/<id>.known`, so
//! that the next push of the same outputs asks the remote nothing: a push
//! with nothing new makes no request at all. The record is a cache of the
//! remote's state, not the truth: `pipe push --verify` ignores it and asks
//! the remote again (after a `gc --cloud` elsewhere, say), and downloads
//! never rely on it.
//!
//! The file is a magic line followed by 32-byte hashes, rewritten whole
//! (atomically) as what is on disk, plus what this process learnt, less
//! what it found missing (`status --cloud`), so two processes pushing at
//! once lose nothing but can at worst forget an entry (costing one request
//! later).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::hash::Digest;

const MAGIC: &[u8] = b"PIPEKNOWN1\n";

#[derive(Debug)]
pub struct Known {
    path: PathBuf,
    set: Mutex<HashSet<Digest>>,
    learnt: Mutex<Vec<Digest>>,
    /// Found missing since the last save.
    forgotten: Mutex<Vec<Digest>>,
}

fn read(path: &Path) -> HashSet<Digest> {
    let Ok(bytes) = std::fs::read(path) else {
        return HashSet::new();
    };
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return HashSet::new();
    };
    body.chunks_exact(32)
        .map(|c| Digest(c.try_into().expect("32 bytes")))
        .collect()
}

impl Known {
    /// The record of the remote `id` in the cache directory `cache_dir`.
    pub fn load(cache_dir: &Path, id: &str) -> Known {
        let path = cache_dir.join("remotes").join(format!("{id}.known"));
        Known {
            set: Mutex::new(read(&path)),
            path,
            learnt: Mutex::default(),
            forgotten: Mutex::default(),
        }
    }

    pub fn contains(&self, hash: &Digest) -> bool {
        self.set.lock().expect("known lock").contains(hash)
    }

    pub fn len(&self) -> usize {
        self.set.lock().expect("known lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that the remote holds `hash`.
    pub fn insert(&self, hash: Digest) {
        if self.set.lock().expect("known lock").insert(hash) {
            self.learnt.lock().expect("known lock").push(hash);
        }
    }

    /// Forgets `hash` (the remote was found not to hold it), in the file
    /// too at the next save.
    pub fn remove(&self, hash: &Digest) {
        if self.set.lock().expect("known lock").remove(hash) {
            self.forgotten.lock().expect("known lock").push(*hash);
        }
    }

    /// Writes what was learnt and forgotten since the last save (merged
    /// with the file as it is now).
    pub fn save(&self) -> std::io::Result<()> {
        let learnt: Vec<Digest> = std::mem::take(&mut *self.learnt.lock().expect("known lock"));
        let forgotten: Vec<Digest> =
            std::mem::take(&mut *self.forgotten.lock().expect("known lock"));
        if learnt.is_empty() && forgotten.is_empty() {
            return Ok(());
        }
        let mut all = read(&self.path);
        all.extend(learnt);
        for hash in &forgotten {
            all.remove(hash);
        }
        let mut sorted: Vec<&Digest> = all.iter().collect();
        sorted.sort();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 32 * sorted.len());
        bytes.extend_from_slice(MAGIC);
        for d in sorted {
            bytes.extend_from_slice(d.as_bytes());
        }
        crate::atomic_write::write(&self.path, &bytes, false)
    }

    /// Forgets everything (the remote's contents changed under it).
    pub fn clear(&self) -> std::io::Result<()> {
        self.set.lock().expect("known lock").clear();
        self.learnt.lock().expect("known lock").clear();
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_processes_saving_keep_both_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let a = Known::load(dir.path(), "r");
        let b = Known::load(dir.path(), "r");
        a.insert(Digest::of(b"a"));
        b.insert(Digest::of(b"b"));
        a.save().unwrap();
        b.save().unwrap();
        let c = Known::load(dir.path(), "r");
        assert!(c.contains(&Digest::of(b"a")) && c.contains(&Digest::of(b"b")));
        assert_eq!(c.len(), 2);
        // What one finds missing is forgotten in the file too.
        c.remove(&Digest::of(b"a"));
        c.save().unwrap();
        let d = Known::load(dir.path(), "r");
        assert!(!d.contains(&Digest::of(b"a")) && d.contains(&Digest::of(b"b")));
    }
}
