//! Project settings from `pipe.toml` (optional, in the project root).
//!
//! ```toml
//! [cache]
//! # how outputs are linked back from the cache into the workspace:
//! # "reflink" (copy-on-write where the filesystem can, else a copy; the
//! # default), "copy", "hardlink" or "symlink"
//! link = "reflink"
//! ```
//!
//! The environment variable `PIPE_CACHE_LINK` overrides `cache.link`.

use std::path::Path;

use serde::Deserialize;

use crate::cache::LinkMode;

pub const CONFIG_FILE: &str = "pipe.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub link: LinkMode,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    cache: RawCache,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: CONFIG_FILE.to_string(),
            message,
        };
        let raw: RawConfig = match std::fs::read_to_string(root.join(CONFIG_FILE)) {
            Ok(text) => toml::from_str(&text).map_err(|e| err(e.to_string().trim().to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RawConfig::default(),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let (link, from) = match std::env::var("PIPE_CACHE_LINK") {
            Ok(env) => (Some(env), "the environment variable PIPE_CACHE_LINK"),
            Err(_) => (raw.cache.link, CONFIG_FILE),
        };
        let link = match link.as_deref() {
            None => LinkMode::default(),
            Some(text) => LinkMode::parse(text).ok_or_else(|| ConfigError {
                file: from.to_string(),
                message: format!(
                    "cache.link is `{text}`; it must be one of reflink, copy, hardlink, symlink"
                ),
            })?,
        };
        Ok(Config { link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_link_mode_and_rejects_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().link, LinkMode::Reflink);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[cache]\nlink = \"hardlink\"\n",
        )
        .unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().link, LinkMode::Hardlink);
        std::fs::write(dir.path().join(CONFIG_FILE), "[cache]\nlink = \"magic\"\n").unwrap();
        assert!(Config::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("reflink, copy"));
    }
}
