//! Writes and deletes in the project, contained.
//!
//! Every path pipe creates, replaces or deletes in the workspace (outputs
//! cleared before a run, outputs restored from the cache, files replaced by
//! links into the cache, files `pipe exp apply` writes) goes through
//! [`Workspace`]. It holds a handle on the project root and resolves each
//! path beneath it with cap-std, which on Linux is `openat2` with
//! `RESOLVE_BENEATH` (and the equivalent `openat` walk elsewhere): the
//! parent directory is opened component by component from the root's
//! handle, and a component that would lead outside the project (a symlink
//! to `../victim` or to an absolute path, even one a stage created a moment
//! ago) fails the call. The check is made by the very call that writes, on
//! the handles it writes through, so nothing can change in between.
//!
//! The last component of a path is never followed: removing or replacing a
//! symlink removes or replaces the link, never what it points to.
//!
//! An operation refused because it would leave the project is
//! [`WorkspaceError::Escapes`], which names the symlink that leads out.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, PermissionsExt};

use crate::paths::RelPath;

/// A handle on the project root; see the module docs.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    dir: Dir,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("`{path}` leads outside the project{through}: pipe does not write or delete outside the project")]
    Escapes { path: RelPath, through: String },
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: RelPath,
        source: io::Error,
    },
}

impl WorkspaceError {
    pub fn hint(&self) -> Option<String> {
        match self {
            WorkspaceError::Escapes { .. } => Some(
                "remove the symlink, or make it point inside the project (a relative link that stays below the project root)".into(),
            ),
            WorkspaceError::Io { .. } => None,
        }
    }

