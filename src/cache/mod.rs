//! The content-addressed cache in `.pipeline-cache/v1/`.
//!
//! ```text
//! .pipeline-cache/v1/
//!   objects/ab/cdef…        one read-only file per BLAKE3 content hash
//!   objects/ab/cdef….dir    a directory's manifest (itself content-addressed)
//!   runs/ab/cdef…           run cache: stage fingerprint → its outputs
//!   claims/<fingerprint>    locked while a process runs that stage
//!   verified                objects found intact, see `verify`
//!   quarantine/             damaged objects moved aside, see `verify`
//!   stat-cache              see `hash::stat_cache`
//!   tmp/<id>/, tmp/<id>.lock  one staging area per process, see `staging`
//!   repro.lock              held by the `pipe repro` that is running
//! ```
//!
//! Every object is written to the staging area first, hashed as it is
//! written, and renamed into place, so an object that exists is complete
//! and was the content its name says when it was written; a crash leaves at
//! worst a stray staging area, which the next command removes. Objects are
//! never modified after they are written; that is what makes it safe to
//! link them into the workspace and to share them between experiments.
//! Whether one was damaged since is checked before it is used
//! ([`verify`]).
//!
//! The cache reads and writes its own directory freely; in the workspace it
//! writes only through [`Workspace`], which never leaves the project.
//!
//! The `v1` in the path is the format version (as uv names its cache
//! buckets): a format change gets a new directory instead of a migration.

pub mod gc;
pub mod link;
pub mod runs;
pub mod staging;
pub mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

pub use link::LinkMode;
pub use verify::{DamagedObject, VerifyReport};

use crate::hash::{Digest, Hashed, Manifest};
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::workspace::{Workspace, WorkspaceError};

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
    #[error("cache: the stored copy of `{path}` is damaged (its bytes no longer match their hash {hash}); it was moved aside to {}", moved_to.display())]
    Damaged {
        path: RelPath,
        hash: Digest,
        moved_to: PathBuf,
    },
    #[error("cache: `{path}` changed while it was being stored (is a process still writing it?)")]
    Changed { path: RelPath },
    #[error("cache: no space left to store `{path}` in {}: it needs {}, {} free", dir.display(), human_bytes(*needed), human_bytes(*free))]
    NoSpace {
        path: RelPath,
        dir: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

impl CacheError {
    /// True when the object was damaged (and is now quarantined): running
    /// the stage again replaces it.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            CacheError::Damaged { .. } | CacheError::BadManifest { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            CacheError::MissingObject { .. } => {
                Some("the cache no longer holds this output; run `pipe repro` to rebuild it".into())
            }
            CacheError::Damaged { .. } | CacheError::BadManifest { .. } => Some(
                "run `pipe repro` to compute it again (the damaged copy is never used); `pipe cache verify` checks the whole cache".into(),
            ),
            CacheError::NoSpace { needed, free, .. } => Some(format!(
                "free at least {} on that disk (`pipe gc -a` removes what no branch uses), then run the command again",
                human_bytes(needed.saturating_sub(*free))
            )),
            CacheError::Changed { .. } => Some(
                "make sure nothing else writes the stage's outputs, then run `pipe repro` again".into(),
            ),
            CacheError::Workspace(e) => e.hint(),
            CacheError::Io { .. } => None,
        }
    }
}

/// `1.2 MB`, `340 B`: sizes for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The state the clones of one [`Cache`] share.
#[derive(Debug, Default)]
struct Shared {
    verified: verify::Verified,
    staging: Mutex<Option<Arc<staging::Staging>>>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    link: LinkMode,
    shared: Arc<Shared>,
}

impl Cache {
    /// The cache of the project at `root` (created lazily on first write).
    pub fn new(root: &Path, link: LinkMode) -> Cache {
        Cache::at(root.join(CACHE_DIR).join(VERSION_DIR), link)
    }

    /// A cache in `dir` (the `v1` directory of another project's cache).
    pub fn at(dir: PathBuf, link: LinkMode) -> Cache {
        Cache {
            dir,
            link,
            shared: Arc::default(),
        }
    }

