//! `fetch`: downloading into the cache what a set names and the cache
//! lacks, and a run-cache entry by its key.
//!
//! Manifests first (to learn the files of directories), then the places of
//! directories with packed files ([`super::pack`]), then files: objects of
//! their own, and packed files with ranged reads. Each file is hashed as it
//! arrives and enters the cache only whole and matching its name.

use std::collections::BTreeSet;
use std::sync::Mutex;

use futures::stream::StreamExt;
use object_store::ObjectStoreExt;

use super::transfer::{each, expand, FileObject, Outcome, Progress, TransferReport};
use super::{pack, ObjectSet, Remote, RemoteError};
use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::hash::{Digest, Manifest};
use crate::lock::PathRecord;

impl Remote {
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
            // (A directory whose manifest did not arrive is reported above.)
            let (files, dirs, _) = expand(cache, set);
            let manifests: Vec<(Digest, Manifest)> =
                dirs.into_iter().map(|(hash, m, _)| (hash, m)).collect();
            let (present, needed): (Vec<FileObject>, Vec<FileObject>) = files
                .into_iter()
                .partition(|f| cache.object_path(&f.hash).is_file());
            report.lock().expect("report lock").present += present.len() as u64;
            progress.start(
                "fetch",
                needed.len() as u64,
                needed.iter().map(|f| f.size).sum(),
            );
            // Where the needed files of directories sit in packs.
            let wanted: BTreeSet<Digest> = needed.iter().map(|f| f.hash).collect();
            let with_places: Vec<(&Digest, &Manifest)> = manifests
                .iter()
                .filter(|(_, m)| m.files().any(|e| wanted.contains(&e.hash)))
                .map(|(h, m)| (h, m))
                .collect();
            let asked = Mutex::new(TransferReport::default());
            let mut places = self.places_of(with_places, &asked).await?;
            places.retain(|hash, _| wanted.contains(hash));
            {
                // Places are not objects moved: only their failures count.
                let asked = asked.into_inner().expect("report lock");
                let mut r = report.lock().expect("report lock");
                r.failed.extend(asked.failed);
                r.missing.extend(asked.missing);
            }
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
        let Some(bytes) = self.get_if_any(&key).await? else {
            return Ok(Outcome::Missing(format!("not on remote `{}`", self.name)));
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
            let Some(bytes) = self.get_if_any(&key).await? else {
                return Ok(None);
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
}
