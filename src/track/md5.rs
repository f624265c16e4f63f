//! DVC's content hashes, which `.dvc` files record: the md5 of a file, and
//! a directory's `….dir` md5.
//!
//! * DVC 3 (`hash: md5` in the entry): the md5 of the file's bytes.
//! * DVC 2 (no `hash:`, "md5-dos2unix"): the file is read in chunks of
//!   1 MiB, and in a chunk whose first 512 bytes look like text (no NUL,
//!   at most 30 % of bytes outside printable ASCII and `\n\r\t\f\b`),
//!   `\r\n` becomes `\n` before hashing.
//! * A directory: the md5 of `json.dumps(entries, sort_keys=True)` where
//!   entries are `{"md5": …, "relpath": …}` sorted by path (Python's JSON:
//!   `", "` and `": "` separators, non-ASCII escaped), with `.dir`
//!   appended.
//!
//! pipe's cache is addressed by BLAKE3, so md5 is computed only where a
//! `.dvc` file needs it: when one is written, and when one written by DVC
//! is checked against the workspace. [`Md5Index`] remembers the md5 of
//! each BLAKE3 content it computed (`.pipeline-cache/v1/md5-index`), so a
//! file is read for its md5 once, and an md5 that DVC recorded can be
//! turned into the BLAKE3 object that holds it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use md5::{Digest as _, Md5};

use crate::hash::Digest;

/// Which md5 a `.dvc` entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Md5Kind {
    /// DVC 3: `hash: md5`.
    Plain,
    /// DVC 2: no `hash:` key, text chunks hashed with `\n` line ends.
    Dos2Unix,
}

impl Md5Kind {
    fn tag(self) -> &'static str {
        match self {
            Md5Kind::Plain => "md5",
            Md5Kind::Dos2Unix => "md5-dos2unix",
        }
    }

    fn from_tag(tag: &str) -> Option<Md5Kind> {
        match tag {
            "md5" => Some(Md5Kind::Plain),
            "md5-dos2unix" => Some(Md5Kind::Dos2Unix),
            _ => None,
        }
    }
}

const CHUNK: usize = 1 << 20;
const TEXT_PROBE: usize = 512;

/// DVC's guess whether a block is text.
fn is_text(block: &[u8]) -> bool {
    if block.is_empty() {
        return true;
    }
    if block.contains(&0) {
        return false;
    }
    let nontext = block
        .iter()
        .filter(|&&b| !((32..127).contains(&b) || b"\n\r\t\x0c\x08".contains(&b)))
        .count();
    nontext as f64 / block.len() as f64 <= 0.30
}

/// An md5 fed as bytes arrive (a file read, a download).
pub struct Md5Stream {
    kind: Md5Kind,
    hasher: Md5,
    /// Dos2Unix: bytes of the chunk being gathered.
    pending: Vec<u8>,
}

