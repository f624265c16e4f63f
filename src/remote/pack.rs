//! Packs: the many small files of directories moved as a few large objects.
//!
//! One request per file is what makes pushing and pulling 20,000 small
//! files slow: the server's cost per request (and a real network's round
//! trip) outweighs the bytes. So a push with at least [`MIN_FILES`] small
//! files (under [`SMALL`] bytes) of directories to upload packs them: their
//! contents back to back, in packs of about [`PACK_SIZE`], each named by the
//! BLAKE3 of the list of what it holds (each file's hash and size, in
//! order), which fixes its bytes:
//!
//! ```text
//! <url>/v1/packs/ab/cdef…    a pack
//! <url>/v1/places/ab/cdef…   a directory's places: for each of its packed
//!                            files, the pack, offset and size
//! ```
//!
//! A directory's places go up after every pack they name and before the
//! directory's manifest, so a manifest on the remote still promises that
//! every file it lists is there: as an object of its own, or at its place.
//! A fetch reads a directory's places (one request) and its packed files
//! with ranged reads, neighbours in one request, and checks each file
//! against its BLAKE3 exactly as an object of its own: a place that lies
//! yields an error naming the pack and the bytes, and nothing of it enters
//! the cache. The local record of what the remote holds ([`super::known`])
//! keeps each packed file's place, so a directory pushed later that shares
//! files names their places without asking. A file is never cut out of a
//! pack: `gc --cloud` removes a pack once no directory's places name it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, ObjectStoreExt};

use super::known::Place;
use super::transfer::{each, FileObject, Outcome, Quiet, TransferReport};
use super::{Remote, RemoteError};
use crate::cache::Cache;
use crate::hash::{Digest, Manifest};

/// Files under this size are packed.
pub const SMALL: u64 = 1 << 20;
/// A push packs only when it has at least this many small files to send.
pub const MIN_FILES: usize = 64;
/// A pack is closed once it holds this many bytes.
pub const PACK_SIZE: u64 = 8 << 20;
/// Packs built and sent at once (each is held in memory while it goes up).
pub const PACKS_AT_ONCE: usize = 4;
/// Packed files this close together are read in one request…
const GAP: u64 = 1 << 20;
/// …of at most this many bytes.
const RANGE_MAX: u64 = PACK_SIZE;

const MAGIC: &[u8] = b"PIPEPLACES1\n";

/// A directory's places: where each of its packed files is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Places(pub Vec<(Digest, Place)>);

impl Places {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries = self.0.clone();
        entries.sort();
        entries.dedup_by_key(|(d, _)| *d);
        let mut out = Vec::with_capacity(MAGIC.len() + 80 * entries.len());
        out.extend_from_slice(MAGIC);
        for (file, p) in entries {
            out.extend_from_slice(file.as_bytes());
            out.extend_from_slice(p.pack.as_bytes());
            out.extend_from_slice(&p.offset.to_le_bytes());
            out.extend_from_slice(&p.size.to_le_bytes());
        }
        out
    }

    pub fn parse(bytes: &[u8]) -> Option<Places> {
        let body = bytes.strip_prefix(MAGIC)?;
        if body.len() % 80 != 0 {
            return None;
        }
        let digest = |b: &[u8]| Digest(b.try_into().expect("32 bytes"));
        let number = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Some(Places(
            body.chunks_exact(80)
                .map(|r| {
                    (
                        digest(&r[..32]),
                        Place {
                            pack: digest(&r[32..64]),
                            offset: number(&r[64..72]),
                            size: number(&r[72..80]),
                        },
                    )
                })
                .collect(),
        ))
    }

    /// The packs these places name.
    pub fn packs(&self) -> BTreeSet<Digest> {
        self.0.iter().map(|(_, p)| p.pack).collect()
    }
}

/// Splits the files to pack into packs of about [`PACK_SIZE`], in path
/// order (a directory's neighbours stay together).
pub(super) fn plan(mut files: Vec<&FileObject>) -> Vec<Vec<&FileObject>> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut packs = Vec::new();
    let (mut cur, mut bytes) = (Vec::new(), 0);
    for f in files {
        cur.push(f);
        bytes += f.size;
        if bytes >= PACK_SIZE {
            packs.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        packs.push(cur);
    }
    packs
}

/// One ranged read of a pack: the files it brings, by offset.
pub(super) struct Range<'a> {
    pub pack: Digest,
    pub start: u64,
    pub end: u64,
    pub files: Vec<(Place, &'a FileObject)>,
}

