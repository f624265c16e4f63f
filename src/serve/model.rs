//! The model in service, and how a new version replaces it.
//!
//! A [`ModelStore`] holds the loaded model in an `ArcSwap`. A request takes
//! the current [`LoadedModel`] (an `Arc`, one atomic operation) and keeps it
//! until it has answered: a swap affects the requests that start after it,
//! never one in flight, and the old model is freed when its last request
//! ends.
//!
//! A file is loaded from one read of its bytes: the same bytes are parsed
//! and hashed (BLAKE3, the hash `pipeline.lock` records for the output), so
//! the version the service reports is the version it serves. The file's
//! metadata is read before and after; if it changed in between (a writer
//! that does not replace the file by rename), the read is tried again.
//!
//! [`ModelStore::check`] is what the watcher calls: it compares the file's
//! metadata (device, inode, size, mtime, ctime, following symlinks) with
//! the last one it looked at, and reloads only when they differ. pipe
//! replaces an output by rename or by a new link into its cache, so a new
//! version always has a new inode; an edit in place changes the mtime.
//! Polling the metadata, rather than inotify, survives the replacement of
//! the model's directory (a directory output), a symlink retargeted into
//! the cache, and filesystems without notifications. A file that cannot be
//! loaded (missing while `pipe repro` rebuilds it, half written, not a
//! model) is reported once and the model in service stays; the next change
//! is tried again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::{json, Value as Json};

use pipe_stages::model::{Model, ModelError};

/// A model and what is known of its file.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Model,
    pub info: ModelInfo,
}

/// What `/health` and the log say of a model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The model file, as given.
    pub path: String,
    /// The BLAKE3 of the file (as `pipeline.lock` records it).
    pub version: String,
    /// When this version was loaded, RFC 3339.
    pub loaded_at: String,
    pub classes: Vec<i64>,
    /// The names the API answers with, one per class.
    pub labels: Vec<String>,
    pub vocabulary_size: usize,
    /// The training params: `fit` (C, max_iter, tol) and `vectorize`.
    pub params: Json,
    /// L-BFGS iterations of the fit, and whether it converged.
    pub n_iter: usize,
    pub converged: bool,
}

impl ModelInfo {
    /// The first 12 hex digits of the version, for messages.
    pub fn short_version(&self) -> &str {
        &self.version[..self.version.len().min(12)]
    }
}

/// Why a reload was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The watcher saw the file change.
    FileChanged,
    /// `SIGHUP`.
    Signal,
}

/// The outcome of [`ModelStore::reload`].
#[derive(Debug)]
pub enum Reload {
    Swapped {
        from: ModelInfo,
        to: ModelInfo,
    },
    /// The file holds the version in service.
    Unchanged(ModelInfo),
    /// The file could not be loaded; `serving` stays.
    Failed {
        error: String,
        serving: ModelInfo,
    },
}

/// Metadata that changes whenever the file is replaced or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    File {
        dev: u64,
        ino: u64,
        len: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
    },
    /// Could not be read (missing, or not a file we may read).
    Unreadable,
}

impl Seen {
    fn of(path: &Path) -> Seen {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => Seen::File {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            },
            Err(_) => Seen::Unreadable,
        }
    }
}

