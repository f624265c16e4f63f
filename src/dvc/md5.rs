//! DVC's content hashes: the md5 of a file, and of a directory.
//!
//! DVC records in `dvc.lock` an md5 per file, and per directory the md5 of
//! its manifest, with `.dir` appended (`dvc_data/hashfile/tree.py`):
//!
//! - **A file**: DVC 3 (`hash: md5` in the lock) hashes the bytes as they
//!   are. DVC 2 (no `hash:` field) used `md5-dos2unix`: the file is read in
//!   chunks of 1 MiB, and a chunk whose first 512 bytes look like text (no
//!   NUL byte, at most 30 % of bytes outside printable ASCII and `\n\r\t\f\b`)
//!   is hashed with its `\r\n` turned into `\n`.
//! - **A directory**: the files under it (recursively, symlinks to files
//!   followed), each as `{"md5": …, "relpath": …}` with `/`-separated
//!   relative paths, sorted by path, written as Python's `json.dumps(…,
//!   sort_keys=True)` writes a list (`", "` and `": "` separators, non-ASCII
//!   as `\uXXXX`); the md5 of those bytes plus `.dir`. Its size is the sum of
//!   its files' sizes, and `nfiles` their number.
//!
//! Only what `dvc.lock` needs is here: pipe hashes with BLAKE3 everywhere
//! else; these are computed once, to check that what DVC recorded is what
//! is on disk before pipe takes it over. The hashing itself is
//! [`crate::track::md5`]'s, which `.dvc` files use too.

use std::io::Read;
use std::path::Path;

pub use crate::track::md5::Md5Kind;

use crate::hash::DvcIgnore;
use crate::paths::RelPath;
use crate::track::md5::Md5Stream;

/// The md5 of a file, and its size.
pub fn file_md5(path: &Path, kind: Md5Kind) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut stream = Md5Stream::new(kind);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        stream.update(&buf[..n]);
    }
    Ok((stream.finish(), size))
}

/// The directory `dir` of the project at `root`: its md5 (with `.dir`),
/// total size and number of files, leaving out what `.dvcignore` files
/// ignore, as DVC does.
pub fn dir_md5(root: &Path, dir: &RelPath, kind: Md5Kind) -> std::io::Result<(String, u64, u64)> {
    let path = &dir.to_path(root);
    let ignore = DvcIgnore::new(root);
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut size = 0u64;
    let walk = walkdir::WalkDir::new(path)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            !ignore.is_ignored(&rel.to_string_lossy(), e.file_type().is_dir())
        });
    for entry in walk {
        let entry = entry.map_err(std::io::Error::other)?;
        let file_type = entry.file_type();
        let is_file = file_type.is_file()
            || (file_type.is_symlink()
                && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()));
        if !is_file {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(path)
            .map_err(std::io::Error::other)?
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        let (md5, n) = file_md5(entry.path(), kind)?;
        size += n;
        entries.push((rel, md5));
    }
    let digest = crate::track::md5::dir_md5(&entries);
    Ok((digest, size, entries.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_as_dvc_3_and_dvc_2_hash_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"hello\r\nworld\r\n").unwrap();
        // md5 of the bytes, and of "hello\nworld\n".
        assert_eq!(
            file_md5(&path, Md5Kind::Plain).unwrap(),
            ("7ac062d8a84466e70d9b899c0821a51c".to_string(), 14)
        );
        assert_eq!(
            file_md5(&path, Md5Kind::Dos2Unix).unwrap().0,
            "0f723ae7f9bf07744445e93ac5595156".to_string()
        );
    }

    #[test]
    fn a_binary_file_is_never_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        std::fs::write(&path, b"\0\r\n").unwrap();
        assert_eq!(
            file_md5(&path, Md5Kind::Dos2Unix).unwrap(),
            file_md5(&path, Md5Kind::Plain).unwrap()
        );
    }

    #[test]
    fn the_manifest_is_written_as_python_writes_it() {
        let entries = vec![
            ("a/b.txt".to_string(), "0123".to_string()),
            ("é\"q".to_string(), "4567".to_string()),
        ];
        assert_eq!(
            crate::track::md5::dir_manifest(&entries),
            r#"[{"md5": "0123", "relpath": "a/b.txt"}, {"md5": "4567", "relpath": "\u00e9\"q"}]"#
        );
    }
}
