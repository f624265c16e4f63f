//! The content-addressed cache in `.pipeline-cache/v1/`.
//!
//! ```text
//! .pipeline-cache/v1/
//!   objects/ab/cdef…        one read-only file per BLAKE3 content hash
//!   objects/ab/cdef….dir    a directory's manifest (itself content-addressed)
//!   runs/ab/cdef…           run cache: stage fingerprint → its outputs
//!   claims/<fingerprint>    locked while a process runs that stage
//!   stat-cache              see `hash::stat_cache`
//!   tmp/                    staging area; leftovers are garbage
//!   repro.lock              held by the `pipe repro` that is running
//! ```
//!
//! Every object is written to `tmp/` first and renamed into place, so an
//! object that exists is complete: a crash leaves at worst a stray temp file.
//! Objects are never modified after they are written; that is what makes it
//! safe to link them into the workspace and to share them between
//! experiments. The `v1` in the path is the format version (as uv names its
//! cache buckets): a format change gets a new directory instead of a
//! migration.

pub mod gc;
pub mod link;
pub mod runs;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use link::LinkMode;

use crate::hash::{Digest, Hashed, Manifest};
use crate::lock::PathRecord;
use crate::paths::RelPath;

pub const CACHE_DIR: &str = ".pipeline-cache";

/// Creates a project's `.pipeline-cache/` (if needed) with a `.gitignore`
/// that keeps all of it out of git (as DVC's `.dvc/.gitignore`).
pub fn ensure_root(cache_root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_root)?;
    let ignore = cache_root.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# Created by pipe: the cache is not for git.\n*\n")?;
    }
    Ok(())
}
pub const VERSION_DIR: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache: cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache: object {hash} for `{path}` is missing")]
    MissingObject { path: RelPath, hash: Digest },
    #[error("cache: manifest {hash} is damaged: {message}")]
    BadManifest { hash: Digest, message: String },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    link: LinkMode,
}

impl Cache {
    /// The cache of the project at `root` (created lazily on first write).
    pub fn new(root: &Path, link: LinkMode) -> Cache {
        Cache {
            dir: root.join(CACHE_DIR).join(VERSION_DIR),
            link,
        }
    }

    /// A cache in `dir` (the `v1` directory of another project's cache).
    pub fn at(dir: PathBuf, link: LinkMode) -> Cache {
        Cache { dir, link }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn link_mode(&self) -> LinkMode {
        self.link
    }

    pub fn object_path(&self, hash: &Digest) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    pub fn manifest_path(&self, hash: &Digest) -> PathBuf {
        let mut p = self.object_path(hash);
        p.as_mut_os_string().push(".dir");
        p
    }

    fn tmp_dir(&self) -> Result<PathBuf, CacheError> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
        Ok(tmp)
    }

    /// Moves a finished temp file into `dest` read-only, unless an object
    /// is already there (same hash, same bytes).
    fn install(&self, tmp: tempfile::TempPath, dest: &Path) -> Result<(), CacheError> {
        if dest.exists() {
            return Ok(());
        }
        let parent = dest.parent().expect("objects have a parent");
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        set_read_only(&tmp).map_err(io("protect", &tmp))?;
        tmp.persist(dest).map_err(|e| CacheError::Io {
            action: "store",
            path: dest.to_path_buf(),
            source: e.error,
        })
    }

    /// Stores the file at `abs` whose hash is `hash`.
    fn store_file(&self, abs: &Path, hash: &Digest) -> Result<(), CacheError> {
        let dest = self.object_path(hash);
        if dest.exists() {
            return Ok(());
        }
        let tmp_dir = self.tmp_dir()?;
        let tmp = tempfile::Builder::new()
            .prefix("obj.")
            .make_in(&tmp_dir, |p| {
                reflink_copy::reflink_or_copy(abs, p).map(|_| ())
            })
            .map_err(io("copy", abs))?
            .into_temp_path();
        self.install(tmp, &dest)
    }

