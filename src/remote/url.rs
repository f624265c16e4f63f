//! Remote URLs: what they name, how they are shown, and the object store
//! that serves them.
//!
//! | URL | store |
//! | --- | --- |
//! | `s3://bucket/prefix` | Amazon S3 or any S3-compatible service (`endpoint_url`) |
//! | `gs://bucket/prefix` | Google Cloud Storage |
//! | `azure://container/prefix`, `az://…` | Azure Blob Storage (`account_name`) |
//! | `file:///path`, `/path`, `../path` | a directory (a shared disk) |
//!
//! Every store is an [`object_store`] one. A URL is never shown as written:
//! [`masked`] hides a password or token a user may have put in it.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::config::RemoteConfig;
use super::RemoteError;

/// Where a remote's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Gcs { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
    Local { dir: std::path::PathBuf },
}

/// `url` with any password, token or signature replaced by `***`.
pub fn masked(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let secret_params = [
        "sig",
        "signature",
        "token",
        "key",
        "secret",
        "password",
        "sas",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    ];
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = secret_params
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

impl Location {
    /// Parses a remote URL; `base` resolves a relative local path.
    pub fn parse(url: &str, base: &std::path::Path) -> Result<Location, String> {
        let split = |rest: &str| {
            let rest = rest.trim_end_matches('/');
            match rest.split_once('/') {
                Some((b, p)) => (b.to_string(), p.trim_matches('/').to_string()),
                None => (rest.to_string(), String::new()),
            }
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = split(rest);
            if bucket.is_empty() {
                return Err("an s3:// URL names a bucket: s3://BUCKET/prefix".into());
            }
            return Ok(Location::S3 { bucket, prefix });
        }
        if let Some(rest) = url.strip_prefix("gs://") {
            let (bucket, prefix) = split(rest);
            return Ok(Location::Gcs { bucket, prefix });
        }
        if let Some(rest) = url
            .strip_prefix("azure://")
            .or_else(|| url.strip_prefix("az://"))
        {
            let (container, prefix) = split(rest);
            return Ok(Location::Azure { container, prefix });
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Location::Local { dir: path.into() });
        }
        if url.contains("://") {
            return Err(format!(
                "`{}` is not a remote pipe knows: use s3://, gs://, azure://, file:// or a directory",
                masked(url)
            ));
        }
        Ok(Location::Local {
            dir: base.join(url),
        })
    }

    /// The prefix below which the remote keeps its objects.
    pub fn prefix(&self) -> StorePath {
        match self {
            Location::S3 { prefix, .. }
            | Location::Gcs { prefix, .. }
            | Location::Azure { prefix, .. } => StorePath::from(prefix.as_str()),
            Location::Local { .. } => StorePath::default(),
        }
    }
}

/// How long transfers may take before they fail, and how they are retried.
fn client_options(config: &RemoteConfig) -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_allow_http(config.flag("allow_http"))
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300))
}

fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    }
}

/// Builds the object store of `config` (at `location`).
pub fn store(
    config: &RemoteConfig,
    location: &Location,
) -> Result<Arc<dyn ObjectStore>, RemoteError> {
    let wrap = |e: object_store::Error| RemoteError::Setup {
        remote: config.name.clone(),
        message: e.to_string(),
    };
    Ok(match location {
        Location::S3 { bucket, .. } => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(config))
                .with_retry(retry());
            if let Some(profile) = config
                .option("profile")
                .map(str::to_string)
                .or_else(|| std::env::var("AWS_PROFILE").ok())
            {
                b = super::profile::apply(b, &profile).map_err(|message| RemoteError::Setup {
                    remote: config.name.clone(),
                    message,
                })?;
            }
            for (key, set) in [
                (
                    "endpoint_url",
                    object_store::aws::AmazonS3ConfigKey::Endpoint,
                ),
                ("region", object_store::aws::AmazonS3ConfigKey::Region),
                (
                    "access_key_id",
                    object_store::aws::AmazonS3ConfigKey::AccessKeyId,
                ),
                (
                    "secret_access_key",
                    object_store::aws::AmazonS3ConfigKey::SecretAccessKey,
                ),
                ("session_token", object_store::aws::AmazonS3ConfigKey::Token),
            ] {
                if let Some(v) = config.option(key) {
                    b = b.with_config(set, v);
                }
            }
            // Bodies are not hashed into the signature (SHA-256 of every
            // byte sent): like the AWS SDKs over HTTPS. What is stored is
            // content-addressed and checked by BLAKE3 when it comes back.
            b = b.with_unsigned_payload(true);
            if config.option("endpoint_url").is_some() {
                // S3-compatible servers on their own host: path-style URLs.
                b = b.with_virtual_hosted_style_request(false);
            }
            Arc::new(b.build().map_err(wrap)?)
        }
        Location::Gcs { bucket, .. } => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(config))
                .with_retry(retry());
            if let Some(p) = config.option("service_account_path") {
                b = b.with_service_account_path(p);
            }
            Arc::new(b.build().map_err(wrap)?)
        }
        Location::Azure { container, .. } => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_client_options(client_options(config))
                .with_retry(retry());
            if let Some(a) = config.option("account_name") {
                b = b.with_account(a);
            }
            if let Some(k) = config.option("account_key") {
                b = b.with_access_key(k);
            }
            Arc::new(b.build().map_err(wrap)?)
        }
        Location::Local { dir } => {
            std::fs::create_dir_all(dir).map_err(|e| RemoteError::Setup {
                remote: config.name.clone(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(wrap)?
                    .with_automatic_cleanup(true),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_url() {
        let base = std::path::Path::new("/proj");
        assert_eq!(
            Location::parse("s3://bucket/some/prefix/", base).unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            Location::parse("az://c", base).unwrap(),
            Location::Azure {
                container: "c".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("../shared", base).unwrap(),
            Location::Local {
                dir: "/proj/../shared".into()
            }
        );
        assert!(Location::parse("ftp://x", base).is_err());
        assert!(Location::parse("s3:///nobucket", base).is_err());
    }

    #[test]
    fn secrets_in_urls_are_masked() {
        assert_eq!(
            masked("https://ada:hunter2@example.com/data?sig=abc&x=1"),
            "https://ada:***@example.com/data?sig=***&x=1"
        );
        assert_eq!(masked("s3://bucket/p"), "s3://bucket/p");
    }
}