/// The model in service; see the module docs.
#[derive(Debug)]
pub struct ModelStore {
    path: PathBuf,
    display: String,
    current: ArcSwap<LoadedModel>,
    seen: Mutex<Seen>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Reload counts and the last failure, for `/health`.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStats {
    pub ok: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl ModelStore {
    /// Loads the model at `path` (named `display` in messages).
    pub fn open(path: PathBuf, display: String) -> Result<ModelStore, ModelError> {
        let (loaded, seen) = load(&path, &display)?;
        Ok(ModelStore {
            path,
            display,
            current: ArcSwap::from_pointee(loaded),
            seen: Mutex::new(seen),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    /// The model in service; keep it for the whole request.
    pub fn current(&self) -> Arc<LoadedModel> {
        self.current.load_full()
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// Reloads if the file's metadata changed since it was last looked at.
    pub fn check(&self) -> Option<Reload> {
        let now = Seen::of(&self.path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return None;
            }
            *seen = now;
        }
        Some(self.reload())
    }

    /// Loads the file and puts it in service if it holds another version.
    pub fn reload(&self) -> Reload {
        let serving = self.current();
        match load(&self.path, &self.display) {
            Ok((loaded, seen)) => {
                *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
                if loaded.info.version == serving.info.version {
                    return Reload::Unchanged(serving.info.clone());
                }
                let to = loaded.info.clone();
                self.current.store(Arc::new(loaded));
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Reload::Swapped {
                    from: serving.info.clone(),
                    to,
                }
            }
            Err(e) => {
                let error = crate::builtin::error_chain(&e);
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
                Reload::Failed {
                    error,
                    serving: serving.info.clone(),
                }
            }
        }
    }

    pub fn stats(&self) -> ReloadStats {
        ReloadStats {
            ok: self.reloads_ok.load(Ordering::Relaxed),
            failed: self.reloads_failed.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Reads the file once (again if it changed while being read), parses and
/// hashes the same bytes.
fn load(path: &Path, display: &str) -> Result<(LoadedModel, Seen), ModelError> {
    let read_error = |source| ModelError::Read {
        path: PathBuf::from(display),
        source,
    };
    let mut tries = 0;
    let (bytes, seen) = loop {
        let before = Seen::of(path);
        let bytes = std::fs::read(path).map_err(read_error)?;
        let after = Seen::of(path);
        tries += 1;
        if before == after || tries == 3 {
            break (bytes, after);
        }
    };
    let model = Model::from_bytes(Path::new(display), &bytes)?;
    let info = ModelInfo {
        path: display.to_string(),
        version: blake3::hash(&bytes).to_hex().to_string(),
        loaded_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        classes: model.classes().to_vec(),
        labels: (0..model.classes().len()).map(|i| model.label(i)).collect(),
        vocabulary_size: model.vectorizer().vocabulary().len(),
        params: json!({
            "fit": model.params().to_json(),
            "vectorize": model.vectorizer().params().to_json(),
        }),
        n_iter: model.n_iter(),
        converged: model.converged(),
    };
    Ok((LoadedModel { model, info }, seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_stages::logistic::LogisticParams;
    use pipe_stages::vectorize::VectorizeParams;

    fn save(path: &Path, c: f64) {
        let texts = ["great fun", "a great film", "dull mess", "a dull film"];
        let p = LogisticParams {
            c,
            ..LogisticParams::default()
        };
        Model::fit(&texts, &[1, 1, 0, 0], &VectorizeParams::default(), &p)
            .unwrap()
            .model
            .save(path)
            .unwrap();
    }

    #[test]
    fn a_new_file_is_swapped_in_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        save(&path, 1.0);
        let store = ModelStore::open(path.clone(), "model.json".into()).unwrap();
        let first = store.current();
        assert_eq!(
            first.info.version,
            blake3::hash(&std::fs::read(&path).unwrap())
                .to_hex()
                .to_string()
        );
        assert!(store.check().is_none(), "nothing changed");

        // Replaced by rename, as pipe writes outputs.
        let tmp = dir.path().join("new.json");
        save(&tmp, 100.0);
        std::fs::rename(&tmp, &path).unwrap();
        let Some(Reload::Swapped { from, to }) = store.check() else {
            panic!("not swapped")
        };
        assert_eq!(from, first.info);
        assert_ne!(to.version, from.version);
        assert_eq!(to.params["fit"]["C"], 100.0);
        // The request that held the old model still has it.
        assert_eq!(first.model.params().c, 1.0);
        assert_eq!(store.current().info, to);

        // Garbage: reported, the model in service stays.
        std::fs::write(&path, "{").unwrap();
        let Some(Reload::Failed { error, serving }) = store.check() else {
            panic!("not failed")
        };
        assert!(error.contains("model.json"), "{error}");
        assert_eq!(serving, to);
        assert!(store.check().is_none(), "a failure is reported once");
        assert_eq!(store.stats().failed, 1);
        assert_eq!(store.stats().ok, 1);

        // The same version again: nothing to swap.
        save(&path, 100.0);
        assert!(matches!(store.check(), Some(Reload::Unchanged(_))));
        assert!(matches!(store.reload(), Reload::Unchanged(_)));
    }
}
