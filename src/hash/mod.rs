//! Content hashes of files and directories.
//!
//! A file's hash is the BLAKE3 of its bytes. A directory's hash is the BLAKE3
//! of its [`Manifest`]: every file below it, sorted by relative path, with
//! its own hash and size (a Merkle hash over sorted entries). The manifest is
//! also what the cache stores for a directory output, so hashing a directory
//! and committing it share one walk.
//!
//! Symlinks: a dependency is read through its symlinks, as the stage reads
//! it, but only where they stay inside the project (or lead into the cache,
//! as `cache.link = symlink` makes them); a link that leads out is an error
//! naming it. An output is hashed as the stage left it: a symlink inside an
//! output directory is a manifest entry of its own (its target, not what it
//! points to), so that storing and restoring the directory never reads or
//! writes through it; a link into the cache counts as the object's file.
//! An output that is itself a symlink to anything but a cache object is an
//! error: pipe stores what a stage writes, not links to elsewhere.
//!
//! A directory's walk leaves out what `.dvcignore` files ignore (see
//! [`dvcignore`]), as DVC does.
//!
//! Speed: every file is looked up in the [`StatCache`] first, and read only
//! when its stat changed. Files of a directory are hashed in parallel (rayon);
//! a single large file is memory-mapped and hashed with BLAKE3's own
//! multi-threaded tree mode.

pub mod dvcignore;
pub mod stat_cache;

use std::fmt;
use std::fs::Metadata;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use dvcignore::DvcIgnore;
pub use stat_cache::{StatCache, StatKey};

use crate::paths::RelPath;

/// Files from this size on are memory-mapped and hashed on all cores.
const MMAP_THRESHOLD: u64 = 4 * 1024 * 1024;

/// A BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(text: &str) -> Option<Digest> {
        blake3::Hash::from_hex(text)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a BLAKE3 hash")))
    }
}

/// One file (or kept symlink) of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the directory, `/`-separated.
    pub path: String,
    pub hash: Digest,
    pub size: u64,
    /// A symlink inside an output directory, kept as a link: its target.
    /// `hash` is then the BLAKE3 of the target text and `size` 0; the cache
    /// stores no object for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl ManifestEntry {
    /// True for a symlink kept as a link (no object in the cache).
    pub fn is_link(&self) -> bool {
        self.link.is_some()
    }
}

/// The sorted list of files below a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// The canonical bytes: compact JSON of the sorted entries.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serializes")
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.to_bytes())
    }

    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The entries that are files, with an object in the cache.
    pub fn files(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| !e.is_link())
    }
}

/// What a path holds, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub hash: Digest,
    pub size: u64,
    /// `Some(manifest)` for a directory.
    pub manifest: Option<Manifest>,
}

impl Hashed {
    pub fn nfiles(&self) -> Option<u64> {
        self.manifest.as_ref().map(|m| m.entries.len() as u64)
    }

    pub fn is_dir(&self) -> bool {
        self.manifest.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read `{path}`: {source}")]
pub struct HashError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> HashError + '_ {
    move |source| HashError {
        path: path.to_path_buf(),
        source,
    }
}

/// Hashes project paths, consulting and feeding a stat cache.
#[derive(Debug)]
pub struct Hasher {
    root: PathBuf,
    /// Read-locked on the warm path (every file a hit), so the threads
    /// hashing a directory do not queue on it.
    cache: RwLock<StatCache>,
    /// Where symlinks may lead (canonical): the project root, and the
    /// cache's objects (which `cache.link = symlink` links to).
    inside: Vec<PathBuf>,
    /// The cache's objects directory (canonical), if known.
    objects: Option<PathBuf>,
    /// Parent directories already found to resolve inside the project.
    parents_inside: RwLock<rustc_hash::FxHashSet<String>>,
    /// What directory walks leave out.
    ignore: DvcIgnore,
}

/// Whether a path is read as a stage's input or its output (see the module
/// docs for what that changes for symlinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dep,
    Output,
}

