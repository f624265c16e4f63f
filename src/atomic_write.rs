//! Replacing a file whole: write a temporary file beside it, sync, rename.
//! A reader (or a crash) never sees half a file, and a failed write (a full
//! disk) leaves the old file and no temporary one.
//!
//! This is the one helper for pipe's own files (`pipeline.lock`, the stat
//! cache, run-cache entries, params files of an experiment's copy). Files
//! in the user's workspace are written with [`crate::workspace::Workspace::write`],
//! which does the same beneath the project root only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` (creating its directory), mode 0644 or 0755.
pub fn write(path: &Path, bytes: &[u8], executable: bool) -> std::io::Result<()> {
    let dir = path.parent().expect("a file path has a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