    /// True for a full disk, whatever the operation.
    pub fn is_no_space(&self) -> bool {
        matches!(self, WorkspaceError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}

/// cap-std refuses a path that leads out with this `PermissionDenied` error.
fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
        && e.to_string().contains("outside of the filesystem")
}

impl Workspace {
    /// Opens the project at `root`.
    pub fn open(root: &Path) -> io::Result<Workspace> {
        Ok(Workspace {
            root: root.to_path_buf(),
            dir: Dir::open_ambient_dir(root, ambient_authority())?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn error(&self, action: &'static str, path: &RelPath, e: io::Error) -> WorkspaceError {
        if is_escape(&e) {
            return WorkspaceError::Escapes {
                path: path.clone(),
                through: describe_escape(&self.root, path),
            };
        }
        WorkspaceError::Io {
            action,
            path: path.clone(),
            source: e,
        }
    }

    /// The handle of `path`'s parent directory and its last component;
    /// `None` when the parent does not exist.
    fn parent<'p>(
        &self,
        path: &'p RelPath,
        action: &'static str,
    ) -> Result<Option<(Dir, &'p str)>, WorkspaceError> {
        let (parent, name) = split(path);
        let dir = match parent {
            None => self.dir.try_clone(),
            Some(parent) => self.dir.open_dir(parent),
        };
        match dir {
            Ok(d) => Ok(Some((d, name))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(action, path, e)),
        }
    }

    /// The parent directory of `path`, created (beneath the root) if needed.
    fn parent_created<'p>(
        &self,
        path: &'p RelPath,
        action: &'static str,
    ) -> Result<(Dir, &'p str), WorkspaceError> {
        let (parent, name) = split(path);
        let dir = match parent {
            None => self.dir.try_clone(),
            Some(parent) => self
                .dir
                .create_dir_all(parent)
                .and_then(|()| self.dir.open_dir(parent)),
        };
        dir.map(|d| (d, name))
            .map_err(|e| self.error(action, path, e))
    }

    /// Removes the file, symlink or directory tree at `path`; absent is
    /// fine. A symlink is removed, not followed; a read-only directory in
    /// the tree is made writable first.
    pub fn remove(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        let Some((dir, name)) = self.parent(path, "remove")? else {
            return Ok(());
        };
        remove_in(&dir, name).map_err(|e| self.error("remove", path, e))
    }

    /// Creates the directory `path` and its parents.
    pub fn create_dir_all(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        if path.is_root() {
            return Ok(());
        }
        self.dir
            .create_dir_all(path.as_str())
            .map_err(|e| self.error("create", path, e))
    }

    /// Creates the parent directories of `path`.
    pub fn create_parent(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.parent_created(path, "create the directory of")
            .map(|_| ())
    }

    /// Moves `from` (a file, symlink or directory outside the project, such
    /// as the cache's staging area, on the same filesystem) to `path`. A
    /// file or symlink at `path` is replaced atomically; a directory there
    /// is removed just before.
    pub fn install(&self, from: &Path, path: &RelPath) -> Result<(), WorkspaceError> {
        let (dir, name) = self.parent_created(path, "write")?;
        let from_dir = from
            .parent()
            .ok_or_else(|| io::Error::other("no parent"))
            .and_then(|p| Dir::open_ambient_dir(p, ambient_authority()))
            .map_err(|e| self.error("write", path, e))?;
        let from_name = from.file_name().unwrap_or(OsStr::new(""));
        let dest_is_dir = dir.symlink_metadata(name).is_ok_and(|m| m.is_dir());
        if dest_is_dir {
            remove_in(&dir, name).map_err(|e| self.error("replace", path, e))?;
        }
        from_dir
            .rename(from_name, &dir, name)
            .map_err(|e| self.error("move into place", path, e))
    }

    /// Replaces `path` with a file holding `bytes` (mode 0644 or 0755),
    /// atomically: a temporary file beside it, synced, then renamed.
    pub fn write(
        &self,
        path: &RelPath,
        bytes: &[u8],
        executable: bool,
    ) -> Result<(), WorkspaceError> {
        let (dir, name) = self.parent_created(path, "write")?;
        let temp = temp_name(name);
        let written = (|| {
            let mut file = dir.create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            let mode = if executable { 0o755 } else { 0o644 };
            dir.set_permissions(&temp, cap_std::fs::Permissions::from_mode(mode))?;
            dir.rename(&temp, &dir, name)
        })();
        written.map_err(|e| {
            let _ = dir.remove_file(&temp);
            self.error("write", path, e)
        })
    }

    /// Replaces `path` with a symlink to `target`, atomically.
    pub fn symlink(&self, path: &RelPath, target: &Path) -> Result<(), WorkspaceError> {
        let (dir, name) = self.parent_created(path, "write")?;
        let temp = temp_name(name);
        let _ = dir.remove_file(&temp);
        dir.symlink_contents(target, &temp)
            .and_then(|()| dir.rename(&temp, &dir, name))
            .map_err(|e| {
                let _ = dir.remove_file(&temp);
                self.error("write", path, e)
            })
    }

    /// Gives `path` (a file, or every file below a directory) content of
    /// its own where it is a hardlink or symlink (into the cache), so that
    /// a stage appending to a `persist: true` output cannot write through
    /// into a cache object.
    pub fn make_private(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        let Some((dir, name)) = self.parent(path, "prepare")? else {
            return Ok(());
        };
        private_in(&dir, name, &path.to_path(&self.root))
            .map_err(|e| self.error("prepare", path, e))
    }
}

/// `path`'s parent (`None` at the root) and last component.
fn split(path: &RelPath) -> (Option<&str>, &str) {
    match path.as_str().rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path.as_str()),
    }
}

fn temp_name(name: &str) -> String {
    format!(".{name}.pipe-tmp.{}", std::process::id())
}

fn remove_in(dir: &Dir, name: &str) -> io::Result<()> {
    match dir.symlink_metadata(name) {
        Ok(m) if m.is_dir() => {
            make_writable(dir, Path::new(name))?;
            dir.remove_dir_all(name)
        }
        Ok(_) => dir.remove_file(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Directories restored from read-only objects stay writable, but be safe
/// with trees a user made read-only: give every directory below `name`
/// its owner's write and search bits (never following a symlink).
fn make_writable(dir: &Dir, name: &Path) -> io::Result<()> {
    let meta = dir.symlink_metadata(name)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        dir.set_permissions(name, cap_std::fs::Permissions::from_mode(mode | 0o700))?;
    }
    let sub = dir.open_dir(name)?;
    for entry in sub.entries()? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&sub, Path::new(&entry.file_name()))?;
        }
    }
    Ok(())
}