impl Md5Stream {
    pub fn new(kind: Md5Kind) -> Md5Stream {
        Md5Stream {
            kind,
            hasher: Md5::new(),
            pending: Vec::new(),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.kind == Md5Kind::Plain {
            self.hasher.update(bytes);
            return;
        }
        while !bytes.is_empty() {
            let take = (CHUNK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                self.flush_chunk();
            }
        }
    }

    fn flush_chunk(&mut self) {
        let chunk = std::mem::take(&mut self.pending);
        if is_text(&chunk[..chunk.len().min(TEXT_PROBE)]) {
            let mut out = Vec::with_capacity(chunk.len());
            let mut i = 0;
            while i < chunk.len() {
                if chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                out.push(chunk[i]);
                i += 1;
            }
            self.hasher.update(&out);
        } else {
            self.hasher.update(&chunk);
        }
    }

    /// The hex digest.
    pub fn finish(mut self) -> String {
        if !self.pending.is_empty() {
            self.flush_chunk();
        }
        hex(&self.hasher.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The md5 of the file at `path`.
pub fn file_md5(path: &Path, kind: Md5Kind) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut stream = Md5Stream::new(kind);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.update(&buf[..n]);
    }
    Ok(stream.finish())
}

/// A directory's `….dir` md5 from its files' relative paths and md5s.
pub fn dir_md5(files: &[(String, String)]) -> String {
    let mut hasher = Md5::new();
    hasher.update(dir_manifest(files).as_bytes());
    format!("{}.dir", hex(&hasher.finalize()))
}

/// The `.dir` manifest DVC hashes for a directory: its files' relative
/// paths and md5s, sorted by path, as Python's `json.dumps(…,
/// sort_keys=True)` writes the list.
pub fn dir_manifest(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut json = String::from("[");
    for (i, (path, md5)) in sorted.iter().enumerate() {
        if i > 0 {
            json.push_str(", ");
        }
        json.push_str("{\"md5\": ");
        python_json_string(md5, &mut json);
        json.push_str(", \"relpath\": ");
        python_json_string(path, &mut json);
        json.push('}');
    }
    json.push(']');
    json
}

/// `text` as Python's `json.dumps` writes a string (ASCII only).
pub(crate) fn python_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The md5s computed so far, by BLAKE3 content; see the module docs.
///
/// An append-only text file of `blake3 kind md5` lines: several processes
/// may add to it at once, and a line cut short is skipped when read.
#[derive(Debug)]
pub struct Md5Index {
    path: PathBuf,
    by_blake3: Mutex<HashMap<(Digest, Md5Kind), String>>,
    by_md5: Mutex<HashMap<String, Digest>>,
    learnt: Mutex<Vec<(Digest, Md5Kind, String)>>,
}

impl Md5Index {
    /// The index in the cache directory `cache_dir` (`…/v1`).
    pub fn load(cache_dir: &Path) -> Md5Index {
        let path = cache_dir.join("md5-index");
        let mut by_blake3 = HashMap::new();
        let mut by_md5 = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let mut parts = line.split(' ');
                let (Some(b), Some(k), Some(m), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let (Some(digest), Some(kind)) = (Digest::from_hex(b), Md5Kind::from_tag(k)) else {
                    continue;
                };
                if !is_md5(m) {
                    continue;
                }
                by_md5.insert(m.to_string(), digest);
                by_blake3.insert((digest, kind), m.to_string());
            }
        }
        Md5Index {
            path,
            by_blake3: Mutex::new(by_blake3),
            by_md5: Mutex::new(by_md5),
            learnt: Mutex::default(),
        }
    }

    /// The md5 of the content `blake3`, if known.
    pub fn md5(&self, blake3: &Digest, kind: Md5Kind) -> Option<String> {
        self.by_blake3
            .lock()
            .expect("md5 index lock")
            .get(&(*blake3, kind))
            .cloned()
    }

    /// The BLAKE3 of the content whose md5 is `md5`, if known.
    pub fn blake3(&self, md5: &str) -> Option<Digest> {
        self.by_md5
            .lock()
            .expect("md5 index lock")
            .get(md5)
            .copied()
    }

    pub fn insert(&self, blake3: Digest, kind: Md5Kind, md5: &str) {
        let fresh = self
            .by_blake3
            .lock()
            .expect("md5 index lock")
            .insert((blake3, kind), md5.to_string())
            .as_deref()
            != Some(md5);
        self.by_md5
            .lock()
            .expect("md5 index lock")
            .insert(md5.to_string(), blake3);
        if fresh {
            self.learnt
                .lock()
                .expect("md5 index lock")
                .push((blake3, kind, md5.to_string()));
        }
    }

    /// The md5 of `blake3`'s content, read from `file` (which holds it)
    /// when not known yet.
    pub fn md5_of(&self, blake3: &Digest, kind: Md5Kind, file: &Path) -> std::io::Result<String> {
        if let Some(m) = self.md5(blake3, kind) {
            return Ok(m);
        }
        let m = file_md5(file, kind)?;
        self.insert(*blake3, kind, &m);
        Ok(m)
    }

    /// Appends what was learnt (losing it only costs a read later).
    pub fn save(&self) -> std::io::Result<()> {
        let learnt = std::mem::take(&mut *self.learnt.lock().expect("md5 index lock"));
        if learnt.is_empty() {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = String::new();
        for (b, k, m) in learnt {
            text.push_str(&format!("{} {} {m}\n", b.to_hex(), k.tag()));
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(text.as_bytes())
    }
}

/// True for 32 lowercase hex digits, optionally with `.dir`.
pub fn is_md5(text: &str) -> bool {
    let hex = text.strip_suffix(".dir").unwrap_or(text);
    hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_what_dvc_records() {
        // `dvc add` of `seq 1 1000` and of a two-file directory.
        let mut stream = Md5Stream::new(Md5Kind::Plain);
        for i in 1..=1000 {
            stream.update(format!("{i}\n").as_bytes());
        }
        assert_eq!(stream.finish(), "53d025127ae99ab79e8502aae2d9bea6");
        let files = [
            (
                "sub/b.txt".to_string(),
                "3b5d5c3712955042212316173ccf37be".to_string(),
            ),
            (
                "a.txt".to_string(),
                "60b725f10c9c85c70d97880dfe8191b3".to_string(),
            ),
        ];
        assert_eq!(dir_md5(&files), "849835d274483dc683eb416d6e4f887d.dir");
    }

    #[test]
    fn dos2unix_hashes_text_with_unix_line_ends_and_binary_as_is() {
        let mut crlf = Md5Stream::new(Md5Kind::Dos2Unix);
        crlf.update(b"a\r\nb\r\n");
        let mut lf = Md5Stream::new(Md5Kind::Plain);
        lf.update(b"a\nb\n");
        assert_eq!(crlf.finish(), lf.finish());
        let mut binary = Md5Stream::new(Md5Kind::Dos2Unix);
        binary.update(b"\0\r\n");
        let mut plain = Md5Stream::new(Md5Kind::Plain);
        plain.update(b"\0\r\n");
        assert_eq!(binary.finish(), plain.finish());
    }

    #[test]
    fn non_ascii_paths_are_escaped_as_python_does() {
        let mut out = String::new();
        python_json_string("é😀\"", &mut out);
        assert_eq!(out, "\"\\u00e9\\ud83d\\ude00\\\"\"");
    }
}
