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
//! is on disk before pipe takes it over.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

/// Which md5 DVC recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md5Kind {
    /// DVC 3: the bytes as they are.
    Plain,
    /// DVC 2: text chunks with CRLF turned into LF.
    Dos2Unix,
}

/// The md5 of a file, and its size.
pub fn file_md5(path: &Path, kind: Md5Kind) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        // A full chunk each time (as Python's read(n) of a file gives),
        // so that the text test sees the same blocks DVC saw.
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        size += filled as u64;
        if kind == Md5Kind::Dos2Unix && is_text_block(&chunk[..chunk.len().min(512)]) {
            hasher.update(dos2unix(chunk));
        } else {
            hasher.update(chunk);
        }
        if filled < buf.len() {
            break;
        }
    }
    Ok((hex(&hasher.finalize()), size))
}

/// DVC's guess that a block is text (`istextblock`).
fn is_text_block(block: &[u8]) -> bool {
    if block.is_empty() {
        return true;
    }
    if block.contains(&0) {
        return false;
    }
    let text = |b: u8| (32..127).contains(&b) || b"\n\r\t\x0c\x08".contains(&b);
    let nontext = block.iter().filter(|&&b| !text(b)).count();
    nontext as f64 / block.len() as f64 <= 0.30
}

fn dos2unix(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// A directory's md5 (with `.dir`), total size and number of files.
pub fn dir_md5(path: &Path, kind: Md5Kind) -> std::io::Result<(String, u64, u64)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut size = 0u64;
    for entry in walkdir::WalkDir::new(path).min_depth(1) {
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
    entries.sort();
    let manifest = manifest(&entries);
    let digest = hex(&Md5::digest(manifest.as_bytes()));
    Ok((format!("{digest}.dir"), size, entries.len() as u64))
}

/// The `.dir` manifest as DVC writes it (Python's `json.dumps` of the
/// sorted list, keys sorted).
fn manifest(entries: &[(String, String)]) -> String {
    let mut out = String::from("[");
    for (i, (rel, md5)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"md5\": ");
        json_string(&mut out, md5);
        out.push_str(", \"relpath\": ");
        json_string(&mut out, rel);
        out.push('}');
    }
    out.push(']');
    out
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`).
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
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
            manifest(&entries),
            r#"[{"md5": "0123", "relpath": "a/b.txt"}, {"md5": "4567", "relpath": "\u00e9\"q"}]"#
        );
    }
}
