//! An experiment's name, claimed for as long as its run lasts.
//!
//! An experiment's ref is created when it is recorded, at the end of its
//! run. So that a second `pipe exp run -n NAME` started meanwhile fails at
//! once, instead of running the whole pipeline and then failing on the ref,
//! every run claims its name first: an exclusive advisory lock on
//! `.pipeline-cache/exp-names/NAME.lock`, a file that says who holds it.
//! Holding the claim, the run checks that no experiment has the name yet (a
//! run that ended before the claim was taken has recorded its ref by then).
//!
//! The operating system drops the lock when the run ends, however it ends
//! (even `kill -9`), so a claim is never stale. The file is removed when the
//! claim is dropped; a claim taken on a file that was removed meanwhile (by
//! the run that held it) is taken again on the file now at that path, so two
//! runs can never both hold a name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::git::Repo;

/// A claimed experiment name; released when dropped.
#[derive(Debug)]
pub struct NameClaim {
    name: String,
    path: PathBuf,
    _file: File,
}

impl NameClaim {
    /// The experiment name claimed.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        // Removed while still locked: see the module doc.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Claims `name` for a run of experiment `name` on `baseline` in the
/// project whose cache root is `cache_root`. Refused when another run holds
/// it, or when an experiment of that name exists.
pub fn claim(
    repo: &Repo,
    cache_root: &Path,
    name: &str,
    baseline: git2::Oid,
) -> Result<NameClaim, Error> {
    let dir = cache_root.join("exp-names");
    crate::cache::ensure_root(cache_root)
        .and_then(|_| std::fs::create_dir_all(&dir))
        .map_err(Error::io(format!("cannot create {}", dir.display())))?;
    let path = dir.join(format!("{name}.lock"));
    let io = |what: &str| Error::io(format!("cannot {what} {}", path.display()));
    let mut file = loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" ({holder})")
                };
                return Err(Error::Refused {
                    message: format!("an experiment named `{name}` is running already{by}"),
                    hint: Some(
                        "choose another -n NAME, or wait until it is recorded and compare with `pipe exp show`"
                            .into(),
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock")(e)),
        }
        if same_file(&file, &path) {
            break file;
        }
    };
    file.set_len(0).map_err(io("write"))?;
    file.rewind().map_err(io("write"))?;
    let _ = write!(file, "pipe exp run, pid {}", std::process::id());
    let claim = NameClaim {
        name: name.to_string(),
        path,
        _file: file,
    };
    super::check_name_free(repo, name, baseline)?;
    Ok(claim)
}

/// Whether `path` is still the file `file` was opened from.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