/// `abs` is where `name` in `dir` is, to read what a symlink points at.
fn private_in(dir: &Dir, name: &str, abs: &Path) -> io::Result<()> {
    use cap_std::fs::MetadataExt;
    let meta = match dir.symlink_metadata(name) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        let sub = dir.open_dir(name)?;
        for entry in sub.entries()? {
            let child = entry?.file_name();
            let child = child.to_string_lossy();
            private_in(&sub, &child, &abs.join(&*child))?;
        }
        return Ok(());
    }
    if !(meta.file_type().is_symlink() || meta.nlink() > 1) {
        return Ok(());
    }
    // The content the link shows (a cache object's), as a file of its own.
    // Reading through the link is harmless; the write stays in `dir`.
    let bytes = std::fs::read(abs)?;
    let temp = temp_name(name);
    let written = (|| {
        let mut file = dir.create(&temp)?;
        file.write_all(&bytes)?;
        dir.set_permissions(&temp, cap_std::fs::Permissions::from_mode(0o644))?;
        dir.rename(&temp, dir, name)
    })();
    written.inspect_err(|_| {
        let _ = dir.remove_file(&temp);
    })
}

/// Which component of `path` leads outside the project, for messages:
/// ` through the symlink `sub` (-> ../victim)`.
pub fn describe_escape(root: &Path, path: &RelPath) -> String {
    let mut current = root.to_path_buf();
    let mut shown = Vec::new();
    for part in path.as_str().split('/') {
        current.push(part);
        shown.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&current).unwrap_or_default();
                return format!(
                    " through the symlink `{}` (-> {})",
                    shown.join("/"),
                    target.display()
                );
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    /// A project and, beside it, a directory it must never touch.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("project");
        let victim = top.path().join("victim");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("data.txt"), b"precious").unwrap();
        (top, root, victim)
    }

    #[test]
    fn nothing_is_written_or_deleted_through_a_symlink_out_of_the_project() {
        let (_top, root, victim) = setup();
        std::os::unix::fs::symlink("../victim", root.join("sub")).unwrap();
        std::os::unix::fs::symlink(&victim, root.join("abs")).unwrap();
        let ws = Workspace::open(&root).unwrap();
        for link in ["sub", "abs"] {
            let path = rel(&format!("{link}/data.txt"));
            let err = ws.remove(&path).unwrap_err();
            assert!(matches!(err, WorkspaceError::Escapes { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("through the symlink `{link}`")),
                "{err}"
            );
            assert!(ws.write(&path, b"x", false).is_err());
            assert!(ws.symlink(&path, Path::new("/etc")).is_err());
            assert!(ws.create_dir_all(&rel(&format!("{link}/new"))).is_err());
            assert!(ws.make_private(&path).is_err());
        }
        assert_eq!(std::fs::read(victim.join("data.txt")).unwrap(), b"precious");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
        // The links themselves are the project's: removing one is fine.
        ws.remove(&rel("sub")).unwrap();
        assert!(!root.join("sub").exists());
        assert!(victim.join("data.txt").exists());
    }

    #[test]
    fn removes_trees_without_following_links_inside_them() {
        let (_top, root, victim) = setup();
        std::fs::create_dir_all(root.join("out/ro")).unwrap();
        std::os::unix::fs::symlink(&victim, root.join("out/ext")).unwrap();
        std::fs::set_permissions(root.join("out/ro"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        let ws = Workspace::open(&root).unwrap();
        ws.remove(&rel("out")).unwrap();
        assert!(!root.join("out").exists());
        assert_eq!(std::fs::read(victim.join("data.txt")).unwrap(), b"precious");
    }

    #[test]
    fn writes_and_installs_replace_whole_files() {
        let (_top, root, _victim) = setup();
        let ws = Workspace::open(&root).unwrap();
        ws.write(&rel("a/b/c.txt"), b"one", false).unwrap();
        ws.write(&rel("a/b/c.txt"), b"two", true).unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.txt")).unwrap(), b"two");
        let staging = tempfile::tempdir_in(root.parent().unwrap()).unwrap();
        std::fs::create_dir(staging.path().join("d")).unwrap();
        std::fs::write(staging.path().join("d/x"), b"x").unwrap();
        ws.install(&staging.path().join("d"), &rel("a/b")).unwrap();
        assert_eq!(std::fs::read(root.join("a/b/x")).unwrap(), b"x");
        assert!(!root.join("a/b/c.txt").exists());
        let names: Vec<_> = std::fs::read_dir(root.join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b"], "no temp files are left");
    }
}
