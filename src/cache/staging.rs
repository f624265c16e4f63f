//! The cache's staging area, `tmp/`: one directory per process.
//!
//! Objects are written to a temporary file and renamed into place, and
//! restored outputs are assembled before they are moved into the workspace;
//! both happen in `tmp/<id>/`, the area of one process, next to the lock
//! file `tmp/<id>.lock` that the process holds while it lives. Several
//! processes share one cache (parallel experiments), so an area is only
//! ever removed by its owner (when it is dropped) or, after the owner died
//! (`kill -9`, a full disk, a crash), by [`clean_stale`], which any command
//! that writes the cache runs first: an area whose lock nobody holds is
//! garbage. Nothing is left behind to fill the disk.
//!
//! Copies into the area go through [`copy_hashing`], which hashes the bytes
//! as it writes them: the object stored is verified to be the content that
//! was hashed, even if the source changed in between.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::hash::Digest;

/// A directory of the old layout (loose files in `tmp/`) is removed once it
/// is this old: no running pipe uses that layout any more.
const OLD_LAYOUT_AGE: Duration = Duration::from_secs(600);

/// This process's area; removed when dropped.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Staging {
    /// Creates a new area in `tmp_root`.
    pub fn create(tmp_root: &Path) -> std::io::Result<Staging> {
        std::fs::create_dir_all(tmp_root)?;
        loop {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{}-", std::process::id()))
                .tempdir_in(tmp_root)?
                .keep();
            let mut lock_path = dir.clone();
            lock_path.as_mut_os_string().push(".lock");
            let lock = File::create(&lock_path)?;
            lock.lock()?;
            // A cleaner may have taken the free lock between the create and
            // the lock above, and removed both: start again.
            if dir.is_dir() && same_file(&lock, &lock_path) {
                return Ok(Staging {
                    dir,
                    lock_path,
                    _lock: lock,
                });
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

fn same_file(open: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (open.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Removes the areas of processes that are gone, and loose leftovers of
/// the old layout; returns how many entries went.
pub fn clean_stale(tmp_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp_root) else {
        return 0;
    };
    let mut removed = 0;
    let mut owned = Vec::new();
    let mut loose = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock") {
            owned.push(path);
        } else {
            loose.push(path);
        }
    }
    for lock_path in &owned {
        let Ok(file) = File::options().write(true).open(lock_path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let dir = lock_path.with_extension("");
            let _ = crate::cache::remove_path(&dir);
            if std::fs::remove_file(lock_path).is_ok() {
                removed += 1;
            }
        }
    }
    for path in loose {
        let mut lock_path = path.clone();
        lock_path.as_mut_os_string().push(".lock");
        if owned.contains(&lock_path) || lock_path.exists() {
            continue;
        }
        let old = std::fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > OLD_LAYOUT_AGE);
        if old && crate::cache::remove_path(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Copies `from` into the new file `to` (which the caller removes on
/// error), returning the BLAKE3 of the bytes written.
pub fn copy_hashing(from: &Path, to: &mut File) -> std::io::Result<Digest> {
    let mut src = File::open(from)?;
    let len = src.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; (len as usize).clamp(1, 1 << 20)];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    to.flush()?;
    Ok(Digest(*hasher.finalize().as_bytes()))
}

/// Free bytes on the filesystem holding `path` (0 when unknown).
pub fn free_space(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-parameter of the right type.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return 0;
    }
    stat.f_bavail as u64 * stat.f_frsize as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_lives_while_its_owner_does_and_stale_ones_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        let mine = Staging::create(&tmp).unwrap();
        std::fs::write(mine.dir().join("partial"), b"half an object").unwrap();
        // A dead process's area: a directory whose lock file nobody holds.
        let dead = tmp.join("999-dead");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("obj.1"), b"left by kill -9").unwrap();
        std::fs::write(tmp.join("999-dead.lock"), b"").unwrap();
        assert_eq!(clean_stale(&tmp), 1);
        assert!(!dead.exists());
        assert!(mine.dir().join("partial").exists(), "a live area stays");
        let path = mine.dir().to_path_buf();
        drop(mine);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn a_copy_hashes_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::write(&from, vec![7u8; 3 << 20]).unwrap();
        let mut to = File::create(dir.path().join("to")).unwrap();
        let digest = copy_hashing(&from, &mut to).unwrap();
        assert_eq!(digest, Digest::of(&vec![7u8; 3 << 20]));
        assert_eq!(std::fs::read(dir.path().join("to")).unwrap().len(), 3 << 20);
        assert!(free_space(dir.path()) > 0);
    }
}
