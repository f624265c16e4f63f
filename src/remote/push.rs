//! `push`: uploading what a set names and the remote lacks.
//!
//! A push goes in three waves, each after the previous one succeeded for
//! what it needs: files (objects of their own, and packs of small files of
//! directories, [`super::pack`]), then the places and manifests of
//! directories whose files are all there, then run-cache entries whose
//! outputs are all there.
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
use std::sync::Mutex;

use object_store::ObjectStoreExt;
use tokio::io::AsyncReadExt;

use super::transfer::{each, expand, DirObject, FileObject, Outcome, Progress, TransferReport};
use super::{pack, ObjectSet, Remote, RemoteError};
use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::hash::Digest;
use crate::lock::PathRecord;

/// Files from this size on are asked about before they are uploaded.
const ASK_FIRST: u64 = 1 << 20;
/// Files from this size on go up in parts of this size.
const PART: usize = 16 << 20;

/// Parts of one file in flight at once.
const PARTS_AT_ONCE: usize = 4;

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
}