impl Hasher {
    pub fn new(root: &Path, cache: StatCache) -> Hasher {
        Hasher {
            root: root.to_path_buf(),
            cache: RwLock::new(cache),
            inside: root.canonicalize().into_iter().collect(),
            objects: None,
            parents_inside: RwLock::default(),
            ignore: DvcIgnore::new(root),
        }
    }

    /// Symlinks into `objects` (the cache's objects directory) are the
    /// cache's links: followed, and allowed for deps and outputs.
    pub fn with_objects(mut self, objects: &Path) -> Hasher {
        // Not created here: a read-only command writes no cache.
        let canonical = objects
            .canonicalize()
            .unwrap_or_else(|_| objects.to_path_buf());
        self.inside.push(canonical.clone());
        self.objects = Some(canonical);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hashes a dependency, file or directory, reading through symlinks
    /// that stay inside the project; `Ok(None)` if the path does not exist.
    pub fn hash_dep(&self, path: &RelPath) -> Result<Option<Hashed>, HashError> {
        self.hash(path, Role::Dep)
    }

    /// Hashes an output as the stage left it (symlinks inside it are kept
    /// as links); `Ok(None)` if the path does not exist.
    pub fn hash_output(&self, path: &RelPath) -> Result<Option<Hashed>, HashError> {
        self.hash(path, Role::Output)
    }

    fn hash(&self, path: &RelPath, role: Role) -> Result<Option<Hashed>, HashError> {
        let abs = path.to_path(&self.root);
        let lmeta = match std::fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(&abs)(e)),
        };
        self.check_parent(path, &abs)?;
        let meta = if lmeta.file_type().is_symlink() {
            let into_cache = self.leads_into_objects(&abs);
            if role == Role::Output && !into_cache {
                let target = std::fs::read_link(&abs).unwrap_or_default();
                return Err(err(&abs)(std::io::Error::other(format!(
                    "the output is a symlink (-> {}); pipe stores the files a stage writes, not links to elsewhere: write or copy the file itself",
                    target.display()
                ))));
            }
            if !into_cache {
                self.check_inside(&abs, path)?;
            }
            match std::fs::metadata(&abs) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(err(&abs)(e)),
            }
        } else {
            lmeta
        };
        if let Some(kind) = special_kind(&meta) {
            // Opening a FIFO would wait for a writer, forever.
            return Err(err(&abs)(std::io::Error::other(format!(
                "it is {kind}, not a file or directory: pipe hashes what a stage reads and writes, so deps and outputs must be files or directories"
            ))));
        }
        if meta.is_dir() {
            let manifest = self.walk(path, role)?;
            Ok(Some(Hashed {
                hash: manifest.digest(),
                size: manifest.size(),
                manifest: Some(manifest),
            }))
        } else {
            let hash = self.file(path.as_str(), &abs, &meta)?;
            Ok(Some(Hashed {
                hash,
                size: meta.len(),
                manifest: None,
            }))
        }
    }

    /// An error unless the parent directory of `path` resolves inside the
    /// project (checked once per directory).
    fn check_parent(&self, path: &RelPath, abs: &Path) -> Result<(), HashError> {
        let Some(parent) = path.parent().filter(|p| !p.is_root()) else {
            return Ok(());
        };
        if self
            .parents_inside
            .read()
            .expect("parents lock")
            .contains(parent.as_str())
        {
            return Ok(());
        }
        if let Err(e) = self.check_inside(&parent.to_path(&self.root), &parent) {
            // Name the path asked for, not its parent.
            return Err(HashError {
                path: abs.to_path_buf(),
                source: e.source,
            });
        }
        self.parents_inside
            .write()
            .expect("parents lock")
            .insert(parent.as_str().to_string());
        Ok(())
    }

    /// An error unless `abs` (the project path `rel`) resolves inside the
    /// project or the cache.
    fn check_inside(&self, abs: &Path, rel: &RelPath) -> Result<(), HashError> {
        let Ok(real) = abs.canonicalize() else {
            return Ok(()); // a dangling link: reading it says so
        };
        if self.inside.is_empty() || self.inside.iter().any(|dir| real.starts_with(dir)) {
            return Ok(());
        }
        Err(err(abs)(std::io::Error::other(format!(
            "it leads outside the project{}; pipe does not follow links out of the project: copy the data in, or make the link point inside",
            crate::workspace::describe_escape(&self.root, rel)
        ))))
    }

    /// True when the symlink at `abs` points at a cache object.
    fn leads_into_objects(&self, abs: &Path) -> bool {
        match (&self.objects, abs.canonicalize()) {
            (Some(objects), Ok(real)) => real.starts_with(objects),
            _ => false,
        }
    }

    /// The manifest of the directory at `dir`, read as a dependency.
    pub fn manifest(&self, dir: &RelPath) -> Result<Manifest, HashError> {
        self.walk(dir, Role::Dep)
    }

    fn walk(&self, dir: &RelPath, role: Role) -> Result<Manifest, HashError> {
        let abs = dir.to_path(&self.root);
        let mut files = Vec::new();
        let mut links = Vec::new();
        let walk = walkdir::WalkDir::new(&abs)
            .follow_links(role == Role::Dep)
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 {
                    return true;
                }
                let bytes = e.path().as_os_str().as_encoded_bytes();
                let rel = String::from_utf8_lossy(
                    bytes.get(abs.as_os_str().len() + 1..).unwrap_or_default(),
                );
                !self
                    .ignore
                    .is_ignored(dir.join(&rel).as_str(), e.file_type().is_dir())
            });
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&abs).to_path_buf();
                HashError {
                    path,
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("symlink loop")),
                }
            })?;
            // The walk's paths are `abs` + `/` + the relative path: cut
            // the bytes (`Path::strip_prefix` parses every component).
            let rel_of = |p: &Path| {
                let bytes = p.as_os_str().as_encoded_bytes();
                String::from_utf8_lossy(bytes.get(abs.as_os_str().len() + 1..).unwrap_or_default())
                    .replace('\\', "/")
            };
            if entry.path_is_symlink() && entry.depth() > 0 {
                match role {
                    Role::Dep => {
                        self.check_inside(entry.path(), &dir.join(&rel_of(entry.path())))?
                    }
                    Role::Output if self.leads_into_objects(entry.path()) => {
                        files.push((rel_of(entry.path()), entry.into_path()));
                        continue;
                    }
                    Role::Output => {
                        let target = std::fs::read_link(entry.path()).map_err(err(entry.path()))?;
                        let target = target.to_str().ok_or_else(|| {
                            err(entry.path())(std::io::Error::other(
                                "the symlink's target is not UTF-8 text",
                            ))
                        })?;
                        links.push((rel_of(entry.path()), target.to_string()));
                        continue;
                    }
                }
            }
            if entry.file_type().is_file() {
                files.push((rel_of(entry.path()), entry.into_path()));
            }
        }
        let mut entries = files
            .into_par_iter()
            .map(|(rel, path)| {
                let meta = std::fs::metadata(&path).map_err(err(&path))?;
                let key = dir.join(&rel);
                let hash = self.file(key.as_str(), &path, &meta)?;
                Ok(ManifestEntry {
                    path: rel,
                    hash,
                    size: meta.len(),
                    link: None,
                })
            })
            .collect::<Result<Vec<_>, HashError>>()?;
        entries.extend(links.into_iter().map(|(rel, target)| ManifestEntry {
            path: rel,
            hash: Digest::of(target.as_bytes()),
            size: 0,
            link: Some(target),
        }));
        // The order of a walk sorted by name in each directory (the order
        // the manifest has always had), without `Path::file_name` on each
        // comparison: names compared directory level by level, as bytes.
        entries.sort_unstable_by(|a, b| {
            a.path
                .as_bytes()
                .split(|&c| c == b'/')
                .cmp(b.path.as_bytes().split(|&c| c == b'/'))
        });
        Ok(Manifest { entries })
    }

    fn file(&self, key: &str, abs: &Path, meta: &Metadata) -> Result<Digest, HashError> {
        let stat = StatKey::of(meta);
        if let Some(d) = self.cache.read().expect("stat cache lock").get(key, &stat) {
            return Ok(d);
        }
        let digest = hash_file(abs, meta.len())?;
        self.cache
            .write()
            .expect("stat cache lock")
            .insert(key.to_string(), stat, digest);
        Ok(digest)
    }

    /// Saves the stat cache if it learnt anything.
    pub fn save(&self) -> std::io::Result<()> {
        self.cache.write().expect("stat cache lock").save()
    }
}