    /// This cache, putting objects in place with `link` instead.
    pub fn with_link(&self, link: LinkMode) -> Cache {
        Cache {
            link,
            ..self.clone()
        }
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

    /// This process's staging area (created on first use).
    fn staging(&self) -> Result<Arc<staging::Staging>, CacheError> {
        let mut slot = self.shared.staging.lock().expect("staging lock");
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let tmp = self.dir.join("tmp");
        let area = Arc::new(staging::Staging::create(&tmp).map_err(io("create", &tmp))?);
        *slot = Some(area.clone());
        Ok(area)
    }

    /// Removes the staging areas of processes that are gone (see
    /// [`staging`]); returns how many.
    pub fn clean_staging(&self) -> usize {
        staging::clean_stale(&self.dir.join("tmp"))
    }

    /// Moves a finished temp file into `dest` (made read-only).
    fn install(&self, tmp: tempfile::TempPath, dest: &Path) -> Result<(), CacheError> {
        let parent = dest.parent().expect("objects have a parent");
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        set_read_only(&tmp).map_err(io("protect", &tmp))?;
        tmp.persist(dest).map_err(|e| CacheError::Io {
            action: "store",
            path: dest.to_path_buf(),
            source: e.error,
        })
    }

    /// Stores the file at `abs` (the output `path`) whose hash is `hash`.
    /// An object that is already there is reused once it is verified; a
    /// damaged one is replaced. The copy is hashed as it is written.
    fn store_file(&self, abs: &Path, hash: &Digest, path: &RelPath) -> Result<(), CacheError> {
        let dest = self.object_path(hash);
        if dest.exists() {
            match self.check_object(hash, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_damaged() => {} // quarantined: store a good copy
                Err(CacheError::MissingObject { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let area = self.staging()?;
        let mut tmp = tempfile::Builder::new()
            .prefix("obj.")
            .tempfile_in(area.dir())
            .map_err(io("write in", area.dir()))?;
        let copied = staging::copy_hashing(abs, tmp.as_file_mut());
        let written = match copied {
            Ok(digest) => digest,
            Err(e) => {
                drop(tmp); // the partial copy goes first, then free space is measured
                return Err(self.write_error(e, path, abs, area.dir()));
            }
        };
        if written != *hash {
            return Err(CacheError::Changed { path: path.clone() });
        }
        let executable = std::fs::metadata(abs).map(|m| exec_bits(&m)).unwrap_or(0);
        set_mode(tmp.path(), 0o444 | executable).map_err(io("protect", tmp.path()))?;
        self.install(tmp.into_temp_path(), &dest)?;
        self.remember_verified(hash, &dest);
        Ok(())
    }

    /// A write error, as [`CacheError::NoSpace`] when the disk is full.
    fn write_error(
        &self,
        e: std::io::Error,
        path: &RelPath,
        from: &Path,
        dir: &Path,
    ) -> CacheError {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            CacheError::NoSpace {
                path: path.clone(),
                dir: self.dir.clone(),
                needed: std::fs::metadata(from).map(|m| m.len()).unwrap_or(0),
                free: staging::free_space(dir),
            }
        } else {
            io("write in", dir)(e)
        }
    }

    /// Stores a manifest that was checked against its hash (one fetched
    /// from a remote).
    pub fn put_manifest(&self, manifest: &Manifest, hash: &Digest) -> Result<(), CacheError> {
        self.store_manifest(manifest, hash)
    }

    /// A new object arriving from elsewhere (a remote), written in the
    /// staging area and hashed as it comes; see [`Incoming::finish`].
    pub fn incoming(&self) -> Result<Incoming, CacheError> {
        let area = self.staging()?;
        let file = tempfile::Builder::new()
            .prefix("in.")
            .tempfile_in(area.dir())
            .map_err(io("write in", area.dir()))?;
        Ok(Incoming {
            cache: self.clone(),
            file,
            hasher: blake3::Hasher::new(),
            _area: area,
        })
    }

    fn store_manifest(&self, manifest: &Manifest, hash: &Digest) -> Result<(), CacheError> {
        let dest = self.manifest_path(hash);
        if self.manifest(hash).is_ok() {
            return Ok(());
        }
        let area = self.staging()?;
        let mut tmp = tempfile::Builder::new()
            .prefix("dir.")
            .tempfile_in(area.dir())
            .map_err(io("write in", area.dir()))?;
        tmp.write_all(&manifest.to_bytes())
            .map_err(io("write", tmp.path()))?;
        set_mode(tmp.path(), 0o444).map_err(io("protect", tmp.path()))?;
        self.install(tmp.into_temp_path(), &dest)
    }

    /// Reads a directory manifest from the cache; one that does not match
    /// its name is quarantined.
    pub fn manifest(&self, hash: &Digest) -> Result<Manifest, CacheError> {
        let path = self.manifest_path(hash);
        let bytes = std::fs::read(&path).map_err(io("read", &path))?;
        let damaged = |message: String| {
            let _ = self.quarantine(&path, &format!("{}.dir", hash.to_hex()));
            CacheError::BadManifest {
                hash: *hash,
                message,
            }
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if manifest.digest() != *hash {
            return Err(damaged("its content does not match its name".into()));
        }
        if let Some(bad) = manifest.entries.iter().find(|e| !is_entry_path(&e.path)) {
            return Err(damaged(format!("it names the path `{}`", bad.path)));
        }
        Ok(manifest)
    }

    /// Stores an output that has just been hashed and, in hardlink/symlink
    /// mode, replaces the workspace copy with a link to the object.
    pub fn store(&self, ws: &Workspace, path: &RelPath, hashed: &Hashed) -> Result<(), CacheError> {
        let abs = path.to_path(ws.root());
        match &hashed.manifest {
            None => {
                self.store_file(&abs, &hashed.hash, path)?;
                self.relink(ws, path, &hashed.hash)?;
            }
            Some(manifest) => {
                let files: Vec<_> = manifest.files().collect();
                files.par_iter().try_for_each(|e| {
                    let rel = path.join(&e.path);
                    self.store_file(&abs.join(&e.path), &e.hash, &rel)?;
                    self.relink(ws, &rel, &e.hash)
                })?;
                self.store_manifest(manifest, &hashed.hash)?;
            }
        }
        Ok(())
    }

    /// In hardlink/symlink mode, replaces the workspace file `path` with a
    /// link to its object: a link made in the staging area, renamed over it.
    fn relink(&self, ws: &Workspace, path: &RelPath, hash: &Digest) -> Result<(), CacheError> {
        if !self.link.shares_object() {
            return Ok(());
        }
        let area = self.staging()?;
        let staged = unique_in(area.dir(), "link");
        self.link
            .link(&self.object_path(hash), &staged)
            .map_err(io("link", &staged))?;
        ws.install(&staged, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&staged);
        })?;
        Ok(())
    }

    /// True when every object needed to restore `record` is in the cache
    /// (whether they are intact is checked when they are restored).
    pub fn contains(&self, record: &PathRecord) -> bool {
        if !record.is_dir() {
            return self.object_path(&record.blake3).is_file();
        }
        match self.manifest(&record.blake3) {
            Ok(m) => m.files().all(|e| self.object_path(&e.hash).is_file()),
            Err(_) => false,
        }
    }

    /// True when the cache holds `record`'s content intact, so that it can
    /// be restored: every object there and matching its hash (a damaged one
    /// is quarantined, and the answer is no). A workspace copy of what the
    /// cache holds is nobody's only copy.
    pub fn holds(&self, record: &PathRecord) -> bool {
        if !record.is_dir() {
            return self.check_object(&record.blake3, &record.path).is_ok();
        }
        match self.manifest(&record.blake3) {
            Ok(m) => m.files().all(|e| {
                self.check_object(&e.hash, &record.path.join(&e.path))
                    .is_ok()
            }),
            Err(_) => false,
        }
    }

    /// The bytes of the object `hash` (the output `path`), verified; `None`
    /// when the cache does not have it.
    pub fn read_object(
        &self,
        hash: &Digest,
        path: &RelPath,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        let object = self.object_path(hash);
        let bytes = match std::fs::read(&object) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &object)(e)),
        };
        if Digest::of(&bytes) != *hash {
            let moved_to = self.quarantine(&object, &hash.to_hex())?;
            return Err(CacheError::Damaged {
                path: path.clone(),
                hash: *hash,
                moved_to,
            });
        }
        Ok(Some(bytes))
    }

