//! Moving objects between the cache and a remote: push, fetch, and asking
//! what a remote lacks.
//!
//! Transfers run concurrently (`jobs` at once, on a tokio runtime; the
//! caller's thread blocks until they end). A push goes in three waves,
//! each after the previous one succeeded for what it needs: files, then
//! the manifests of directories whose files are all there, then run-cache
//! entries whose outputs are all there. A fetch goes manifests first (to
//! learn the files of directories), then files. Each object either arrives
//! whole and verified or not at all; an interrupted transfer (Ctrl-C,
//! `kill -9`, a network error) leaves both sides valid, and the next one
//! moves only what is missing.
//!
//! Small files of directories, when a push has many, go up in packs and
//! come back with ranged reads ([`super::pack`]); the rest are objects of
//! their own.
//!
//! Existence on the remote: objects this machine pushed or found before
//! are in the local record ([`super::known`]) and are not asked about
//! again (unless `verify`). A small object not in the record is simply
//! created with a conditional put (one request whether it is there or not);
//! a large one is asked about first (`HEAD`), so its bytes are not sent for
//! nothing. Large files go up in multipart uploads, streamed and hashed as
//! they are read: a local object that does not match its hash is never
//! uploaded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use object_store::ObjectStoreExt;
use tokio::io::AsyncReadExt;

use object_store::path::Path as StorePath;

use super::known::Place;
use super::{pack, Remote, RemoteError};
use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::hash::{Digest, Manifest};
use crate::lock::PathRecord;
use crate::paths::RelPath;

/// Files from this size on are asked about before they are uploaded.
const ASK_FIRST: u64 = 1 << 20;
/// Files from this size on go up in parts of this size.
const PART: usize = 16 << 20;