/// What a path that is neither a file nor a directory is, for messages.
fn special_kind(meta: &Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    Some(if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        return None;
    })
}

/// The BLAKE3 of a file's bytes.
pub fn hash_file(path: &Path, len: u64) -> Result<Digest, HashError> {
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path).map_err(err(path))?;
    } else {
        let mut file = std::fs::File::open(path).map_err(err(path))?;
        let mut buf = vec![0u8; (len as usize).clamp(1, 256 * 1024)];
        loop {
            let n = file.read(&mut buf).map_err(err(path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(Digest(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Hasher) {
        let dir = tempfile::tempdir().unwrap();
        let hasher = Hasher::new(dir.path(), StatCache::in_memory());
        (dir, hasher)
    }

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    #[test]
    fn a_file_hash_is_the_blake3_of_its_bytes() {
        let (dir, h) = setup();
        std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
        let got = h.hash_dep(&rel("a.txt")).unwrap().unwrap();
        assert_eq!(got.hash.to_hex(), blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(got.size, 5);
        assert!(h.hash_dep(&rel("missing")).unwrap().is_none());
    }

    #[test]
    fn a_directory_hash_covers_names_and_contents_in_sorted_order() {
        let (dir, h) = setup();
        let d = dir.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("b.txt"), b"b").unwrap();
        std::fs::write(d.join("sub/a.txt"), b"a").unwrap();
        let first = h.hash_dep(&rel("d")).unwrap().unwrap();
        let names: Vec<_> = first
            .manifest
            .as_ref()
            .unwrap()
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(names, ["b.txt", "sub/a.txt"]);
        assert_eq!(first.nfiles(), Some(2));
        assert_eq!(first.size, 2);

        // Renaming a file changes the hash even with the same bytes.
        std::fs::rename(d.join("b.txt"), d.join("c.txt")).unwrap();
        let renamed = h.hash_dep(&rel("d")).unwrap().unwrap();
        assert_ne!(first.hash, renamed.hash);

        // The same tree elsewhere has the same hash.
        let e = dir.path().join("e");
        std::fs::create_dir_all(e.join("sub")).unwrap();
        std::fs::write(e.join("c.txt"), b"b").unwrap();
        std::fs::write(e.join("sub/a.txt"), b"a").unwrap();
        assert_eq!(h.hash_dep(&rel("e")).unwrap().unwrap().hash, renamed.hash);
    }

    #[test]
    fn a_manifest_lists_files_as_a_walk_sorted_by_name_in_each_directory() {
        // `a-c` sorts before `a/…` as a string ('-' < '/'), but after the
        // directory `a` by name: the manifest keeps the directory order.
        let (dir, h) = setup();
        let d = dir.path().join("d");
        for file in ["a/b", "a/z/y", "a-c", "a0", "B", "a/é", "ab/c"] {
            let path = d.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        let manifest = h.manifest(&rel("d")).unwrap();
        let names: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
        let walked: Vec<String> = walkdir::WalkDir::new(&d)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(&d)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, walked);
        assert_eq!(names, ["B", "a/b", "a/z/y", "a/é", "a-c", "a0", "ab/c"]);
    }

    #[test]
    fn large_files_hash_the_same_through_mmap() {
        let (dir, h) = setup();
        let bytes: Vec<u8> = (0..(MMAP_THRESHOLD as usize + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(dir.path().join("big.bin"), &bytes).unwrap();
        let got = h.hash_dep(&rel("big.bin")).unwrap().unwrap();
        assert_eq!(got.hash, Digest::of(&bytes));
    }
}