    /// Puts the recorded content at `record.path`, replacing what is there.
    /// Every object is verified first; nothing of a damaged one reaches the
    /// workspace. The new content is assembled in the staging area and
    /// moved into place: a file is replaced atomically; a directory is
    /// removed just before the rename, so a crash in between leaves it
    /// missing (and the next `repro` or `checkout` restores it), never
    /// half-written.
    pub fn restore(&self, ws: &Workspace, record: &PathRecord) -> Result<(), CacheError> {
        let area = self.staging()?;
        let staged = unique_in(area.dir(), "restore");
        let result = self
            .assemble(record, &staged)
            .and_then(|()| ws.install(&staged, &record.path).map_err(CacheError::from));
        if result.is_err() {
            let _ = remove_path(&staged);
        }
        result
    }

    /// Builds the content of `record` at `staged`, verifying every object.
    fn assemble(&self, record: &PathRecord, staged: &Path) -> Result<(), CacheError> {
        if !record.is_dir() {
            self.check_object(&record.blake3, &record.path)?;
            return self.link_object(&record.blake3, staged, &record.path);
        }
        let manifest = self.manifest(&record.blake3).map_err(|e| match e {
            CacheError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                CacheError::MissingObject {
                    path: record.path.clone(),
                    hash: record.blake3,
                }
            }
            other => other,
        })?;
        std::fs::create_dir_all(staged).map_err(io("create", staged))?;
        manifest.entries.par_iter().try_for_each(|e| {
            let file = staged.join(&e.path);
            if let Some(p) = file.parent() {
                std::fs::create_dir_all(p).map_err(io("create", p))?;
            }
            if let Some(target) = &e.link {
                return std::os::unix::fs::symlink(target, &file).map_err(io("link", &file));
            }
            let path = record.path.join(&e.path);
            self.check_object(&e.hash, &path)?;
            self.link_object(&e.hash, &file, &path)
        })
    }

    fn link_object(&self, hash: &Digest, dest: &Path, path: &RelPath) -> Result<(), CacheError> {
        let object = self.object_path(hash);
        self.link.link(&object, dest).map_err(|e| {
            let dir = dest.parent().unwrap_or(dest);
            if e.raw_os_error() == Some(libc::ENOSPC) {
                self.write_error(e, path, &object, dir)
            } else {
                io("link", dest)(e)
            }
        })
    }
}