/// Groups packed files into ranged reads: neighbours (at most [`GAP`]
/// apart) in one read of at most [`RANGE_MAX`] bytes.
pub(super) fn ranges<'a>(mut files: Vec<(Place, &'a FileObject)>) -> Vec<Range<'a>> {
    files.sort_by_key(|(p, _)| (p.pack, p.offset));
    let mut out: Vec<Range> = Vec::new();
    for (place, f) in files {
        let end = place.offset + place.size;
        if let Some(last) = out.last_mut() {
            if last.pack == place.pack
                && place.offset >= last.end
                && place.offset - last.end <= GAP
                && end - last.start <= RANGE_MAX
            {
                last.end = end;
                last.files.push((place, f));
                continue;
            }
        }
        out.push(Range {
            pack: place.pack,
            start: place.offset,
            end,
            files: vec![(place, f)],
        });
    }
    out
}

impl Remote {
    pub(super) fn pack_key(&self, pack: &Digest) -> StorePath {
        let hex = pack.to_hex();
        self.root
            .clone()
            .join("packs")
            .join(&hex[..2])
            .join(&hex[2..])
    }

    pub(super) fn places_key(&self, dir: &Digest) -> StorePath {
        let hex = dir.to_hex();
        self.root
            .clone()
            .join("places")
            .join(&hex[..2])
            .join(&hex[2..])
    }