    fn store_manifest(&self, manifest: &Manifest, hash: &Digest) -> Result<(), CacheError> {
        let dest = self.manifest_path(hash);
        if dest.exists() {
            return Ok(());
        }
        let tmp_dir = self.tmp_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix("dir.")
            .tempfile_in(&tmp_dir)
            .map_err(io("write", &tmp_dir))?;
        tmp.write_all(&manifest.to_bytes())
            .map_err(io("write", tmp.path()))?;
        self.install(tmp.into_temp_path(), &dest)
    }

    /// Reads a directory manifest from the cache.
    pub fn manifest(&self, hash: &Digest) -> Result<Manifest, CacheError> {
        let path = self.manifest_path(hash);
        let bytes = std::fs::read(&path).map_err(io("read", &path))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| CacheError::BadManifest {
                hash: *hash,
                message: e.to_string(),
            })?;
        if manifest.digest() != *hash {
            return Err(CacheError::BadManifest {
                hash: *hash,
                message: "its content does not match its name".into(),
            });
        }
        Ok(manifest)
    }

    /// Stores an output that has just been hashed and, in hardlink/symlink
    /// mode, replaces the workspace copy with a link to the object.
    pub fn store(&self, root: &Path, path: &RelPath, hashed: &Hashed) -> Result<(), CacheError> {
        let abs = path.to_path(root);
        match &hashed.manifest {
            None => {
                self.store_file(&abs, &hashed.hash)?;
                self.relink(&abs, &hashed.hash)?;
            }
            Some(manifest) => {
                for e in &manifest.entries {
                    let file = abs.join(&e.path);
                    self.store_file(&file, &e.hash)?;
                    self.relink(&file, &e.hash)?;
                }
                self.store_manifest(manifest, &hashed.hash)?;
            }
        }
        Ok(())
    }

    fn relink(&self, abs: &Path, hash: &Digest) -> Result<(), CacheError> {
        if !self.link.shares_object() {
            return Ok(());
        }
        let object = self.object_path(hash);
        std::fs::remove_file(abs).map_err(io("replace", abs))?;
        self.link.link(&object, abs).map_err(io("link", abs))
    }

    /// True when every object needed to restore `record` is in the cache.
    pub fn contains(&self, record: &PathRecord) -> bool {
        if !record.is_dir() {
            return self.object_path(&record.blake3).is_file();
        }
        match self.manifest(&record.blake3) {
            Ok(m) => m
                .entries
                .iter()
                .all(|e| self.object_path(&e.hash).is_file()),
            Err(_) => false,
        }
    }

    /// Puts the recorded content at `record.path`, replacing what is there.
    /// The new content is assembled in the cache's `tmp/` and renamed into
    /// place: a file is replaced atomically; a directory is removed just
    /// before the rename, so a crash in between leaves it missing (and the
    /// next `repro` or `checkout` restores it), never half-written.
    pub fn restore(&self, root: &Path, record: &PathRecord) -> Result<(), CacheError> {
        let dest = record.path.to_path(root);
        let parent = dest.parent().expect("outputs are below the root");
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let tmp_dir = self.tmp_dir()?;
        let staging = tempfile::Builder::new()
            .prefix("restore.")
            .tempdir_in(&tmp_dir)
            .map_err(io("create a staging directory in", &tmp_dir))?;
        let staged = staging.path().join("content");
        if record.is_dir() {
            let manifest = self.manifest(&record.blake3)?;
            std::fs::create_dir_all(&staged).map_err(io("create", &staged))?;
            for e in &manifest.entries {
                let object = self.object_path(&e.hash);
                if !object.is_file() {
                    return Err(CacheError::MissingObject {
                        path: record.path.join(&e.path),
                        hash: e.hash,
                    });
                }
                let file = staged.join(&e.path);
                if let Some(p) = file.parent() {
                    std::fs::create_dir_all(p).map_err(io("create", p))?;
                }
                self.link.link(&object, &file).map_err(io("link", &file))?;
            }
        } else {
            let object = self.object_path(&record.blake3);
            if !object.is_file() {
                return Err(CacheError::MissingObject {
                    path: record.path.clone(),
                    hash: record.blake3,
                });
            }
            self.link
                .link(&object, &staged)
                .map_err(io("link", &staged))?;
        }
        let dest_is_dir = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir());
        if record.is_dir() || dest_is_dir {
            remove_path(&dest).map_err(io("replace", &dest))?;
        }
        std::fs::rename(&staged, &dest).map_err(io("move into place", &dest))?;
        Ok(())
    }
}