/// An object being received; it enters the cache only whole and verified.
pub struct Incoming {
    cache: Cache,
    file: tempfile::NamedTempFile,
    hasher: blake3::Hasher,
    _area: Arc<staging::Staging>,
}

impl Incoming {
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.file.write_all(bytes)
    }

    /// Installs the object if its bytes hash to `hash`; otherwise drops them
    /// and returns `Err(Some(what they hash to))` (`Err(None)`: it could not
    /// be installed).
    pub fn finish(mut self, hash: &Digest) -> Result<(), Option<Digest>> {
        let got = Digest(*self.hasher.finalize().as_bytes());
        if got != *hash {
            return Err(Some(got));
        }
        self.file.flush().map_err(|_| None)?;
        let dest = self.cache.object_path(hash);
        set_mode(self.file.path(), 0o444).map_err(|_| None)?;
        self.cache
            .install(self.file.into_temp_path(), &dest)
            .map_err(|_| None)?;
        self.cache.remember_verified(hash, &dest);
        Ok(())
    }
}

impl Incoming {
    /// Installs the object under the hash of its bytes (for content whose
    /// hash is not known before it arrives: a download from a URL), and
    /// returns that hash.
    pub fn finish_any(mut self) -> Result<Digest, CacheError> {
        let got = Digest(*self.hasher.finalize().as_bytes());
        let path = self.file.path().to_path_buf();
        self.file.flush().map_err(io("write", &path))?;
        let dest = self.cache.object_path(&got);
        if dest.exists() && self.cache.check_object(&got, &RelPath::root()).is_ok() {
            return Ok(got);
        }
        set_mode(self.file.path(), 0o444).map_err(io("protect", &path))?;
        self.cache.install(self.file.into_temp_path(), &dest)?;
        self.cache.remember_verified(&got, &dest);
        Ok(got)
    }
}

