//! How cached objects get into the workspace.
//!
//! * `reflink` (default): a copy-on-write clone where the filesystem supports
//!   it (btrfs, XFS, APFS), else a plain copy. The workspace file is
//!   independent of the cache object: editing it can never corrupt the cache.
//! * `copy`: always a plain copy.
//! * `hardlink`: the workspace file *is* the (read-only) cache object: no
//!   extra space, but editing it in place needs `chmod` first.
//! * `symlink`: the workspace path points into the cache.

use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    #[default]
    Reflink,
    Copy,
    Hardlink,
    Symlink,
}

impl LinkMode {
    pub fn parse(text: &str) -> Option<LinkMode> {
        Some(match text {
            "reflink" => LinkMode::Reflink,
            "copy" => LinkMode::Copy,
            "hardlink" => LinkMode::Hardlink,
            "symlink" => LinkMode::Symlink,
            _ => return None,
        })
    }

    /// True when the workspace file is the cache object itself (or points at
    /// it), so committing should replace the workspace file with a link.
    pub fn shares_object(self) -> bool {
        matches!(self, LinkMode::Hardlink | LinkMode::Symlink)
    }

    /// Makes `dest` (which must not exist) hold the content of `object`.
    pub fn link(self, object: &Path, dest: &Path) -> std::io::Result<()> {
        match self {
            LinkMode::Reflink => {
                reflink_copy::reflink_or_copy(object, dest)?;
                make_writable(dest)
            }
            LinkMode::Copy => {
                std::fs::copy(object, dest)?;
                make_writable(dest)
            }
            LinkMode::Hardlink => std::fs::hard_link(object, dest),
            LinkMode::Symlink => std::os::unix::fs::symlink(object, dest),
        }
    }
}

/// Copies of read-only objects are read-only too; the user's copy should not be.
fn make_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path)?.permissions();
    perm.set_mode(perm.mode() | 0o200);
    std::fs::set_permissions(path, perm)
}
