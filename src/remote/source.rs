//! Data named by a URL: a stage's `s3://…` dependency, the source of
//! `pipe import-url`. What is it now (its version, from one `HEAD`
//! request), and its bytes (downloaded into the cache, hashed as they
//! arrive).
//!
//! | URL | served by | version |
//! | --- | --- | --- |
//! | `s3://bucket/key` | object_store's S3 client | ETag, version id, size |
//! | `gs://bucket/key`, `azure://container/key` | object_store | ETag, version, size |
//! | `http://…`, `https://…` | object_store's HTTP client | ETag (else Last-Modified), size |
//! | `remote://NAME/path` | the remote `NAME` of `pipe.toml`, as DVC's `remote://` | as its store |
//! | a local path | the file system | md5 of the content, size |
//!
//! An object's ETag changes with its content, so an object overwritten
//! with the same bytes keeps its version; Last-Modified is used only when
//! a server sends no ETag. A server that sends neither gives no version:
//! such a source is taken to have changed every time it is asked about.
//!
//! Settings and credentials for a bucket come from the remote in
//! `pipe.toml` whose URL is on the same bucket (its `endpoint_url`,
//! `allow_http`, `region`, `profile`, keys), else from the usual places
//! (the AWS environment variables and profiles, GCP and Azure
//! environment), as for remotes. A URL is shown masked, and error
//! messages never carry a secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::config::{RemoteConfig, Remotes};
use super::url::{masked, Location};
use crate::cache::Cache;
use crate::hash::Digest;
use crate::track::md5::{Md5Kind, Md5Stream};

/// What identifies one version of a source. Two versions are the same
/// when every field is (and the version is known at all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// A local source's content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl ObjectVersion {
    /// True when something identifies the content (not just a size).
    pub fn is_known(&self) -> bool {
        self.etag.is_some()
            || self.version_id.is_some()
            || self.last_modified.is_some()
            || self.md5.is_some()
    }

    /// True when `self` and `other` are known to be the same version.
    pub fn same_as(&self, other: &ObjectVersion) -> bool {
        self.is_known() && self == other
    }
}

/// Why a source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("`{url}`: {message}")]
    Bad { url: String, message: String },
    #[error("`{url}` does not exist")]
    NotFound { url: String },
    #[error("`{url}`: {message}")]
    Failed { url: String, message: String },
}

impl SourceError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::Bad { .. } => Some(
                "sources are s3://BUCKET/KEY, gs://…, azure://…, http(s)://…, remote://NAME/path or a local path".into(),
            ),
            SourceError::NotFound { .. } => Some("check the URL (and that the object is there)".into()),
            SourceError::Failed { .. } => Some(
                "check the network and the credentials; an S3-compatible server's `endpoint_url` and `allow_http` come from a remote on the same bucket in pipe.toml (`pipe remote add NAME s3://BUCKET`)".into(),
            ),
        }
    }
}