/// Removes a file, symlink or directory tree; absent is fine.
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            make_tree_writable(path);
            std::fs::remove_dir_all(path)
        }
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Directories restored from read-only objects stay writable, but be safe
/// with trees a user made read-only.
fn make_tree_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            if let Ok(meta) = entry.metadata() {
                let mut perm = meta.permissions();
                if perm.mode() & 0o200 == 0 {
                    perm.set_mode(perm.mode() | 0o700);
                    let _ = std::fs::set_permissions(entry.path(), perm);
                }
            }
        }
    }
}

fn set_read_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path)?.permissions();
    perm.set_mode(perm.mode() & 0o555);
    std::fs::set_permissions(path, perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Hasher, StatCache};

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    fn roundtrip(link: LinkMode) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, link);
        let hasher = Hasher::new(root, StatCache::in_memory());
        std::fs::create_dir_all(root.join("model/sub")).unwrap();
        std::fs::write(root.join("model/a.bin"), b"aaa").unwrap();
        std::fs::write(root.join("model/sub/b.bin"), b"bbb").unwrap();
        std::fs::write(root.join("metrics.json"), b"{}").unwrap();
        let mut records = Vec::new();
        for p in ["model", "metrics.json"] {
            let hashed = hasher.hash(&rel(p)).unwrap().unwrap();
            cache.store(root, &rel(p), &hashed).unwrap();
            records.push(PathRecord::new(rel(p), &hashed));
        }
        assert!(records.iter().all(|r| cache.contains(r)));
        // Objects are read-only.
        let obj = cache.object_path(&Digest::of(b"aaa"));
        assert!(std::fs::metadata(&obj).unwrap().permissions().readonly());

        remove_path(&root.join("model")).unwrap();
        // Replace, not edit in place: with hardlinks or symlinks an in-place
        // edit would write through to the object (and root ignores the
        // read-only bit), which is why reflink/copy is the default.
        remove_path(&root.join("metrics.json")).unwrap();
        std::fs::write(root.join("metrics.json"), b"changed").unwrap();
        for r in &records {
            cache.restore(root, r).unwrap();
        }
        assert_eq!(std::fs::read(root.join("model/sub/b.bin")).unwrap(), b"bbb");
        assert_eq!(std::fs::read(root.join("metrics.json")).unwrap(), b"{}");
        let again = hasher.hash(&rel("model")).unwrap().unwrap();
        assert_eq!(again.hash, records[0].blake3);
        // Nothing is left behind next to the outputs.
        let names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(CACHE_DIR))
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["metrics.json", "model"]);
    }

    #[test]
    fn stores_and_restores_files_and_directories_in_every_link_mode() {
        for mode in [
            LinkMode::Reflink,
            LinkMode::Copy,
            LinkMode::Hardlink,
            LinkMode::Symlink,
        ] {
            roundtrip(mode);
        }
    }

    #[test]
    fn a_copied_workspace_file_stays_writable_and_independent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, LinkMode::Copy);
        std::fs::write(root.join("out.txt"), b"v1").unwrap();
        let hashed = Hasher::new(root, StatCache::in_memory())
            .hash(&rel("out.txt"))
            .unwrap()
            .unwrap();
        cache.store(root, &rel("out.txt"), &hashed).unwrap();
        std::fs::write(root.join("out.txt"), b"edited").unwrap();
        assert_eq!(
            std::fs::read(cache.object_path(&hashed.hash)).unwrap(),
            b"v1"
        );
    }
}