/// Parts of one file in flight at once.
const PARTS_AT_ONCE: usize = 4;

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
async fn each<T, F, Fut>(
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
type DirObject = (Digest, Manifest, RelPath);

/// The files and manifests of `set`, from the local cache: `(files,
/// directories, records missing locally)`.
fn expand(cache: &Cache, set: &ObjectSet) -> (Vec<FileObject>, Vec<DirObject>, Vec<String>) {
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
    /// Uploads what `set` names and the remote lacks. `verify` asks the
    /// remote about every object instead of trusting the local record.
    pub fn push(
        &self,
        cache: &Cache,
        set: &ObjectSet,
        verify: bool,
        progress: &dyn Progress,
    ) -> Result<TransferReport, RemoteError> {
        // A directory whose manifest the remote is known to hold has all
        // its files there too (a manifest goes up after its files): it is
        // not even opened. A push of nothing new reads no manifest.
        let (known_dirs, rest): (Vec<&PathRecord>, Vec<&PathRecord>) = set
            .records
            .iter()
            .partition(|r| r.is_dir() && !verify && self.known.contains(&r.blake3));
        let rest = ObjectSet {
            records: rest.into_iter().cloned().collect(),
            runs: BTreeMap::new(),
        };
        let (files, dirs, missing) = expand(cache, &rest);
        let mut up_known: BTreeSet<Digest> = BTreeSet::new();
        let mut present = 0;
        for r in &known_dirs {
            up_known.insert(r.blake3);
            present += r.nfiles.unwrap_or(0) + 1;
        }
        let report = Mutex::new(TransferReport {
            missing,
            present,
            ..TransferReport::default()
        });
        let total: u64 = files.iter().map(|f| f.size).sum();
        progress.start("push", files.len() as u64, total);
        let pushed = self.block_on(async {
            // Small files of directories that the remote may lack are
            // packed, if there are enough of them; the rest go as objects.
            let (mut packable, mut single): (Vec<&FileObject>, Vec<&FileObject>) =
                files.iter().partition(|f| {
                    f.in_dir
                        && f.size > 0
                        && f.size < pack::SMALL
                        && (verify || !self.known.contains(&f.hash))
                });
            let mut up: BTreeSet<Digest> = BTreeSet::new();
            if verify && !packable.is_empty() {
                let there = self.held(&packable, progress, &report).await?;
                packable.retain(|f| !there.contains(&f.hash));
                up.extend(there);
            }
            if packable.len() < pack::MIN_FILES {
                single.append(&mut packable);
            }
            let done = each(
                self,
                self.jobs,
                false,
                single.clone(),
                progress,
                &report,
                |f: &FileObject| async move {
                    let outcome = self.upload_file(cache, f, verify).await;
                    (f.path.to_string(), f.size, outcome)
                },
            )
            .await?;
            up.extend(done.iter().map(|&i| single[i].hash));
            let placed = Mutex::new(Vec::new());
            let placed_ref = &placed;
            each(
                self,
                pack::PACKS_AT_ONCE.min(self.jobs),
                false,
                pack::plan(packable),
                progress,
                &report,
                |files: Vec<&FileObject>| async move {
                    let size = files.iter().map(|f| f.size).sum();
                    let outcome = self.upload_pack(cache, &files, placed_ref).await;
                    (format!("a pack of {} files", files.len()), size, outcome)
                },
            )
            .await?;
            up.extend(
                placed
                    .into_inner()
                    .expect("placed lock")
                    .into_iter()
                    .map(|(h, _)| h),
            );
            // A directory goes up once all its files are there: its places
            // (where its packed files are), then its manifest.
            let ready: Vec<&DirObject> = dirs
                .iter()
                .filter(|(_, m, _)| m.files().all(|e| up.contains(&e.hash)))
                .collect();
            let done_dirs = each(
                self,
                self.jobs,
                false,
                ready.clone(),
                progress,
                &report,
                |(hash, m, path)| async move {
                    let places = pack::Places(
                        m.files()
                            .filter_map(|e| Some((e.hash, self.known.place(&e.hash)??)))
                            .collect(),
                    );
                    if !places.0.is_empty() {
                        if let Err(e) = self.upload_places(hash, m, &places).await {
                            return (path.to_string(), 0, Err(e));
                        }
                    }
                    let outcome = self.upload_bytes(*hash, true, m.to_bytes(), verify).await;
                    (path.to_string(), 0, outcome)
                },
            )
            .await?;
            let mut up_dirs: BTreeSet<Digest> = up_known;
            for i in done_dirs {
                up_dirs.insert(ready[i].0);
            }
            // A run entry goes up once all its outputs are there.
            let runs: Vec<(&Digest, &RunRecord)> = set
                .runs
                .iter()
                .filter(|(_, r)| {
                    r.outs.iter().all(|o| {
                        if o.is_dir() {
                            up_dirs.contains(&o.blake3)
                        } else {
                            up.contains(&o.blake3)
                        }
                    })
                })
                .collect();
            each(
                self,
                self.jobs,
                true,
                runs,
                progress,
                &report,
                |(fp, record)| async move {
                    let outcome = self.upload_run(fp, record).await;
                    (format!("run of {}", record.stage), 0, outcome)
                },
            )
            .await?;
            Ok::<(), RemoteError>(())
        });
        progress.finish();
        pushed?;
        Ok(report.into_inner().expect("report lock"))
    }

    /// Which of `files` the remote holds, asking it: the pack of a file
    /// recorded in one (once per pack), or the file's own object.
    async fn held(
        &self,
        files: &[&FileObject],
        progress: &dyn Progress,
        report: &Mutex<TransferReport>,
    ) -> Result<BTreeSet<Digest>, RemoteError> {
        let keys = self.questions(
            files
                .iter()
                .map(|f| (f.hash, self.known.place(&f.hash).flatten())),
        );
        let absent = self.ask(keys).await?;
        let there: BTreeSet<Digest> = files
            .iter()
            .map(|f| f.hash)
            .filter(|h| !absent.contains(h))
            .collect();
        let bytes: u64 = files
            .iter()
            .filter(|f| there.contains(&f.hash))
            .map(|f| f.size)
            .sum();
        report.lock().expect("report lock").present += there.len() as u64;
        progress.advance(there.len() as u64, bytes);
        Ok(there)
    }

    /// The keys to ask about for `files` (each at its place, if packed):
    /// a file's own object, or its pack, once for all the files in it.
    fn questions(
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

    /// Asks the remote about each key (`HEAD`, `jobs` at once), records
    /// the objects of their own it holds and forgets what it lacks: the
    /// objects it lacks.
    async fn ask(&self, keys: Vec<(StorePath, Held)>) -> Result<BTreeSet<Digest>, RemoteError> {
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

    async fn upload_file(
        &self,
        cache: &Cache,
        f: &FileObject,
        verify: bool,
    ) -> Result<Outcome, RemoteError> {
        let known = match self.known.place(&f.hash) {
            // A file that is an output of its own must be an object of its own.
            Some(Some(_)) => f.in_dir,
            Some(None) => true,
            None => false,
        };
        if !verify && known {
            return Ok(Outcome::Present);
        }
        let key = self.object_key(&f.hash, false);
        if verify || f.size >= ASK_FIRST {
            match self.store.head(&key).await {
                Ok(meta) if meta.size == f.size => {
                    self.known.insert(f.hash);
                    return Ok(Outcome::Present);
                }
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.classify(&key, e)),
            }
        }
        let local = cache.object_path(&f.hash);
        if !local.is_file() {
            return Ok(Outcome::Missing("not in the local cache".into()));
        }
        if f.size as usize >= PART * 2 {
            return self.upload_multipart(&local, f, &key).await;
        }
        let bytes = tokio::fs::read(&local)
            .await
            .map_err(|source| RemoteError::Local {
                action: "read",
                path: local.clone(),
                source,
            })?;
        if Digest::of(&bytes) != f.hash {
            return Ok(Outcome::Missing(
                "the local cache's copy is damaged (run `pipe cache verify`); not uploaded".into(),
            ));
        }
        self.upload_bytes(f.hash, false, bytes, false).await
    }

    /// Creates the object `hash` from `bytes`, unless it is there.
    async fn upload_bytes(
        &self,
        hash: Digest,
        manifest: bool,
        bytes: Vec<u8>,
        verify: bool,
    ) -> Result<Outcome, RemoteError> {
        if manifest && !verify && self.known.contains(&hash) {
            return Ok(Outcome::Present);
        }
        let key = self.object_key(&hash, manifest);
        let size = bytes.len() as u64;
        let created = self.create(&key, bytes).await?;
        self.known.insert(hash);
        Ok(if created {
            Outcome::Moved(size)
        } else {
            Outcome::Present
        })
    }

    /// Uploads a large file in parts of [`PART`] bytes, [`PARTS_AT_ONCE`]
    /// in flight, hashing as it reads: a file that does not match its name
    /// is aborted, never completed.
    async fn upload_multipart(
        &self,
        local: &std::path::Path,
        f: &FileObject,
        key: &object_store::path::Path,
    ) -> Result<Outcome, RemoteError> {
        let read_err = |source| RemoteError::Local {
            action: "read",
            path: local.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::open(local).await.map_err(read_err)?;
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| self.classify(key, e))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
        let mut hasher = blake3::Hasher::new();
        let mut sent = 0u64;
        loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_AT_ONCE).await {
                let _ = writer.abort().await;
                return Err(self.classify(key, e));
            }
            let mut buf = Vec::with_capacity(PART);
            let n = match (&mut file).take(PART as u64).read_to_end(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(read_err(e));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf);
            sent += n as u64;
            writer.put(bytes::Bytes::from(buf));
        }
        if Digest(*hasher.finalize().as_bytes()) != f.hash {
            let _ = writer.abort().await;
            return Ok(Outcome::Missing(
                "the local cache's copy is damaged (run `pipe cache verify`); not uploaded".into(),
            ));
        }
        writer.finish().await.map_err(|e| self.classify(key, e))?;
        self.known.insert(f.hash);
        Ok(Outcome::Moved(sent))
    }

    async fn upload_run(
        &self,
        fingerprint: &Digest,
        record: &RunRecord,
    ) -> Result<Outcome, RemoteError> {
        let key = self.run_key(fingerprint);
        let bytes = serde_json::to_vec_pretty(record).expect("a run record serializes");
        Ok(if self.create(&key, bytes).await? {
            Outcome::Moved(0)
        } else {
            Outcome::Present
        })
    }

    /// Downloads into `cache` what `set` names and the cache lacks, each
    /// object verified before it enters the cache.
    pub fn fetch(
        &self,
        cache: &Cache,
        set: &ObjectSet,
        progress: &dyn Progress,
    ) -> Result<TransferReport, RemoteError> {
        let report = Mutex::new(TransferReport::default());
        let result = self.block_on(async {
            // Manifests first: they say which files a directory needs.
            let dirs: Vec<&PathRecord> = set.records.iter().filter(|r| r.is_dir()).collect();
            progress.start("fetch directories", dirs.len() as u64, 0);
            each(
                self,
                self.jobs,
                false,
                dirs.clone(),
                progress,
                &report,
                |r: &PathRecord| async move {
                    let outcome = self.download_manifest(cache, r).await;
                    (r.path.to_string(), 0, outcome)
                },
            )
            .await?;
            let mut files: BTreeMap<Digest, FileObject> = BTreeMap::new();
            let mut manifests: Vec<(Digest, Manifest)> = Vec::new();
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
                } else if let Ok(m) = cache.manifest(&r.blake3) {
                    for e in m.files() {
                        files.entry(e.hash).or_insert(FileObject {
                            hash: e.hash,
                            size: e.size,
                            path: r.path.join(&e.path),
                            in_dir: true,
                        });
                    }
                    manifests.push((r.blake3, m));
                }
            }
            let (present, needed): (Vec<FileObject>, Vec<FileObject>) = files
                .into_values()
                .partition(|f| cache.object_path(&f.hash).is_file());
            report.lock().expect("report lock").present += present.len() as u64;
            progress.start(
                "fetch",
                needed.len() as u64,
                needed.iter().map(|f| f.size).sum(),
            );
            // Where the needed files of directories sit in packs.
            let wanted: BTreeSet<Digest> = needed.iter().map(|f| f.hash).collect();
            let with_places: Vec<&(Digest, Manifest)> = manifests
                .iter()
                .filter(|(_, m)| m.files().any(|e| wanted.contains(&e.hash)))
                .collect();
            let places: Mutex<BTreeMap<Digest, Place>> = Mutex::new(BTreeMap::new());
            let places_ref = &places;
            let wanted = &wanted;
            let asked = Mutex::new(TransferReport::default());
            each(
                self,
                self.jobs,
                false,
                with_places,
                &Quiet,
                &asked,
                |(dir, m)| async move {
                    let outcome = match self.download_places(dir, m).await {
                        Ok(found) => {
                            let mut places = places_ref.lock().expect("places lock");
                            for (hash, place) in found.map(|p| p.0).unwrap_or_default() {
                                if wanted.contains(&hash) {
                                    places.insert(hash, place);
                                }
                            }
                            Ok(Outcome::Moved(0))
                        }
                        Err(e) => Err(e),
                    };
                    (dir.to_string(), 0, outcome)
                },
            )
            .await?;
            {
                // Places are not objects moved: only their failures count.
                let asked = asked.into_inner().expect("report lock");
                let mut r = report.lock().expect("report lock");
                r.failed.extend(asked.failed);
                r.missing.extend(asked.missing);
            }
            let places = places.into_inner().expect("places lock");
            let (packed, single): (Vec<&FileObject>, Vec<&FileObject>) =
                needed.iter().partition(|f| places.contains_key(&f.hash));
            each(
                self,
                self.jobs,
                false,
                single,
                progress,
                &report,
                |f: &FileObject| async move {
                    let outcome = self.download_file(cache, f).await;
                    (f.path.to_string(), f.size, outcome)
                },
            )
            .await?;
            let ranges = pack::ranges(packed.into_iter().map(|f| (places[&f.hash], f)).collect());
            each(
                self,
                self.jobs,
                false,
                ranges.iter().collect(),
                progress,
                &report,
                |range: &pack::Range| async move {
                    let outcome = self.download_range(cache, range).await;
                    (
                        format!("{} files of a pack", range.files.len()),
                        range.end - range.start,
                        outcome,
                    )
                },
            )
            .await?;
            Ok::<(), RemoteError>(())
        });
        progress.finish();
        // What arrived was verified: the checkout that follows need not
        // read it again.
        cache.save_verified();
        result?;
        Ok(report.into_inner().expect("report lock"))
    }

    async fn download_manifest(
        &self,
        cache: &Cache,
        r: &PathRecord,
    ) -> Result<Outcome, RemoteError> {
        if cache.manifest(&r.blake3).is_ok() {
            return Ok(Outcome::Present);
        }
        let key = self.object_key(&r.blake3, true);
        let bytes = match self.store.get(&key).await {
            Ok(got) => got.bytes().await.map_err(|e| self.classify(&key, e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Outcome::Missing(format!("not on remote `{}`", self.name)))
            }
            Err(e) => return Err(self.classify(&key, e)),
        };
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(_) => {
                return Err(RemoteError::Corrupt {
                    remote: self.name.clone(),
                    key: self.shown_key(&key),
                    got: Digest::of(&bytes),
                })
            }
        };
        if manifest.digest() != r.blake3 {
            return Err(RemoteError::Corrupt {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                got: manifest.digest(),
            });
        }
        cache
            .put_manifest(&manifest, &r.blake3)
            .map_err(|e| RemoteError::Object {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                message: e.to_string(),
            })?;
        Ok(Outcome::Moved(bytes.len() as u64))
    }

    async fn download_file(&self, cache: &Cache, f: &FileObject) -> Result<Outcome, RemoteError> {
        if cache.object_path(&f.hash).is_file() {
            return Ok(Outcome::Present);
        }
        let key = self.object_key(&f.hash, false);
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Outcome::Missing(format!("not on remote `{}`", self.name)))
            }
            Err(e) => return Err(self.classify(&key, e)),
        };
        let mut incoming = cache.incoming().map_err(|e| RemoteError::Object {
            remote: self.name.clone(),
            key: self.shown_key(&key),
            message: e.to_string(),
        })?;
        let mut body = got.into_stream();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.classify(&key, e))?;
            size += chunk.len() as u64;
            incoming.write(&chunk).map_err(|e| RemoteError::Object {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                message: e.to_string(),
            })?;
        }
        match incoming.finish(&f.hash) {
            Ok(()) => {
                self.known.insert(f.hash);
                Ok(Outcome::Moved(size))
            }
            Err(Some(got)) => Err(RemoteError::Corrupt {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                got,
            }),
            Err(None) => Err(RemoteError::Object {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                message: "cannot store it in the cache".into(),
            }),
        }
    }

    /// The run-cache entry of `fingerprint` on the remote, if any (one
    /// request, by its exact key).
    pub fn get_run(&self, fingerprint: &Digest) -> Result<Option<RunRecord>, RemoteError> {
        let key = self.run_key(fingerprint);
        self.block_on(async {
            let bytes = match self.store.get(&key).await {
                Ok(got) => got.bytes().await.map_err(|e| self.classify(&key, e))?,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.classify(&key, e)),
            };
            // Paths are validated as they are read: `../` never parses.
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RemoteError::Object {
                    remote: self.name.clone(),
                    key: self.shown_key(&key),
                    message: format!("not a valid run-cache entry ({e}); it was not used"),
                })
        })
    }

    /// Which of `set`'s objects the remote lacks, asking it about each
    /// (`HEAD`, `jobs` at once): the output paths (files, or directories
    /// with any file missing).
    pub fn missing(&self, cache: &Cache, set: &ObjectSet) -> Result<Vec<RelPath>, RemoteError> {
        let (files, dirs, _) = expand(cache, set);
        let report = Mutex::new(TransferReport::default());
        let absent = self.block_on(async {
            // Where the packed files are: each directory's places.
            let places: Mutex<BTreeMap<Digest, Place>> = Mutex::new(BTreeMap::new());
            let places_ref = &places;
            each(
                self,
                self.jobs,
                false,
                dirs.iter().collect(),
                &Quiet,
                &report,
                |(hash, m, path): &DirObject| async move {
                    let outcome = self.download_places(hash, m).await.map(|found| {
                        let mut places = places_ref.lock().expect("places lock");
                        places.extend(found.map(|p| p.0).unwrap_or_default());
                        Outcome::Present
                    });
                    (path.to_string(), 0, outcome)
                },
            )
            .await?;
            let places = places.into_inner().expect("places lock");
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
