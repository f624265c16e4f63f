//! Remote storage: the cache shared by a team and CI.
//!
//! A remote holds what a project's cache holds, content-addressed by BLAKE3
//! under a versioned prefix:
//!
//! ```text
//! <url>/v1/objects/ab/cdef…        a file's content
//! <url>/v1/objects/ab/cdef….dir    a directory's manifest
//! <url>/v1/packs/ab/cdef…           many small files of directories, back to back
//! <url>/v1/places/ab/cdef…          where a directory's packed files are ([`pack`])
//! <url>/v1/runs/ab/cdef…           run cache: stage fingerprint → outputs
//! <url>/v1/md5/ab/cdef…            DVC md5 → BLAKE3, for `.dvc` files ([`md5map`])
//! ```
//!
//! Safe for many writers at once: objects are immutable and created with a
//! conditional put (`If-None-Match: *`), so two machines pushing the same
//! object never clobber each other, and what is there is always complete.
//! A directory's manifest is uploaded only after all its files (and the
//! places of those in packs), and a
//! run-cache entry only after every object it names, so a manifest or an
//! entry on the remote promises that what it names is there too. A run
//! entry is fetched by its exact key, never by listing.
//!
//! Nothing from a remote is trusted: every download is hashed as it is
//! written to the cache's staging area and must match its name, a manifest
//! must match its hash, a run entry must name exactly the stage's outputs
//! with normalized project paths. A wrong or truncated object is an error
//! naming it, and nothing of it reaches the cache or the workspace.
//!
//! Modules: [`config`] (remotes in `pipe.toml`), [`url`] (URLs, the object
//! store behind each, masking secrets), [`profile`] (AWS profiles),
//! [`known`] (what a remote is known to hold), [`transfer`] (what
//! transfers share; status), `push`, `fetch`, [`pack`] (small files moved
//! as a few large objects), [`scope`] (which outputs a command moves), [`source`] (one
//! object named by a URL: a stage's `s3://…` dependency, an import's
//! source).

pub mod config;
mod fetch;
pub mod gc;
pub mod jobs;
pub mod known;
mod md5map;
pub mod pack;
pub mod profile;
mod push;
pub mod scope;
pub mod source;
pub mod transfer;
pub mod url;

use std::path::Path;
use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::ObjectStore;

pub use config::{RemoteConfig, RemotePickError, Remotes};
pub use transfer::{ObjectSet, Progress, TransferReport};

use crate::hash::Digest;

/// Why talking to a remote failed, in the words a user needs: which remote,
/// and whether it is the server, the bucket, the credentials or one object.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Pick(#[from] RemotePickError),
    #[error("remote `{remote}`: {message}")]
    Setup { remote: String, message: String },
    #[error("remote `{remote}` ({url}) cannot be reached: {message}")]
    Unreachable {
        remote: String,
        url: String,
        message: String,
    },
    #[error("remote `{remote}` ({url}): the bucket or container does not exist")]
    NoBucket { remote: String, url: String },
    #[error("remote `{remote}` ({url}) refused the credentials: {message}")]
    Credentials {
        remote: String,
        url: String,
        message: String,
    },
    #[error("remote `{remote}`: {key}: {message}")]
    Object {
        remote: String,
        key: String,
        message: String,
    },
    #[error("remote `{remote}`: {key} is damaged: its content does not match its name (got {got}); it was not used")]
    Corrupt {
        remote: String,
        key: String,
        got: Digest,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl RemoteError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RemoteError::Pick(e) => e.hint(),
            RemoteError::Unreachable { .. } => "is the server running? check `endpoint_url` (`pipe remote list`) and the network; the transfer can be run again and moves only what is missing".into(),
            RemoteError::NoBucket { .. } => "create the bucket, or fix the remote's URL: `pipe remote modify NAME url s3://BUCKET/prefix`".into(),
            RemoteError::Credentials { .. } => "check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the `profile` option, or `pipe remote modify --local NAME access_key_id …`".into(),
            RemoteError::Corrupt { .. } => "the remote holds a bad copy; push it again from a machine that has a good one (`pipe push`), or remove it from the remote".into(),
            _ => return None,
        })
    }

    /// True for errors about the whole remote (no point in going on).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::NoBucket { .. }
                | RemoteError::Credentials { .. }
                | RemoteError::Setup { .. }
                | RemoteError::Pick(_)
        )
    }
}

/// An opened remote.
pub struct Remote {
    pub name: String,
    /// The URL, masked, for messages.
    pub shown: String,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    pub jobs: usize,
    /// Where requests go, for messages (`endpoint_url`, or the service's).
    endpoint: String,
    /// What a key is shown after (`s3://bucket`), for messages.
    key_base: String,
    runtime: tokio::runtime::Runtime,
    /// Values that must never appear in a message.
    secrets: Vec<String>,
    pub known: known::Known,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({}, {})", self.name, self.shown)
    }
}

/// Transfers at once unless the remote or `-j` says otherwise.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 8
}

