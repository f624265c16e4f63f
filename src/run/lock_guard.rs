//! One `pipe repro` at a time per project.
//!
//! `repro` (and everything else that writes outputs, the lock or the cache)
//! holds an exclusive advisory lock on `.pipeline-cache/repro.lock` for its
//! whole run. A second one reports who holds it and waits. The operating
//! system drops the lock when the holder exits, however it exits (even
//! `kill -9`), so there is never a stale lock to clean up by hand.
//! Read-only commands (`status`, `dag`) do not take it: they read
//! `pipeline.lock`, which is only ever replaced whole, by rename.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::leftovers::RunMarker;
use crate::error::Error;

pub struct ReproLock {
    // Dropped first: the run marker goes before the lock is released.
    marker: RunMarker,
    /// Processes of an interrupted earlier run that were killed.
    pub killed_leftovers: usize,
    _file: File,
}

impl ReproLock {
    /// Takes the lock, calling `on_wait` with the holder's description if
    /// another process has it.
    pub fn acquire(
        cache_root: &Path,
        on_wait: impl FnOnce(Option<String>),
    ) -> Result<ReproLock, Error> {
        let io = |message: &str| {
            let message = format!("{message} {}", cache_root.join("repro.lock").display());
            move |source| Error::Io { message, source }
        };
        crate::cache::ensure_root(cache_root).map_err(io("cannot create the directory of"))?;
        let path = cache_root.join("repro.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                on_wait((!holder.is_empty()).then(|| holder.to_string()));
                file.lock().map_err(io("cannot lock"))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock")(e)),
        }
        file.set_len(0).map_err(io("cannot write"))?;
        file.rewind().map_err(io("cannot write"))?;
        let _ = write!(file, "pipe repro (pid {})", std::process::id());
        let (marker, killed_leftovers) =
            RunMarker::start(&cache_root.join(crate::cache::VERSION_DIR))
                .map_err(io("cannot write the run marker next to"))?;
        Ok(ReproLock {
            marker,
            killed_leftovers,
            _file: file,
        })
    }

    /// The id this run's stage processes carry in `PIPE_RUN_ID`.
    pub fn run_id(&self) -> &str {
        &self.marker.id
    }
}
