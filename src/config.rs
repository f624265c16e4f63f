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
//!
//! `[executor]` chooses where stages run and what cluster jobs ask for
//! (see [`crate::executor::ExecutorConfig`]).

use std::path::Path;

use serde::Deserialize;

use crate::cache::LinkMode;
use crate::remote::config::{Remotes, LOCAL_CONFIG_FILE};

pub const CONFIG_FILE: &str = "pipe.toml";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub link: LinkMode,
    /// `[core] remote` and `[remote.NAME]`, merged from `pipe.toml` and
    /// `pipe.local.toml` (see [`crate::remote::config`]).
    pub remotes: Remotes,
    /// `[executor]`.
    pub executor: crate::executor::ExecutorConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    cache: RawCache,
    // Checked by `Remotes::from_tables`, which names unknown keys.
    #[serde(default, rename = "core")]
    _core: Option<toml::Value>,
    #[serde(default, rename = "remote")]
    _remote: Option<toml::Value>,
    #[serde(default)]
    executor: crate::executor::ExecutorConfig,
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
        let (raw, shared) = read(root, CONFIG_FILE)?;
        let (_, local) = read(root, LOCAL_CONFIG_FILE)?;
        let remotes = Remotes::from_tables(shared.as_ref(), local.as_ref())?;
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
        Ok(Config {
            link,
            remotes,
            executor: raw.executor,
        })
    }
}

/// A config file, parsed (schema-checked) and as a TOML table; both
/// default when the file is absent.
fn read(root: &Path, file: &str) -> Result<(RawConfig, Option<toml::Table>), ConfigError> {
    let err = |message: String| ConfigError {
        file: file.to_string(),
        message,
    };
    match std::fs::read_to_string(root.join(file)) {
        Ok(text) => {
            let raw: RawConfig =
                toml::from_str(&text).map_err(|e| err(e.to_string().trim().to_string()))?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| err(e.to_string().trim().to_string()))?;
            Ok((raw, Some(table)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((RawConfig::default(), None)),
        Err(e) => Err(err(format!("cannot read: {e}"))),
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