impl Remote {
    /// Opens `config`'s remote for the project at `root`, with its local
    /// record in the cache directory `cache_dir`.
    pub fn open(
        root: &Path,
        config: &RemoteConfig,
        cache_dir: &Path,
    ) -> Result<Remote, RemoteError> {
        let location =
            url::Location::parse(&config.url, root).map_err(|message| RemoteError::Setup {
                remote: config.name.clone(),
                message,
            })?;
        let store = url::store(config, &location)?;
        let root_path = location.prefix().clone().join("v1");
        let jobs = config
            .option("jobs")
            .and_then(|j| j.parse().ok())
            .filter(|&j: &usize| j > 0)
            .unwrap_or_else(default_jobs);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .max(2),
            )
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Setup {
                remote: config.name.clone(),
                message: format!("cannot start the transfer runtime: {e}"),
            })?;
        let secrets = config.secrets();
        let shown = url::masked(&config.url);
        let id = {
            let endpoint = config.option("endpoint_url").unwrap_or_default();
            blake3::hash(format!("{shown}\0{endpoint}").as_bytes()).to_hex()[..16].to_string()
        };
        let endpoint = match (&location, config.option("endpoint_url")) {
            (_, Some(e)) => e.to_string(),
            (url::Location::Local { dir }, None) => dir.display().to_string(),
            _ => shown.clone(),
        };
        let key_base = match &location {
            url::Location::S3 { bucket, .. } => format!("s3://{bucket}"),
            url::Location::Gcs { bucket, .. } => format!("gs://{bucket}"),
            url::Location::Azure { container, .. } => format!("azure://{container}"),
            url::Location::Local { dir } => dir.display().to_string(),
        };
        Ok(Remote {
            name: config.name.clone(),
            endpoint,
            key_base,
            shown,
            store,
            root: root_path,
            jobs,
            runtime,
            secrets,
            known: known::Known::load(cache_dir, &id),
        })
    }

    /// The remote of `project` named `name` (or its default one), with its
    /// config: what every command and a staged job open.
    pub fn of_project(
        project: &crate::project::Project,
        name: Option<&str>,
    ) -> Result<(Remote, RemoteConfig), RemoteError> {
        let config = project.config.remotes.pick(name)?.clone();
        let remote = Remote::open(&project.root, &config, project.cache.dir())?;
        Ok((remote, config))
    }

    /// `message` with every secret value replaced by `***`.
    fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    /// A key as a user can find it: `s3://bucket/prefix/v1/objects/ab/cd…`.
    pub fn shown_key(&self, key: &StorePath) -> String {
        format!("{}/{key}", self.key_base)
    }

    fn object_key(&self, hash: &Digest, manifest: bool) -> StorePath {
        let hex = hash.to_hex();
        let name = if manifest {
            format!("{}.dir", &hex[2..])
        } else {
            hex[2..].to_string()
        };
        self.root
            .clone()
            .join("objects")
            .join(&hex[..2])
            .join(name.as_str())
    }

    fn run_key(&self, fingerprint: &Digest) -> StorePath {
        let hex = fingerprint.to_hex();
        self.root
            .clone()
            .join("runs")
            .join(&hex[..2])
            .join(&hex[2..])
    }

    /// Turns an object_store error into one that says what is wrong.
    fn classify(&self, key: &StorePath, e: object_store::Error) -> RemoteError {
        let text = self.scrub(&format!("{e}"));
        let source = {
            let mut chain = String::new();
            let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = cur {
                chain.push_str(&format!(": {s}"));
                cur = s.source();
            }
            self.scrub(&chain)
        };
        let all = format!("{text}{source}");
        let lower = all.to_ascii_lowercase();
        let (remote, url) = (self.name.clone(), self.shown.clone());
        if matches!(
            e,
            object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. }
        ) || [
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "accessdenied",
            "403 forbidden",
            "401 unauthorized",
            "expiredtoken",
            "invalidtoken",
        ]
        .iter()
        .any(|s| lower.contains(s))
        {
            return RemoteError::Credentials {
                remote,
                url,
                message: short_reason(&all),
            };
        }
        if [
            "nosuchbucket",
            "containernotfound",
            "the specified bucket does not exist",
        ]
        .iter()
        .any(|s| lower.contains(s))
        {
            return RemoteError::NoBucket { remote, url };
        }
        let unreachable = [
            ("connection refused", "connection refused at"),
            ("dns error", "cannot resolve the host of"),
            ("failed to lookup address", "cannot resolve the host of"),
            ("timed out", "no answer in time from"),
            ("connection reset", "the connection was reset by"),
            ("error trying to connect", "cannot connect to"),
            ("tcp connect", "cannot connect to"),
            ("error sending request", "cannot send requests to"),
        ];
        if let Some((_, what)) = unreachable.iter().find(|(s, _)| lower.contains(s)) {
            return RemoteError::Unreachable {
                remote,
                url,
                message: format!("{what} {}", self.endpoint),
            };
        }
        RemoteError::Object {
            remote,
            key: self.shown_key(key),
            message: short_reason(&all),
        }
    }

    /// Creates `key` from `bytes` unless something is there already (a
    /// conditional put, `If-None-Match: *`: two writers never clobber each
    /// other): true if this call created it.
    async fn create(
        &self,
        key: &StorePath,
        bytes: impl Into<object_store::PutPayload>,
    ) -> Result<bool, RemoteError> {
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..object_store::PutOptions::default()
        };
        match self.store.put_opts(key, bytes.into(), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.classify(key, e)),
        }
    }

    /// The whole of the object `key`, or `None` if the remote has none.
    async fn get_if_any(&self, key: &StorePath) -> Result<Option<bytes::Bytes>, RemoteError> {
        match object_store::ObjectStoreExt::get(&self.store, key).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(|e| self.classify(key, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.classify(key, e)),
        }
    }

    /// Runs a future of the transfer runtime to its end.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// The most telling part of an error chain, on one line.
fn short_reason(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(code) = one_line
        .split("<Code>")
        .nth(1)
        .and_then(|r| r.split("</Code>").next())
    {
        let message = one_line
            .split("<Message>")
            .nth(1)
            .and_then(|r| r.split("</Message>").next())
            .unwrap_or("");
        return format!(
            "{code}{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        );
    }
    let mut s: String = one_line.chars().take(300).collect();
    if one_line.chars().count() > 300 {
        s.push('…');
    }
    s
}
