//! Verifying objects before they are trusted.
//!
//! An object's name is the BLAKE3 of its content, so it can be checked. It
//! is, every time it is about to reach the workspace or a downstream stage
//! (restore, checkout, run-cache hits, metrics read from the cache) and
//! before an existing object is reused when a stage's output is stored
//! again. Damage that happens after an object was written (a bit flip, a
//! hand edit through a hard link, a truncated copy, a remote that lied) is
//! found there and never spreads.
//!
//! Rehashing every object on every restore would cost a read of all of
//! them, so a verified object is remembered in `verified`: object → (inode,
//! size, mtime) when it was found intact, in the stat cache's format. Any
//! write to the object changes its mtime, so a remembered entry that still
//! matches the object's stat proves it unchanged. The ctime is left out:
//! linking an object into the workspace (hardlink mode) changes it without
//! touching the content.
//!
//! A damaged object is moved to `quarantine/` (kept for inspection, and
//! out of the way), and the caller is told with [`CacheError::Damaged`]:
//! `repro` then runs the stage instead of restoring it, and storing the
//! output again puts a good object in its place. `pipe cache verify`
//! checks the whole cache ([`Cache::verify_all`]).

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rayon::prelude::*;

use super::{io, Cache, CacheError};
use crate::hash::{hash_file, Digest, Manifest, StatCache, StatKey};
use crate::paths::RelPath;

/// The file of the verified-objects index, in the cache directory.
pub const VERIFIED_FILE: &str = "verified";
/// Where damaged objects are moved, in the cache directory.
pub const QUARANTINE: &str = "quarantine";

/// The stat of an object that proves it unchanged since it was verified.
fn key(meta: &std::fs::Metadata) -> StatKey {
    StatKey {
        ctime_ns: 0,
        ..StatKey::of(meta)
    }
}

/// The verified-objects index, loaded on first use.
#[derive(Debug, Default)]
pub(super) struct Verified(std::sync::OnceLock<RwLock<StatCache>>);

impl Verified {
    fn get(&self, cache_dir: &Path) -> &RwLock<StatCache> {
        self.0
            .get_or_init(|| RwLock::new(StatCache::load(&cache_dir.join(VERIFIED_FILE))))
    }
}

/// One object of the cache found damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedObject {
    pub hash: Digest,
    /// A directory manifest (`….dir`) rather than a file's content.
    pub manifest: bool,
    /// Where it was moved.
    pub moved_to: PathBuf,
}

/// What [`Cache::verify_all`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub objects: usize,
    pub manifests: usize,
    pub bytes: u64,
    pub damaged: Vec<DamagedObject>,
    /// Files in `objects/` that are not named as objects are.
    pub strays: Vec<PathBuf>,
}

impl Cache {
    /// Checks that the object for `hash` is there and intact; `path` is the
    /// output it is for (for messages). A damaged object is quarantined.
    pub fn check_object(&self, hash: &Digest, path: &RelPath) -> Result<(), CacheError> {
        let object = self.object_path(hash);
        let meta = match std::fs::metadata(&object) {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                return Err(CacheError::MissingObject {
                    path: path.clone(),
                    hash: *hash,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::MissingObject {
                    path: path.clone(),
                    hash: *hash,
                })
            }
            Err(e) => return Err(io("read", &object)(e)),
        };
        let hex = hash.to_hex();
        let index = self.shared.verified.get(&self.dir);
        if index.read().expect("verified lock").get(&hex, &key(&meta)) == Some(*hash) {
            return Ok(());
        }
        let found = hash_file(&object, meta.len()).map_err(|e| io("read", &object)(e.source))?;
        if found != *hash {
            let moved_to = self.quarantine(&object, &hex)?;
            return Err(CacheError::Damaged {
                path: path.clone(),
                hash: *hash,
                moved_to,
            });
        }
        index
            .write()
            .expect("verified lock")
            .insert(hex, key(&meta), found);
        Ok(())
    }