/// A manifest entry's path: relative, normalized, inside its directory.
fn is_entry_path(path: &str) -> bool {
    RelPath::normalized(path).is_ok()
}

/// A path in `dir` that does not exist yet.
fn unique_in(dir: &Path, prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    dir.join(format!("{prefix}.{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Removes a file, symlink or directory tree in the cache's own directory
/// (never in the workspace: that is [`Workspace::remove`]); absent is fine.
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

/// Be safe with trees made read-only.
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

fn exec_bits(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
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
    use crate::workspace::Workspace;
    use std::os::unix::fs::PermissionsExt;

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    fn roundtrip(link: LinkMode) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = Cache::new(root, link);
        let hasher =
            Hasher::new(root, StatCache::in_memory()).with_objects(&cache.dir().join("objects"));
        std::fs::create_dir_all(root.join("model/sub")).unwrap();
        std::fs::write(root.join("model/a.bin"), b"aaa").unwrap();
        std::fs::write(root.join("model/sub/b.bin"), b"bbb").unwrap();
        std::fs::write(root.join("metrics.json"), b"{}").unwrap();
        let mut records = Vec::new();
        for p in ["model", "metrics.json"] {
            let hashed = hasher.hash_output(&rel(p)).unwrap().unwrap();
            cache
                .store(&Workspace::open(root).unwrap(), &rel(p), &hashed)
                .unwrap();
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
            cache.restore(&Workspace::open(root).unwrap(), r).unwrap();
        }
        assert_eq!(std::fs::read(root.join("model/sub/b.bin")).unwrap(), b"bbb");
        assert_eq!(std::fs::read(root.join("metrics.json")).unwrap(), b"{}");
        let again = hasher.hash_output(&rel("model")).unwrap().unwrap();
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
            .hash_output(&rel("out.txt"))
            .unwrap()
            .unwrap();
        cache
            .store(&Workspace::open(root).unwrap(), &rel("out.txt"), &hashed)
            .unwrap();
        std::fs::write(root.join("out.txt"), b"edited").unwrap();
        assert_eq!(
            std::fs::read(cache.object_path(&hashed.hash)).unwrap(),
            b"v1"
        );
    }

    /// Flips one byte of a read-only object, as a disk error would.
    fn damage(path: &Path) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_damaged_object_never_reaches_the_workspace_and_is_replaced_when_stored_again() {
        for mode in [LinkMode::Copy, LinkMode::Hardlink, LinkMode::Symlink] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let ws = Workspace::open(root).unwrap();
            let cache = Cache::new(root, mode);
            let hasher = Hasher::new(root, StatCache::in_memory())
                .with_objects(&cache.dir().join("objects"));
            std::fs::create_dir_all(root.join("d")).unwrap();
            std::fs::write(root.join("d/a.txt"), b"aaa").unwrap();
            std::fs::write(root.join("f.txt"), b"fff").unwrap();
            let records: Vec<PathRecord> = ["d", "f.txt"]
                .into_iter()
                .map(|p| {
                    let hashed = hasher.hash_output(&rel(p)).unwrap().unwrap();
                    cache.store(&ws, &rel(p), &hashed).unwrap();
                    PathRecord::new(rel(p), &hashed)
                })
                .collect();
            damage(&cache.object_path(&Digest::of(b"aaa")));
            damage(&cache.object_path(&Digest::of(b"fff")));
            for r in &records {
                ws.remove(&r.path).unwrap();
                let err = cache.restore(&ws, r).unwrap_err();
                assert!(err.is_damaged(), "{mode:?}: {err}");
                assert!(
                    !root.join(r.path.as_str()).exists(),
                    "{mode:?}: nothing restored"
                );
            }
            // Set aside, so the next store writes a good copy.
            let quarantine = cache.dir().join("quarantine");
            assert_eq!(std::fs::read_dir(&quarantine).unwrap().count(), 2);
            std::fs::create_dir_all(root.join("d")).unwrap();
            std::fs::write(root.join("d/a.txt"), b"aaa").unwrap();
            std::fs::write(root.join("f.txt"), b"fff").unwrap();
            for r in &records {
                let hashed = hasher.hash_output(&r.path).unwrap().unwrap();
                cache.store(&ws, &r.path, &hashed).unwrap();
                ws.remove(&r.path).unwrap();
                cache.restore(&ws, r).unwrap();
            }
            assert_eq!(std::fs::read(root.join("d/a.txt")).unwrap(), b"aaa");
            assert_eq!(std::fs::read(root.join("f.txt")).unwrap(), b"fff");
        }
    }

    #[test]
    fn a_damaged_object_that_was_verified_before_is_still_caught() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ws = Workspace::open(root).unwrap();
        let cache = Cache::new(root, LinkMode::Copy);
        std::fs::write(root.join("f.txt"), b"fff").unwrap();
        let hashed = Hasher::new(root, StatCache::in_memory())
            .hash_output(&rel("f.txt"))
            .unwrap()
            .unwrap();
        cache.store(&ws, &rel("f.txt"), &hashed).unwrap();
        let record = PathRecord::new(rel("f.txt"), &hashed);
        cache.restore(&ws, &record).unwrap();
        cache.save_verified();
        // Same size, new bytes: the mtime moves, so the index no longer vouches.
        std::thread::sleep(std::time::Duration::from_millis(20));
        damage(&cache.object_path(&hashed.hash));
        let again = Cache::new(root, LinkMode::Copy);
        assert!(again.restore(&ws, &record).unwrap_err().is_damaged());
        assert_eq!(std::fs::read(root.join("f.txt")).unwrap(), b"fff");
    }

    #[test]
    fn verify_all_finds_and_sets_aside_every_damaged_object() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ws = Workspace::open(root).unwrap();
        let cache = Cache::new(root, LinkMode::Copy);
        let hasher = Hasher::new(root, StatCache::in_memory());
        std::fs::create_dir_all(root.join("d")).unwrap();
        for (name, bytes) in [("d/1", &b"one"[..]), ("d/2", b"two"), ("d/3", b"three")] {
            std::fs::write(root.join(name), bytes).unwrap();
        }
        let hashed = hasher.hash_output(&rel("d")).unwrap().unwrap();
        cache.store(&ws, &rel("d"), &hashed).unwrap();
        damage(&cache.object_path(&Digest::of(b"two")));
        damage(&cache.manifest_path(&hashed.hash));
        let report = cache.verify_all().unwrap();
        assert_eq!((report.objects, report.manifests), (3, 1), "{report:?}");
        let mut damaged: Vec<(Digest, bool)> = report
            .damaged
            .iter()
            .map(|d| (d.hash, d.manifest))
            .collect();
        damaged.sort();
        let mut expected = vec![(Digest::of(b"two"), false), (hashed.hash, true)];
        expected.sort();
        assert_eq!(damaged, expected);
        assert!(!cache.object_path(&Digest::of(b"two")).exists());
        let again = cache.verify_all().unwrap();
        assert!(again.damaged.is_empty());
    }
}
