//! What a remote is known to hold, recorded locally.
//!
//! Every object (or run-cache entry) this machine uploaded to a remote, or
//! found there, is recorded in `.pipeline-cache/v1/remotes/<id>.known`, so
//! that the next push of the same outputs asks the remote nothing: a push
//! with nothing new makes no request at all. A file that sits in a pack
//! ([`super::pack`]) is recorded with its place (pack, offset, size), so
//! that a directory pushed later that shares it can name that place
//! without asking. The record is a cache of the remote's state, not the
//! truth: `pipe push --verify` ignores it and asks the remote again (after
//! a `gc --cloud` elsewhere, say), and downloads never rely on it.
//!
//! The file is a magic line followed by records (a 32-byte hash, a tag
//! byte, and for a packed file its pack's hash, offset and size), rewritten
//! whole (atomically) as what is on disk, plus what this process learnt,
//! less what it found missing (`status --cloud`), so two processes pushing
//! at once lose nothing but can at worst forget an entry (costing one
//! request later). The first format (hashes only) is still read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::hash::Digest;

const MAGIC_V1: &[u8] = b"PIPEKNOWN1\n";
const MAGIC: &[u8] = b"PIPEKNOWN2\n";

/// Where a packed file is: `size` bytes at `offset` in the pack `pack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub pack: Digest,
    pub offset: u64,
    pub size: u64,
}

/// `None`: an object of its own; `Some`: in a pack.
type Entry = Option<Place>;

#[derive(Debug)]
pub struct Known {
    path: PathBuf,
    set: Mutex<HashMap<Digest, Entry>>,
    learnt: Mutex<Vec<(Digest, Entry)>>,
    /// Found missing since the last save.
    forgotten: Mutex<Vec<Digest>>,
}

fn read(path: &Path) -> HashMap<Digest, Entry> {
    let Ok(bytes) = std::fs::read(path) else {
        return HashMap::new();
    };
    if let Some(body) = bytes.strip_prefix(MAGIC_V1) {
        return body
            .chunks_exact(32)
            .map(|c| (Digest(c.try_into().expect("32 bytes")), None))
            .collect();
    }
    let Some(mut body) = bytes.strip_prefix(MAGIC) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let digest = |b: &[u8]| Digest(b.try_into().expect("32 bytes"));
    let number = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    // A record cut short (a torn write cannot happen: the file is replaced
    // whole) ends the reading.
    while body.len() >= 33 {
        let hash = digest(&body[..32]);
        match body[32] {
            0 => {
                out.insert(hash, None);
                body = &body[33..];
            }
            1 if body.len() >= 33 + 48 => {
                let r = &body[33..33 + 48];
                let place = Place {
                    pack: digest(&r[..32]),
                    offset: number(&r[32..40]),
                    size: number(&r[40..48]),
                };
                out.insert(hash, Some(place));
                body = &body[33 + 48..];
            }
            _ => break,
        }
    }
    out
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
        self.set.lock().expect("known lock").contains_key(hash)
    }

    /// Where the remote holds `hash`, if known: `Some(None)` as an object
    /// of its own, `Some(Some(place))` in a pack.
    pub fn place(&self, hash: &Digest) -> Option<Entry> {
        self.set.lock().expect("known lock").get(hash).copied()
    }

    pub fn len(&self) -> usize {
        self.set.lock().expect("known lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that the remote holds `hash` as an object of its own. A
    /// packed file stays recorded at its place (it is there too).
    pub fn insert(&self, hash: Digest) {
        let mut set = self.set.lock().expect("known lock");
        if let std::collections::hash_map::Entry::Vacant(e) = set.entry(hash) {
            e.insert(None);
            self.learnt.lock().expect("known lock").push((hash, None));
        }
    }

    /// Records that the remote holds `hash` at `place` in a pack.
    pub fn insert_packed(&self, hash: Digest, place: Place) {
        let mut set = self.set.lock().expect("known lock");
        if set.get(&hash) != Some(&Some(place)) {
            set.insert(hash, Some(place));
            self.learnt
                .lock()
                .expect("known lock")
                .push((hash, Some(place)));
        }
    }

    /// Forgets `hash` (the remote was found not to hold it), in the file
    /// too at the next save.
    pub fn remove(&self, hash: &Digest) {
        if self.set.lock().expect("known lock").remove(hash).is_some() {
            self.forgotten.lock().expect("known lock").push(*hash);
        }
    }

    /// Writes what was learnt and forgotten since the last save (merged
    /// with the file as it is now).
    pub fn save(&self) -> std::io::Result<()> {
        let learnt = std::mem::take(&mut *self.learnt.lock().expect("known lock"));
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
        let mut sorted: Vec<(&Digest, &Entry)> = all.iter().collect();
        sorted.sort();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 40 * sorted.len());
        bytes.extend_from_slice(MAGIC);
        for (d, entry) in sorted {
            bytes.extend_from_slice(d.as_bytes());
            match entry {
                None => bytes.push(0),
                Some(p) => {
                    bytes.push(1);
                    bytes.extend_from_slice(p.pack.as_bytes());
                    bytes.extend_from_slice(&p.offset.to_le_bytes());
                    bytes.extend_from_slice(&p.size.to_le_bytes());
                }
            }
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

    #[test]
    fn a_packed_file_keeps_its_place_and_the_first_format_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let place = Place {
            pack: Digest::of(b"pack"),
            offset: 7,
            size: 1 << 40,
        };
        let a = Known::load(dir.path(), "r");
        a.insert_packed(Digest::of(b"p"), place);
        a.insert(Digest::of(b"p")); // also found as an object: the place stays
        a.insert(Digest::of(b"l"));
        a.save().unwrap();
        let b = Known::load(dir.path(), "r");
        assert_eq!(b.place(&Digest::of(b"p")), Some(Some(place)));
        assert_eq!(b.place(&Digest::of(b"l")), Some(None));
        assert_eq!(b.place(&Digest::of(b"x")), None);

        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(Digest::of(b"old").as_bytes());
        std::fs::write(dir.path().join("remotes").join("v1.known"), v1).unwrap();
        let old = Known::load(dir.path(), "v1");
        assert_eq!(old.place(&Digest::of(b"old")), Some(None));
        assert_eq!(old.len(), 1);
    }
}
