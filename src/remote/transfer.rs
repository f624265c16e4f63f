//! What moving objects between the cache and a remote shares, and asking
//! a remote what it lacks (`status --cloud`).
//!
//! Transfers (`push`, `fetch`) run concurrently (`jobs`
//! at once, on a tokio runtime; the caller's thread blocks until they
//! end), through `each`, which stops at the first error about the whole
//! remote and saves the local record of what the remote holds as it goes.
//! Each object either arrives whole and verified or not at all; an
//! interrupted transfer (Ctrl-C, `kill -9`, a network error) leaves both
//! sides valid, and the next one moves only what is missing.
//!
//! Asking: one `HEAD` per object of its own, per manifest, and per pack
//! (for all the files in it, [`super::pack`]); what is found is recorded,
//! what is missing forgotten, so that the next push sends it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use object_store::ObjectStoreExt;

use object_store::path::Path as StorePath;

use super::known::Place;
use super::{Remote, RemoteError};
use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::hash::{Digest, Manifest};
use crate::lock::PathRecord;
use crate::paths::RelPath;

/// What a command moves: output records (files and directories, with the
/// output path they are, for messages) and run-cache entries.
#[derive(Debug, Clone, Default)]
pub struct ObjectSet {
    pub records: Vec<PathRecord>,
    /// Stage fingerprint → its run-cache entry.
    pub runs: BTreeMap<Digest, RunRecord>,
}

impl ObjectSet {
    pub fn add(&mut self, record: &PathRecord) {
        if !self
            .records
            .iter()
            .any(|r| r.blake3 == record.blake3 && r.is_dir() == record.is_dir())
        {
            self.records.push(record.clone());
        }
    }
}

/// How a transfer reports its advance (the CLI draws bars; tests ignore it).
pub trait Progress: Sync {
    /// A wave starts: `files` objects of `bytes` in all.
    fn start(&self, what: &str, files: u64, bytes: u64);
    /// Objects are done (moved, or found there already).
    fn advance(&self, files: u64, bytes: u64);
    fn finish(&self);
}

/// A progress that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// What a transfer did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TransferReport {
    /// Objects (files and manifests) moved, and their bytes.
    pub moved: u64,
    pub bytes: u64,
    /// Objects that were there already (remote for a push, local for a
    /// fetch).
    pub present: u64,
    /// Run-cache entries moved.
    pub runs: u64,
    /// Outputs whose content is on neither side (`path: reason`).
    pub missing: Vec<String>,
    /// Objects that could not be moved, with why.
    pub failed: Vec<String>,
}

impl TransferReport {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.failed.is_empty()
    }
}

/// One file object of a set: its hash, size, an output path it is, and
/// whether it is a directory's file (those may be packed).
pub(super) struct FileObject {
    pub hash: Digest,
    pub size: u64,
    pub path: RelPath,
    pub in_dir: bool,
}

pub(super) enum Outcome {
    Moved(u64),
    /// A pack, or a range of one: its files and bytes, and files left out
    /// (`path: why`).
    Packed {
        files: u64,
        bytes: u64,
        missing: Vec<String>,
    },
    Present,
    /// A pack found there already: its files, and files left out of it
    /// (`path: why`).
    PresentMany {
        files: u64,
        missing: Vec<String>,
    },
    Missing(String),
}

