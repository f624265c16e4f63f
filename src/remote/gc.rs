//! `pipe gc --cloud`: removing from a remote what no kept lock records.
//!
//! What is kept: every object (file, and directory manifest with all its
//! files) that a kept `pipeline.lock` records (the scopes of `pipe gc`:
//! the workspace, branches, tags, commits, experiments), and the run-cache
//! entries of the kept stages (their fingerprints). With `keep_runs`, every
//! run-cache entry and everything it names is kept too. A directory's
//! manifest is read from the local cache, or from the remote (verified).
//!
//! Packs ([`super::pack`]) are kept whole: a pack stays while the places of
//! a kept directory (or young places: a push under way) name it, even if
//! some files in it are no longer used.
//!
//! Removal keeps the remote's promise that whatever is there is complete:
//! run-cache entries go first, then manifests, then places, then files and
//! packs, so an entry or a manifest never names a file that is gone. Objects younger than
//! `min_age` stay whatever they are: a teammate may be pushing them now,
//! with the manifest or run entry that will name them still to come. The
//! remote is listed (that is the one command that must), `jobs` deletes at
//! once.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;

use super::{Remote, RemoteError};
use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::hash::{Digest, Manifest};
use crate::lock::PathRecord;

/// What a cloud gc removed (or would remove).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CloudGcReport {
    pub objects_removed: u64,
    pub bytes_removed: u64,
    pub runs_removed: u64,
    pub objects_kept: u64,
    /// Unused objects left because they are younger than the minimum age.
    pub too_recent: u64,
    /// Unused run-cache entries left for the same reason.
    pub too_recent_runs: u64,
}

/// What to keep on the remote.
pub struct CloudKeep<'a> {
    pub records: &'a [PathRecord],
    /// Fingerprints whose run-cache entries stay.
    pub runs: &'a BTreeSet<Digest>,
    pub keep_runs: bool,
    pub min_age: Duration,
}

fn age_of(meta: &object_store::ObjectMeta) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Duration::from_secs((now - meta.last_modified.timestamp()).max(0) as u64)
}

/// One key of a listing, as pipe names its keys.
struct Listed {
    key: StorePath,
    hash: Digest,
    /// A directory's manifest (`….dir`).
    manifest: bool,
    age: Duration,
    size: u64,
}

/// A key under `objects/` → (hash, is a manifest).
fn object_of(key: &StorePath) -> Option<(Digest, bool)> {
    let text = key.as_ref();
    let mut it = text.rsplit('/');
    let name = it.next()?;
    let prefix = it.next()?;
    let (rest, manifest) = match name.strip_suffix(".dir") {
        Some(r) => (r, true),
        None => (name, false),
    };
    Digest::from_hex(&format!("{prefix}{rest}")).map(|d| (d, manifest))
}

