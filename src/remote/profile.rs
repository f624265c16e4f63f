//! AWS profiles: the credentials and region of a named profile, read from
//! `~/.aws/credentials` and `~/.aws/config` (or the files named by
//! `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`), as the AWS CLI
//! reads them. Only static keys are read; other credential sources
//! (environment, instance metadata, web identity) are object_store's.

use std::path::PathBuf;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

fn aws_file(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

/// `builder` with the keys and region of `profile`; an error names a
/// profile that does not exist (never a key).
pub fn apply(mut builder: AmazonS3Builder, profile: &str) -> Result<AmazonS3Builder, String> {
    let mut found = false;
    if let Some(path) = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
        if let Ok(ini) = ini::Ini::load_from_file(&path) {
            if let Some(section) = ini.section(Some(profile)) {
                found = true;
                for (key, set) in [
                    ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
                    ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
                    ("aws_session_token", AmazonS3ConfigKey::Token),
                ] {
                    if let Some(v) = section.get(key) {
                        builder = builder.with_config(set, v);
                    }
                }
            }
        }
    }
    if let Some(path) = aws_file("AWS_CONFIG_FILE", "config") {
        if let Ok(ini) = ini::Ini::load_from_file(&path) {
            let name = if profile == "default" {
                "default".to_string()
            } else {
                format!("profile {profile}")
            };
            if let Some(section) = ini.section(Some(name)) {
                found = true;
                if let Some(region) = section.get("region") {
                    builder = builder.with_config(AmazonS3ConfigKey::Region, region);
                }
            }
        }
    }
    if found {
        Ok(builder)
    } else {
        Err(format!(
            "the AWS profile `{profile}` is not in ~/.aws/credentials or ~/.aws/config"
        ))
    }
}