    /// Remembers an object this process has just written and checked.
    pub(super) fn remember_verified(&self, hash: &Digest, object: &Path) {
        if let Ok(meta) = std::fs::metadata(object) {
            self.shared
                .verified
                .get(&self.dir)
                .write()
                .expect("verified lock")
                .insert_own_write(hash.to_hex(), key(&meta), *hash);
        }
    }

    /// Saves what was learnt about verified objects (a cache: losing it
    /// costs a rehash, never correctness).
    pub fn save_verified(&self) {
        if let Some(index) = self.shared.verified.0.get() {
            let _ = index.write().expect("verified lock").save();
        }
    }

    /// Moves a damaged object (or manifest) out of the way; returns where.
    pub(super) fn quarantine(&self, object: &Path, name: &str) -> Result<PathBuf, CacheError> {
        let dir = self.dir.join(QUARANTINE);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let dest = dir.join(name);
        match std::fs::rename(object, &dest) {
            Ok(()) => Ok(dest),
            // Another process moved it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dest),
            Err(e) => Err(io("move aside", object)(e)),
        }
    }

    /// Rehashes every object and manifest of the cache (on all cores),
    /// quarantining the damaged ones.
    pub fn verify_all(&self) -> Result<VerifyReport, CacheError> {
        let objects = self.dir.join("objects");
        let mut files = Vec::new();
        let mut strays = Vec::new();
        for entry in walkdir::WalkDir::new(&objects).min_depth(1) {
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_dir() {
                continue;
            }
            match name_of(&objects, entry.path()) {
                Some(named) => files.push((entry.into_path(), named)),
                None => strays.push(entry.into_path()),
            }
        }
        let index = self.shared.verified.get(&self.dir);
        let results: Vec<Result<Checked, CacheError>> = files
            .par_iter()
            .map(|(path, (hash, manifest))| {
                let meta = std::fs::metadata(path).map_err(io("read", path))?;
                let intact = if *manifest {
                    std::fs::read(path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
                        .is_some_and(|m| m.digest() == *hash)
                } else {
                    hash_file(path, meta.len()).map_err(|e| io("read", path)(e.source))? == *hash
                };
                if intact {
                    if !manifest {
                        index.write().expect("verified lock").insert(
                            hash.to_hex(),
                            key(&meta),
                            *hash,
                        );
                    }
                    return Ok((meta.len(), *manifest, None));
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let prefix = path
                    .parent()
                    .and_then(Path::file_name)
                    .unwrap_or_default()
                    .to_string_lossy();
                let moved_to = self.quarantine(path, &format!("{prefix}{name}"))?;
                Ok((
                    meta.len(),
                    *manifest,
                    Some(DamagedObject {
                        hash: *hash,
                        manifest: *manifest,
                        moved_to,
                    }),
                ))
            })
            .collect();
        let mut report = VerifyReport {
            strays,
            ..VerifyReport::default()
        };
        for r in results {
            let (bytes, manifest, damaged) = r?;
            if manifest {
                report.manifests += 1;
            } else {
                report.objects += 1;
                report.bytes += bytes;
            }
            report.damaged.extend(damaged);
        }
        report.damaged.sort_by_key(|d| d.hash);
        self.save_verified();
        Ok(report)
    }
}

/// One object checked: its size, whether it is a manifest, and the damage
/// found.
type Checked = (u64, bool, Option<DamagedObject>);

/// The hash an object file is named for, and whether it is a manifest.
fn name_of(objects: &Path, path: &Path) -> Option<(Digest, bool)> {
    let rel = path.strip_prefix(objects).ok()?.to_str()?;
    let (prefix, rest) = rel.split_once('/')?;
    let (rest, manifest) = match rest.strip_suffix(".dir") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    if prefix.len() != 2 || rest.contains('/') {
        return None;
    }
    Digest::from_hex(&format!("{prefix}{rest}")).map(|d| (d, manifest))
}