/// Runs `task` on every item, `jobs` at once, stopping early after an error
/// about the whole remote (the first such error is returned).
pub(super) async fn each<T, F, Fut>(
    remote: &Remote,
    jobs: usize,
    runs: bool,
    items: Vec<T>,
    progress: &dyn Progress,
    report: &Mutex<TransferReport>,
    task: F,
) -> Result<BTreeSet<usize>, RemoteError>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = (String, u64, Result<Outcome, RemoteError>)>,
{
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<RemoteError>> = Mutex::new(None);
    let task = &task;
    let (stop, fatal_ref) = (&stop, &fatal);
    let mut done = BTreeSet::new();
    let mut results = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| async move {
            if stop.load(Ordering::Relaxed) {
                return (i, None);
            }
            (i, Some(task(item).await))
        })
        .buffer_unordered(jobs.max(1));
    let mut since_save = 0;
    while let Some((i, result)) = results.next().await {
        let Some((label, size, result)) = result else {
            continue;
        };
        let mut r = report.lock().expect("report lock");
        let mut files = 1;
        match result {
            Ok(Outcome::Packed {
                files: n,
                bytes,
                missing,
            }) => {
                r.moved += n;
                r.bytes += bytes;
                r.missing.extend(missing);
                files = n;
                done.insert(i);
            }
            Ok(Outcome::Moved(_)) if runs => {
                r.runs += 1;
                done.insert(i);
            }
            Ok(Outcome::Moved(bytes)) => {
                r.moved += 1;
                r.bytes += bytes;
                done.insert(i);
            }
            Ok(Outcome::Present) => {
                r.present += 1;
                done.insert(i);
            }
            Ok(Outcome::PresentMany { files: n, missing }) => {
                r.present += n;
                r.missing.extend(missing);
                files = n;
                done.insert(i);
            }
            Ok(Outcome::Missing(why)) => r.missing.push(format!("{label}: {why}")),
            Err(e) if e.is_fatal() => {
                stop.store(true, Ordering::Relaxed);
                fatal_ref.lock().expect("fatal lock").get_or_insert(e);
            }
            Err(e) => r.failed.push(e.to_string()),
        }
        drop(r);
        progress.advance(files, size);
        since_save += files;
        if since_save >= 1000 {
            since_save = 0;
            let _ = remote.known.save();
        }
    }
    let _ = remote.known.save();
    match fatal.into_inner().expect("fatal lock") {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// What one key on the remote holds: objects, each at its place if packed.
type Held = Vec<(Digest, Option<Place>)>;

/// A directory output: its manifest's hash, the manifest, its path.
pub(super) type DirObject = (Digest, Manifest, RelPath);

/// The files and manifests of `set`, from the local cache: `(files,
/// directories, records missing locally)`.
pub(super) fn expand(
    cache: &Cache,
    set: &ObjectSet,
) -> (Vec<FileObject>, Vec<DirObject>, Vec<String>) {
    let mut files: BTreeMap<Digest, FileObject> = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut missing = Vec::new();
    for r in &set.records {
        if !r.is_dir() {
            files
                .entry(r.blake3)
                .or_insert(FileObject {
                    hash: r.blake3,
                    size: r.size,
                    path: r.path.clone(),
                    in_dir: false,
                })
                .in_dir = false;
            continue;
        }
        match cache.manifest(&r.blake3) {
            Ok(m) => {
                for e in m.files() {
                    files.entry(e.hash).or_insert(FileObject {
                        hash: e.hash,
                        size: e.size,
                        path: r.path.join(&e.path),
                        in_dir: true,
                    });
                }
                dirs.push((r.blake3, m, r.path.clone()));
            }
            Err(_) => missing.push(format!("{}: not in the local cache", r.path)),
        }
    }
    (files.into_values().collect(), dirs, missing)
}

impl Remote {
    /// The keys to ask about for `files` (each at its place, if packed):
    /// a file's own object, or its pack, once for all the files in it.
    pub(super) fn questions(
        &self,
        files: impl Iterator<Item = (Digest, Option<Place>)>,
    ) -> Vec<(StorePath, Held)> {
        let mut packs: BTreeMap<Digest, Held> = BTreeMap::new();
        let mut keys: Vec<(StorePath, Held)> = Vec::new();
        for (hash, place) in files {
            match place {
                Some(p) => packs.entry(p.pack).or_default().push((hash, Some(p))),
                None => keys.push((self.object_key(&hash, false), vec![(hash, None)])),
            }
        }
        keys.extend(
            packs
                .into_iter()
                .map(|(pack, held)| (self.pack_key(&pack), held)),
        );
        keys
    }

    /// Asks the remote about each key (`HEAD`, `jobs` at once): records the
    /// objects of their own that it holds, forgets what it lacks, and
    /// returns what it lacks.
    pub(super) async fn ask(
        &self,
        keys: Vec<(StorePath, Held)>,
    ) -> Result<BTreeSet<Digest>, RemoteError> {
        let absent = Mutex::new(BTreeSet::new());
        let absent_ref = &absent;
        let report = Mutex::new(TransferReport::default());
        each(
            self,
            self.jobs,
            false,
            keys,
            &Quiet,
            &report,
            |(key, held)| async move {
                let outcome = match self.store.head(&key).await {
                    Ok(_) => {
                        // A place is recorded only by what built the pack
                        // or read the file back from it, never from places
                        // a remote serves (unchecked, they could spread).
                        for (hash, place) in &held {
                            if place.is_none() {
                                self.known.insert(*hash);
                            }
                        }
                        Ok(Outcome::Present)
                    }
                    Err(object_store::Error::NotFound { .. }) => {
                        let mut absent = absent_ref.lock().expect("absent lock");
                        for (hash, _) in &held {
                            self.known.remove(hash);
                            absent.insert(*hash);
                        }
                        Ok(Outcome::Present)
                    }
                    Err(e) => Err(self.classify(&key, e)),
                };
                (key.to_string(), 0, outcome)
            },
        )
        .await?;
        Ok(absent.into_inner().expect("absent lock"))
    }

    /// Which of `set`'s objects the remote lacks, asking it about each
    /// (`HEAD`, `jobs` at once): the output paths (files, or directories
    /// with any file missing).
    pub fn missing(&self, cache: &Cache, set: &ObjectSet) -> Result<Vec<RelPath>, RemoteError> {
        let (files, dirs, _) = expand(cache, set);
        let report = Mutex::new(TransferReport::default());
        let absent = self.block_on(async {
            // Where the packed files are: each directory's places.
            let places = self
                .places_of(dirs.iter().map(|(h, m, _)| (h, m)).collect(), &report)
                .await?;
            // One question per object of its own, manifest, and pack.
            let mut keys =
                self.questions(files.iter().map(|f| (f.hash, places.get(&f.hash).copied())));
            keys.extend(
                dirs.iter()
                    .map(|(h, _, _)| (self.object_key(h, true), vec![(*h, None)])),
            );
            self.ask(keys).await
        })?;
        let mut out = Vec::new();
        for r in &set.records {
            let lacking = if r.is_dir() {
                absent.contains(&r.blake3)
                    || dirs
                        .iter()
                        .find(|(h, _, _)| h == &r.blake3)
                        .is_some_and(|(_, m, _)| m.files().any(|e| absent.contains(&e.hash)))
            } else {
                absent.contains(&r.blake3)
            };
            if lacking {
                // A manifest the remote holds without all its files must
                // not let a push skip the directory.
                if r.is_dir() {
                    self.known.remove(&r.blake3);
                }
                out.push(r.path.clone());
            }
        }
        let _ = self.known.save();
        out.sort();
        out.dedup();
        Ok(out)
    }
}