    /// Builds one pack from the cache and uploads it; the files that went
    /// into it are added to `placed` (and to the local record, with their
    /// places). A local copy that does not match its hash is left out and
    /// reported.
    pub(super) async fn upload_pack(
        &self,
        cache: &Cache,
        files: &[&FileObject],
        placed: &Mutex<Vec<(Digest, Place)>>,
    ) -> Result<Outcome, RemoteError> {
        let paths: Vec<(Digest, std::path::PathBuf, String)> = files
            .iter()
            .map(|f| (f.hash, cache.object_path(&f.hash), f.path.to_string()))
            .collect();
        // Read and checked on a blocking thread. The pack is the files'
        // own buffers one after the other (no one large buffer to copy
        // into, which the allocator would not give back).
        let read = tokio::task::spawn_blocking(move || {
            let mut bytes = object_store::PutPayloadMut::new();
            let mut entries = Vec::with_capacity(paths.len());
            let mut missing = Vec::new();
            let mut offset = 0u64;
            for (hash, local, shown) in paths {
                let content = match std::fs::read(&local) {
                    Ok(c) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        missing.push(format!("{shown}: not in the local cache"));
                        continue;
                    }
                    Err(source) => {
                        return Err(RemoteError::Local {
                            action: "read",
                            path: local,
                            source,
                        })
                    }
                };
                if Digest::of(&content) != hash {
                    missing.push(format!(
                        "{shown}: the local cache's copy is damaged (run `pipe cache verify`); not uploaded"
                    ));
                    continue;
                }
                let size = content.len() as u64;
                entries.push((hash, offset, size));
                offset += size;
                bytes.push(bytes::Bytes::from(content));
            }
            Ok((bytes.freeze(), entries, missing))
        })
        .await
        .expect("reading a pack does not panic");
        let (bytes, entries, missing) = read?;
        if entries.is_empty() {
            return Ok(Outcome::Packed {
                files: 0,
                bytes: 0,
                missing,
            });
        }
        // Named by what it holds: the same checked files in the same order
        // are the same bytes (no second pass over them to hash).
        let pack = {
            let mut h = blake3::Hasher::new();
            h.update(b"pipe pack 1\n");
            for (hash, _, size) in &entries {
                h.update(hash.as_bytes());
                h.update(&size.to_le_bytes());
            }
            Digest(*h.finalize().as_bytes())
        };
        let key = self.pack_key(&pack);
        let size = bytes.content_length() as u64;
        let placed = |entries: &[(Digest, u64, u64)]| {
            let mut placed = placed.lock().expect("placed lock");
            for &(hash, offset, size) in entries {
                let place = Place { pack, offset, size };
                self.known.insert_packed(hash, place);
                placed.push((hash, place));
            }
        };
        // The same files packed again (a push resumed after an interruption)
        // make the same pack: one question saves sending it again.
        match self.store.head(&key).await {
            Ok(meta) if meta.size == size => {
                placed(&entries);
                return Ok(Outcome::PresentMany {
                    files: entries.len() as u64,
                    missing,
                });
            }
            Ok(meta) => {
                return Err(RemoteError::Object {
                    remote: self.name.clone(),
                    key: self.shown_key(&key),
                    message: format!(
                        "a pack of {} bytes where this one has {size}: it is damaged; remove it from the remote and push again",
                        meta.size
                    ),
                })
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.classify(&key, e)),
        }
        // The same name is the same bytes: one there already is as good.
        self.create(&key, bytes).await?;
        placed(&entries);
        Ok(Outcome::Packed {
            files: entries.len() as u64,
            bytes: size,
            missing,
        })
    }

    /// Uploads the places of the directory `dir` (before its manifest).
    ///
    /// If the remote has places for it already (a teammate pushed it at
    /// the same time), theirs are the ones its manifest will rely on, if
    /// every pack they name is there. Their places are not recorded (they
    /// are unchecked), and ours are forgotten (no places on the remote name
    /// our packs, so `gc --cloud` may remove them): a later push packs
    /// those files again rather than trust either. Places naming a pack
    /// that is gone (a push interrupted long ago, its packs collected) are
    /// replaced by ours.
    pub(super) async fn upload_places(
        &self,
        dir: &Digest,
        manifest: &Manifest,
        places: &Places,
    ) -> Result<(), RemoteError> {
        let key = self.places_key(dir);
        for _ in 0..2 {
            if self.create(&key, places.to_bytes()).await? {
                return Ok(());
            }
            let theirs = self.download_places(dir, manifest).await?;
            let mut whole = true;
            for pack in theirs.map(|p| p.packs()).unwrap_or_default() {
                let pack_key = self.pack_key(&pack);
                match self.store.head(&pack_key).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => whole = false,
                    Err(e) => return Err(self.classify(&pack_key, e)),
                }
            }
            if whole {
                for (hash, _) in &places.0 {
                    self.known.remove(hash);
                }
                return Ok(());
            }
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.classify(&key, e)),
            }
        }
        Err(RemoteError::Object {
            remote: self.name.clone(),
            key: self.shown_key(&key),
            message: "names packs that are not on the remote, and came back after it was replaced; push again".into(),
        })
    }

    /// The places of the directory `dir` on the remote, if any, keeping
    /// only entries for files of `manifest` with their size.
    pub(super) async fn download_places(
        &self,
        dir: &Digest,
        manifest: &Manifest,
    ) -> Result<Option<Places>, RemoteError> {
        let key = self.places_key(dir);
        let Some(bytes) = self.get_if_any(&key).await? else {
            return Ok(None);
        };
        let Some(places) = Places::parse(&bytes) else {
            return Err(RemoteError::Object {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                message: "not a valid record of packed files' places; it was not used".into(),
            });
        };
        let sizes: std::collections::HashMap<Digest, u64> =
            manifest.files().map(|e| (e.hash, e.size)).collect();
        Ok(Some(Places(
            places
                .0
                .into_iter()
                .filter(|(hash, p)| {
                    p.size > 0
                        && p.offset.checked_add(p.size).is_some()
                        && sizes.get(hash) == Some(&p.size)
                })
                .collect(),
        )))
    }

    /// Where the packed files of `dirs` are: their places, read `jobs` at
    /// once (failures go to `report`).
    pub(super) async fn places_of(
        &self,
        dirs: Vec<(&Digest, &Manifest)>,
        report: &Mutex<TransferReport>,
    ) -> Result<BTreeMap<Digest, Place>, RemoteError> {
        let places = Mutex::new(BTreeMap::new());
        let places_ref = &places;
        each(
            self,
            self.jobs,
            false,
            dirs,
            &Quiet,
            report,
            |(dir, m)| async move {
                let outcome = self.download_places(dir, m).await.map(|found| {
                    let mut places = places_ref.lock().expect("places lock");
                    places.extend(found.map(|p| p.0).unwrap_or_default());
                    Outcome::Present
                });
                (dir.to_string(), 0, outcome)
            },
        )
        .await?;
        Ok(places.into_inner().expect("places lock"))
    }

    /// Reads one range of a pack into the cache, each file checked against
    /// its hash as it arrives.
    pub(super) async fn download_range(
        &self,
        cache: &Cache,
        range: &Range<'_>,
    ) -> Result<Outcome, RemoteError> {
        let key = self.pack_key(&range.pack);
        let shown = |r: &Range| format!("{} (bytes {}..{})", self.shown_key(&key), r.start, r.end);
        let opts = GetOptions::default().with_range(Some(range.start..range.end));
        let got = match self.store.get_opts(&key, opts).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Outcome::Missing(format!(
                    "its pack {} is not on remote `{}`",
                    self.shown_key(&key),
                    self.name
                )))
            }
            Err(e) => return Err(self.classify(&key, e)),
        };
        let local_err = |e: &dyn std::fmt::Display| RemoteError::Object {
            remote: self.name.clone(),
            key: shown(range),
            message: e.to_string(),
        };
        let mut body = got.into_stream();
        let mut pos = range.start;
        let mut next = 0;
        let mut current = None;
        let mut moved = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.classify(&key, e))?;
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() && next < range.files.len() {
                let (place, f) = range.files[next];
                if pos < place.offset {
                    let skip = (place.offset - pos).min(rest.len() as u64);
                    pos += skip;
                    rest = &rest[skip as usize..];
                    continue;
                }
                let want = place.offset + place.size - pos;
                let take = want.min(rest.len() as u64) as usize;
                if current.is_none() {
                    current = Some(cache.incoming().map_err(|e| local_err(&e))?);
                }
                let incoming = current.as_mut().expect("an incoming object");
                incoming.write(&rest[..take]).map_err(|e| local_err(&e))?;
                pos += take as u64;
                rest = &rest[take..];
                if pos == place.offset + place.size {
                    let incoming = current.take().expect("an incoming object");
                    match incoming.finish(&f.hash) {
                        Ok(()) => {
                            self.known.insert_packed(f.hash, place);
                            moved += 1;
                        }
                        Err(Some(got)) => {
                            return Err(RemoteError::Corrupt {
                                remote: self.name.clone(),
                                key: format!(
                                    "{} (bytes {}..{}, for {})",
                                    self.shown_key(&key),
                                    place.offset,
                                    place.offset + place.size,
                                    f.path
                                ),
                                got,
                            })
                        }
                        Err(None) => return Err(local_err(&"cannot store it in the cache")),
                    }
                    next += 1;
                }
            }
        }
        if next < range.files.len() {
            return Err(local_err(
                &"the pack ended before the files it should hold: it is truncated; those files were not used",
            ));
        }
        Ok(Outcome::Packed {
            files: moved,
            bytes: range.end - range.start,
            missing: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_round_trip_and_reject_what_is_not_theirs() {
        let place = |o| Place {
            pack: Digest::of(b"p"),
            offset: o,
            size: 3,
        };
        let places = Places(vec![
            (Digest::of(b"b"), place(3)),
            (Digest::of(b"a"), place(0)),
        ]);
        let bytes = places.to_bytes();
        let back = Places::parse(&bytes).unwrap();
        assert_eq!(back.0.len(), 2);
        assert_eq!(back.packs().len(), 1);
        assert!(Places::parse(&bytes[..bytes.len() - 1]).is_none());
        assert!(Places::parse(b"{\"json\": true}").is_none());
    }

    #[test]
    fn neighbours_share_a_read_and_far_or_overlapping_ones_do_not() {
        let f = FileObject {
            hash: Digest::of(b"f"),
            size: 10,
            path: crate::paths::RelPath::from_normalized("d/f"),
            in_dir: true,
        };
        let at = |pack: &[u8], offset, size| Place {
            pack: Digest::of(pack),
            offset,
            size,
        };
        let files = vec![
            (at(b"p", 0, 10), &f),
            (at(b"p", 10, 10), &f),
            (at(b"p", 20 + GAP + 1, 10), &f), // too far
            (at(b"p", 25 + GAP, 10), &f),     // overlaps the one before
            (at(b"q", 0, RANGE_MAX), &f),     // another pack
        ];
        let got: Vec<(u64, u64, usize)> = ranges(files)
            .iter()
            .map(|r| (r.start, r.end, r.files.len()))
            .collect();
        let mut want = vec![
            (0, 20, 2),
            (20 + GAP + 1, 31 + GAP, 1),
            (25 + GAP, 35 + GAP, 1),
            (0, RANGE_MAX, 1),
        ];
        // Packs sort by hash.
        if Digest::of(b"q") < Digest::of(b"p") {
            want.rotate_right(1);
        }
        assert_eq!(got, want);
    }
}