/// True when `text` names a source by URL rather than a project path.
pub fn is_url(text: &str) -> bool {
    [
        "s3://",
        "gs://",
        "azure://",
        "az://",
        "http://",
        "https://",
        "remote://",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// Where the bytes are.
enum Place {
    Store {
        store: Arc<dyn ObjectStore>,
        key: StorePath,
        runtime: tokio::runtime::Runtime,
        secrets: Vec<String>,
    },
    Local(PathBuf),
}

/// An opened source.
pub struct Source {
    /// The URL, masked, for messages.
    pub shown: String,
    place: Place,
}

/// What a download brought into the cache.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub blake3: Digest,
    pub md5: String,
    pub size: u64,
    pub version: ObjectVersion,
}

impl Source {
    /// Opens `url` (`base` resolves a relative local path) with the
    /// settings of the project's remotes.
    pub fn open(url: &str, base: &Path, remotes: &Remotes) -> Result<Source, SourceError> {
        let shown = masked(url);
        let shown_for_errors = shown.clone();
        let bad = |message: String| SourceError::Bad {
            url: shown_for_errors.clone(),
            message,
        };
        let url = match url.strip_prefix("remote://") {
            Some(rest) => {
                let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
                let remote = remotes
                    .by_name
                    .get(name)
                    .ok_or_else(|| bad(format!("no remote named `{name}` in pipe.toml")))?;
                format!("{}/{path}", remote.url.trim_end_matches('/'))
            }
            None => url.to_string(),
        };
        if url.starts_with("http://") || url.starts_with("https://") {
            let parsed = url::Url::parse(&url).map_err(|e| bad(e.to_string()))?;
            if parsed.query().is_some() {
                return Err(bad("a URL with a query string is not supported".into()));
            }
            let base_url = format!(
                "{}://{}",
                parsed.scheme(),
                &parsed[url::Position::BeforeUsername..url::Position::AfterPort]
            );
            let store = object_store::http::HttpBuilder::new()
                .with_url(base_url)
                .with_client_options(
                    object_store::ClientOptions::new()
                        .with_allow_http(true)
                        .with_connect_timeout(std::time::Duration::from_secs(5))
                        .with_timeout(std::time::Duration::from_secs(300)),
                )
                .build()
                .map_err(|e| bad(e.to_string()))?;
            let key = StorePath::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
            return Ok(Source {
                shown,
                place: Place::Store {
                    store: Arc::new(store),
                    key,
                    runtime: runtime().map_err(bad)?,
                    secrets: parsed.password().map(str::to_string).into_iter().collect(),
                },
            });
        }
        let location = Location::parse(&url, base).map_err(bad)?;
        let (bucket, key) = match &location {
            Location::Local { dir } => {
                return Ok(Source {
                    shown,
                    place: Place::Local(dir.clone()),
                })
            }
            Location::S3 { bucket, prefix }
            | Location::Gcs { bucket, prefix }
            | Location::Azure {
                container: bucket,
                prefix,
            } => (bucket.clone(), prefix.clone()),
        };
        if key.is_empty() {
            return Err(bad("the URL names a bucket, not an object in it".into()));
        }
        // The settings of a remote on the same bucket, if there is one.
        let config = remotes
            .by_name
            .values()
            .find(|r| {
                Location::parse(&r.url, base).is_ok_and(|l| {
                    std::mem::discriminant(&l) == std::mem::discriminant(&location)
                        && match (&l, &location) {
                            (Location::S3 { bucket: a, .. }, _)
                            | (Location::Gcs { bucket: a, .. }, _)
                            | (Location::Azure { container: a, .. }, _) => a == &bucket,
                            _ => false,
                        }
                })
            })
            .cloned()
            .unwrap_or_else(|| RemoteConfig {
                name: shown.clone(),
                url: url.clone(),
                options: Default::default(),
            });
        let store = super::url::store(&config, &location).map_err(|e| bad(e.to_string()))?;
        let secrets = config.secrets();
        Ok(Source {
            shown,
            place: Place::Store {
                store,
                key: StorePath::from(key.as_str()),
                runtime: runtime().map_err(bad)?,
                secrets,
            },
        })
    }

    fn failed(&self, e: object_store::Error, secrets: &[String]) -> SourceError {
        if matches!(e, object_store::Error::NotFound { .. }) {
            return SourceError::NotFound {
                url: self.shown.clone(),
            };
        }
        let mut text = format!("{e}");
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = cur {
            text.push_str(&format!(": {s}"));
            cur = s.source();
        }
        for s in secrets {
            text = text.replace(s.as_str(), "***");
        }
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        SourceError::Failed {
            url: self.shown.clone(),
            message: one_line.chars().take(300).collect(),
        }
    }

    /// The source's version now: one `HEAD` request (a local file is read
    /// for its md5).
    pub fn version(&self) -> Result<ObjectVersion, SourceError> {
        match &self.place {
            Place::Store {
                store,
                key,
                runtime,
                secrets,
            } => {
                let meta = runtime
                    .block_on(store.head(key))
                    .map_err(|e| self.failed(e, secrets))?;
                Ok(version_of(&meta))
            }
            Place::Local(path) => {
                let io = |e: std::io::Error| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        SourceError::NotFound {
                            url: self.shown.clone(),
                        }
                    } else {
                        SourceError::Failed {
                            url: self.shown.clone(),
                            message: e.to_string(),
                        }
                    }
                };
                let meta = std::fs::metadata(path).map_err(io)?;
                if !meta.is_file() {
                    return Err(SourceError::Bad {
                        url: self.shown.clone(),
                        message: "not a file (pipe imports files)".into(),
                    });
                }
                let md5 = crate::track::md5::file_md5(path, Md5Kind::Plain).map_err(io)?;
                Ok(ObjectVersion {
                    md5: Some(md5),
                    size: Some(meta.len()),
                    ..ObjectVersion::default()
                })
            }
        }
    }

    /// Downloads the source into `cache`, hashed as it arrives; returns
    /// its BLAKE3, md5, size and the version the bytes are of.
    pub fn download(&self, cache: &Cache) -> Result<Downloaded, SourceError> {
        let failed = |message: String| SourceError::Failed {
            url: self.shown.clone(),
            message,
        };
        let mut incoming = cache.incoming().map_err(|e| failed(e.to_string()))?;
        let mut md5 = Md5Stream::new(Md5Kind::Plain);
        let mut size = 0u64;
        let version = match &self.place {
            Place::Store {
                store,
                key,
                runtime,
                secrets,
            } => runtime.block_on(async {
                let got = store.get(key).await.map_err(|e| self.failed(e, secrets))?;
                let version = version_of(&got.meta);
                let mut body = got.into_stream();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| self.failed(e, secrets))?;
                    size += chunk.len() as u64;
                    md5.update(&chunk);
                    incoming.write(&chunk).map_err(|e| failed(e.to_string()))?;
                }
                Ok::<_, SourceError>(version)
            })?,
            Place::Local(path) => {
                use std::io::Read;
                let mut file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf).map_err(|e| failed(e.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    md5.update(&buf[..n]);
                    incoming
                        .write(&buf[..n])
                        .map_err(|e| failed(e.to_string()))?;
                }
                ObjectVersion {
                    md5: None,
                    size: Some(size),
                    ..ObjectVersion::default()
                }
            }
        };
        let md5 = md5.finish();
        let blake3 = incoming
            .finish_any()
            .map_err(|e| failed(format!("cannot store it in the cache: {e}")))?;
        let version = if matches!(self.place, Place::Local(_)) {
            ObjectVersion {
                md5: Some(md5.clone()),
                ..version
            }
        } else {
            version
        };
        Ok(Downloaded {
            blake3,
            md5,
            size,
            version,
        })
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the transfer runtime: {e}"))
}

/// The version an object store reports.
fn version_of(meta: &object_store::ObjectMeta) -> ObjectVersion {
    let etag = meta.e_tag.clone();
    let last_modified = (etag.is_none() && meta.last_modified.timestamp() > 0)
        .then(|| meta.last_modified.to_rfc2822());
    ObjectVersion {
        etag,
        version_id: meta.version.clone(),
        last_modified,
        md5: None,
        size: Some(meta.size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_the_same_only_when_it_is_known() {
        let sized = ObjectVersion {
            size: Some(3),
            ..ObjectVersion::default()
        };
        assert!(!sized.same_as(&sized.clone()));
        let tagged = ObjectVersion {
            etag: Some("\"a\"".into()),
            ..sized.clone()
        };
        assert!(tagged.same_as(&tagged.clone()));
        assert!(!tagged.same_as(&sized));
        assert!(is_url("s3://b/k") && is_url("https://x/y") && !is_url("data/x.csv"));
    }
}
