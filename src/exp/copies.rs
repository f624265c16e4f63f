//! The temporary copies experiments run in, under
//! `.pipeline-cache/exp-runs/`, and the removal of those whose run is gone.
//!
//! A run owns its copy by an exclusive advisory lock on the copy's
//! directory, held for as long as the run lasts. The operating system
//! drops the lock however the run ends, so a copy whose lock is free was
//! left by a run that was killed (`kill -9`, a crash, a power cut): the
//! next `pipe exp run` removes it ([`sweep`]). A run that ends normally,
//! or is interrupted by a signal it catches, removes its own copy.
//!
//! Creating a copy (making the directory, then locking it) and sweeping
//! (looking for unlocked copies) each hold `exp-runs/.lock` exclusively for
//! the moment they take, so a sweep never takes a copy that is being born
//! for a left-over one.
//!
//! A copy is a git repository of its own (see [`RunCopy::init_git`]),
//! so that what a stage does with git (`git rev-parse HEAD`, `git add`, a
//! tool's `dvc exp save`) concerns the copy, never the user's repository.

use std::fs::File;
use std::path::{Path, PathBuf};

use git2::Oid;

use crate::error::Error;
use crate::git::Repo;

/// The prefix of the scratch copies' directories.
const SCRATCH: &str = ".check-";

/// The directory of the copies, below the project's cache root.
pub fn dir(cache_root: &Path) -> PathBuf {
    cache_root.join("exp-runs")
}

/// A copy owned by this process; removed when dropped.
#[derive(Debug)]
pub struct RunCopy {
    dir: Option<tempfile::TempDir>,
    _lock: File,
}

/// Holds `exp-runs/.lock` for one creation or one sweep.
fn guard(runs: &Path) -> Result<File, Error> {
    std::fs::create_dir_all(runs)
        .map_err(Error::io(format!("cannot create {}", runs.display())))?;
    let path = runs.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(format!("cannot open {}", path.display())))?;
    file.lock()
        .map_err(Error::io(format!("cannot lock {}", path.display())))?;
    Ok(file)
}

impl RunCopy {
    /// A new, empty, locked copy for experiment `name`:
    /// `exp-runs/NAME-xxxxxx/`.
    pub fn create(cache_root: &Path, name: &str) -> Result<RunCopy, Error> {
        RunCopy::with_prefix(cache_root, &format!("{name}-"))
    }

    /// A copy to check something in, before any experiment runs:
    /// `exp-runs/.check-xxxxxx/` (a sweep removes it without naming it).
    pub fn scratch(cache_root: &Path) -> Result<RunCopy, Error> {
        RunCopy::with_prefix(cache_root, SCRATCH)
    }

    fn with_prefix(cache_root: &Path, prefix: &str) -> Result<RunCopy, Error> {
        crate::cache::ensure_root(cache_root)
            .map_err(Error::io(format!("cannot create {}", cache_root.display())))?;
        let runs = dir(cache_root);
        let _guard = guard(&runs)?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&runs)
            .map_err(Error::io(format!(
                "cannot create a directory in {}",
                runs.display()
            )))?;
        let lock = File::open(dir.path())
            .and_then(|f| f.try_lock().map(|_| f).map_err(std::io::Error::from))
            .map_err(Error::io(format!("cannot lock {}", dir.path().display())))?;
        Ok(RunCopy {
            dir: Some(dir),
            _lock: lock,
        })
    }

    /// The copy's directory (the root of its git repository).
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until removed").path()
    }

    /// Makes the copy a git repository of its own whose `HEAD` is
    /// `baseline` (detached), and whose objects are the user's repository's
    /// (by git's `alternates`, nothing is copied); its index is the
    /// baseline's, so `git status` there shows the workspace changes and
    /// params the experiment runs with. Files of the repository outside the
    /// project (a project in a sub-directory) are marked `skip-worktree`.
    pub fn init_git(&self, repo: &Repo, baseline: Oid) -> Result<(), Error> {
        let root = self.path();
        let git = |action: &str| {
            let action = format!("{action} in the experiment's copy");
            move |e: git2::Error| Error::Git(crate::git::GitError::wrap(action)(e))
        };
        let copy = git2::Repository::init(root).map_err(git("make a git repository"))?;
        let alternates = copy.path().join("objects").join("info").join("alternates");
        std::fs::write(&alternates, format!("{}\n", repo.objects_dir().display()))
            .map_err(Error::io(format!("cannot write {}", alternates.display())))?;
        // Opened again, so that the alternates are read.
        let copy = git2::Repository::open(root).map_err(git("open the git repository"))?;
        copy.set_head_detached(baseline)
            .map_err(git("set HEAD to the baseline"))?;
        let tree = copy
            .find_commit(baseline)
            .and_then(|c| c.tree())
            .map_err(git("read the baseline"))?;
        let mut index = copy.index().map_err(git("read the index"))?;
        index.read_tree(&tree).map_err(git("read the baseline"))?;
        let prefix = repo.prefix();
        if !prefix.is_empty() {
            const SKIP_WORKTREE: u16 = 1 << 14;
            let outside: Vec<git2::IndexEntry> = index
                .iter()
                .filter(|e| !e.path.starts_with(prefix.as_bytes()))
                .collect();
            for mut entry in outside {
                entry.flags_extended |= SKIP_WORKTREE;
                index.add(&entry).map_err(git("write the index"))?;
            }
        }
        index.write().map_err(git("write the index"))?;
        Ok(())
    }

    /// Removes the copy now. Processes of the run may still be writing in
    /// it for a moment after they were told to stop, so this tries for up
    /// to three seconds; what is left then is removed by the next sweep.
    pub fn remove(mut self) -> std::io::Result<()> {
        let dir = self.dir.take().expect("present until removed");
        let path = dir.keep();
        let started = std::time::Instant::now();
        loop {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if started.elapsed() > std::time::Duration::from_secs(3) => return Err(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RunCopy {
    fn drop(&mut self) {
        // The TempDir removes the directory; the lock goes after it.
        self.dir.take();
    }
}

/// Removes the copies whose run is gone (their lock is free); returns the
/// experiment names they were for, sorted.
pub fn sweep(cache_root: &Path) -> Vec<String> {
    let runs = dir(cache_root);
    if !runs.is_dir() {
        return Vec::new();
    }
    let Ok(_guard) = guard(&runs) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let scratch = file_name.starts_with(SCRATCH);
        if (file_name.starts_with('.') && !scratch) || !path.is_dir() {
            continue;
        }
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if dir.try_lock().is_err() {
            continue; // its run is running
        }
        if std::fs::remove_dir_all(&path).is_ok() && !scratch {
            // `NAME-` and tempfile's six characters.
            let name = match file_name.len().checked_sub(7) {
                Some(at) if file_name.is_char_boundary(at) => file_name[..at].to_string(),
                _ => file_name,
            };
            names.push(name);
        }
    }
    names.sort();
    names
}