impl Remote {
    /// Removes (or with `dry`, counts) what `keep` does not keep.
    pub fn gc(
        &self,
        cache: &Cache,
        keep: &CloudKeep,
        dry: bool,
    ) -> Result<CloudGcReport, RemoteError> {
        self.block_on(async {
            let mut files: BTreeSet<Digest> = BTreeSet::new();
            let mut manifests: BTreeSet<Digest> = BTreeSet::new();
            // Packs named by the places of kept directories.
            let mut packs: BTreeSet<Digest> = BTreeSet::new();
            let add = |r: &PathRecord,
                       files: &mut BTreeSet<Digest>,
                       manifests: &mut BTreeSet<Digest>,
                       m: Option<&Manifest>| {
                if r.is_dir() {
                    manifests.insert(r.blake3);
                    if let Some(m) = m {
                        files.extend(m.files().map(|e| e.hash));
                    }
                } else {
                    files.insert(r.blake3);
                }
            };
            // The run entries to keep, and (with keep_runs) what they name.
            let run_keys = self.listed("runs").await?;
            let mut extra: Vec<PathRecord> = Vec::new();
            // A kept entry keeps what it names: an entry never names a file
            // that is gone.
            // (A young entry stays, so what it names stays too.)
            for run in &run_keys {
                if keep.keep_runs || keep.runs.contains(&run.hash) || run.age < keep.min_age {
                    let bytes = self.read(&run.key).await?;
                    if let Ok(record) = serde_json::from_slice::<RunRecord>(&bytes) {
                        extra.extend(record.outs);
                    }
                }
            }
            for r in keep.records.iter().chain(&extra) {
                let manifest = if r.is_dir() {
                    match cache.manifest(&r.blake3) {
                        Ok(m) => Some(m),
                        Err(_) => self.remote_manifest(&r.blake3).await?,
                    }
                } else {
                    None
                };
                add(r, &mut files, &mut manifests, manifest.as_ref());
            }
            // A young manifest (a push that has just ended, its lock not
            // committed yet) keeps what it names, as a kept one does.
            let objects = self.listed("objects").await?;
            for o in &objects {
                if o.manifest && o.age < keep.min_age && !manifests.contains(&o.hash) {
                    let manifest = match cache.manifest(&o.hash) {
                        Ok(m) => Some(m),
                        Err(_) => self.remote_manifest(&o.hash).await?,
                    };
                    if let Some(m) = manifest {
                        files.extend(m.files().map(|e| e.hash));
                        manifests.insert(o.hash);
                    }
                }
            }
            let mut report = CloudGcReport::default();
            // Places stay with their directory's manifest, or while young
            // (a push under way); the packs of those that stay stay too.
            let mut doomed_places = Vec::new();
            for places in self.listed("places").await? {
                let kept = manifests.contains(&places.hash);
                if kept || places.age < keep.min_age {
                    let bytes = self.read(&places.key).await?;
                    // Packs that places which stay may name are never
                    // guessed at: an unreadable one stops the collection.
                    let Some(staying) = super::pack::Places::parse(&bytes) else {
                        return Err(RemoteError::Object {
                            remote: self.name.clone(),
                            key: self.shown_key(&places.key),
                            message: "not a valid record of packed files' places, so which packs it keeps is unknown; nothing was removed".into(),
                        });
                    };
                    packs.extend(staying.packs());
                    if kept {
                        report.objects_kept += 1;
                    } else {
                        report.too_recent += 1;
                    }
                    continue;
                }
                report.objects_removed += 1;
                report.bytes_removed += places.size;
                doomed_places.push(places.key);
            }

            let mut doomed_runs = Vec::new();
            for run in run_keys {
                if keep.keep_runs || keep.runs.contains(&run.hash) {
                    continue;
                }
                if run.age < keep.min_age {
                    report.too_recent_runs += 1;
                    continue;
                }
                doomed_runs.push(run.key);
            }
            // Files and manifests, then packs (one goes when no places that
            // stay name it): kept, young, or doomed.
            let mut doomed_manifests = Vec::new();
            let mut doomed = Vec::new();
            let objects = objects.into_iter().map(|o| {
                let kept = if o.manifest {
                    manifests.contains(&o.hash)
                } else {
                    files.contains(&o.hash)
                };
                (o, kept)
            });
            let in_packs = self.listed("packs").await?.into_iter().map(|o| {
                let kept = packs.contains(&o.hash);
                (o, kept)
            });
            for (o, kept) in objects.chain(in_packs) {
                if kept {
                    report.objects_kept += 1;
                } else if o.age < keep.min_age {
                    report.too_recent += 1;
                } else {
                    report.objects_removed += 1;
                    report.bytes_removed += o.size;
                    if o.manifest {
                        doomed_manifests.push(o.key);
                    } else {
                        doomed.push(o.key);
                    }
                }
            }
            report.runs_removed = doomed_runs.len() as u64;
            if dry {
                return Ok(report);
            }
            self.delete_all(doomed_runs).await?;
            // What this machine knew the remote to hold is no longer true.
            let _ = self.known.clear();
            self.delete_all(doomed_manifests).await?;
            self.delete_all(doomed_places).await?;
            self.delete_all(doomed).await?;
            Ok(report)
        })
    }

    /// What is listed under `v1/<what>/` and named as pipe names it.
    async fn listed(&self, what: &str) -> Result<Vec<Listed>, RemoteError> {
        let prefix = self.root.clone().join(what);
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.classify(&prefix, e))?;
            // Anything else is not ours: left alone.
            if let Some((hash, manifest)) = object_of(&meta.location) {
                out.push(Listed {
                    age: age_of(&meta),
                    size: meta.size,
                    key: meta.location,
                    hash,
                    manifest,
                });
            }
        }
        Ok(out)
    }

    /// The whole of one object.
    async fn read(&self, key: &StorePath) -> Result<bytes::Bytes, RemoteError> {
        let got = self
            .store
            .get(key)
            .await
            .map_err(|e| self.classify(key, e))?;
        got.bytes().await.map_err(|e| self.classify(key, e))
    }

    async fn delete_all(&self, keys: Vec<StorePath>) -> Result<(), RemoteError> {
        stream::iter(keys)
            .map(|key| async move {
                match self.store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.classify(&key, e)),
                }
            })
            .buffer_unordered(self.jobs)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    /// A directory's manifest from the remote, verified; `None` if absent.
    async fn remote_manifest(&self, hash: &Digest) -> Result<Option<Manifest>, RemoteError> {
        let key = self.object_key(hash, true);
        let Some(bytes) = self.get_if_any(&key).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.digest() == *hash => Ok(Some(m)),
            _ => Err(RemoteError::Corrupt {
                remote: self.name.clone(),
                key: self.shown_key(&key),
                got: Digest::of(&bytes),
            }),
        }
    }
}
