//! Remotes as `pipe.toml` declares them, and editing them.
//!
//! ```toml
//! [core]
//! remote = "storage"                # the default remote (`pipe remote add -d`)
//!
//! [remote.storage]
//! url = "s3://team-bucket/pipe"     # s3://, gs://, azure:// (az://), file:// or a path
//! endpoint_url = "http://127.0.0.1:9000"   # any S3-compatible service
//! region = "us-east-1"
//! allow_http = true                 # for a server on loopback
//! profile = "team"                  # AWS profile for credentials
//! jobs = 16                         # parallel transfers
//! ```
//!
//! Secrets (`access_key_id`, `secret_access_key`, `session_token`,
//! `account_key`, …) belong in `pipe.local.toml`, which has the same shape,
//! is merged over `pipe.toml` key by key, and is git-ignored (pipe adds it
//! to `.gitignore` when it creates it, as DVC does with `config.local`).
//! `pipe remote modify` puts a secret there by itself. Credentials may also
//! come from the usual places (AWS environment variables and profiles, as
//! object_store's builders read them). Secrets are never printed: see
//! [`super::url::masked`] and [`Remotes::describe`].
//!
//! Editing keeps the files' comments and layout (toml_edit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::spec::diagnostic::did_you_mean;

pub const LOCAL_CONFIG_FILE: &str = "pipe.local.toml";

/// One option a remote may set: its key, whether it is a secret, and what
/// it is for (for `pipe remote modify --help` and errors).
pub struct OptionKey {
    pub key: &'static str,
    pub secret: bool,
    pub help: &'static str,
}

pub const OPTIONS: &[OptionKey] = &[
    OptionKey {
        key: "url",
        secret: false,
        help: "where the remote is",
    },
    OptionKey {
        key: "endpoint_url",
        secret: false,
        help: "the S3 endpoint of a non-AWS service (MinIO, Ceph, moto)",
    },
    OptionKey {
        key: "region",
        secret: false,
        help: "the S3 region",
    },
    OptionKey {
        key: "allow_http",
        secret: false,
        help: "true to allow plain HTTP (a server on loopback)",
    },
    OptionKey {
        key: "profile",
        secret: false,
        help: "the AWS profile whose credentials to use (~/.aws/credentials)",
    },
    OptionKey {
        key: "jobs",
        secret: false,
        help: "how many transfers run at once",
    },
    OptionKey {
        key: "access_key_id",
        secret: true,
        help: "S3 access key id",
    },
    OptionKey {
        key: "secret_access_key",
        secret: true,
        help: "S3 secret access key",
    },
    OptionKey {
        key: "session_token",
        secret: true,
        help: "S3 session token",
    },
    OptionKey {
        key: "service_account_path",
        secret: false,
        help: "GCS service account JSON file",
    },
    OptionKey {
        key: "account_name",
        secret: false,
        help: "Azure storage account",
    },
    OptionKey {
        key: "account_key",
        secret: true,
        help: "Azure storage account key",
    },
    OptionKey {
        key: "sas_token",
        secret: true,
        help: "Azure SAS token",
    },
];

pub fn is_secret(key: &str) -> bool {
    OPTIONS.iter().any(|o| o.key == key && o.secret)
}

/// One configured remote: its URL and options (merged from both files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    pub name: String,
    pub url: String,
    pub options: BTreeMap<String, String>,
}

impl RemoteConfig {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// The secrets a message about this remote must never show: its secret
    /// options and the credentials in the environment (too short ones
    /// would mask ordinary words).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .options
            .iter()
            .filter(|(k, _)| is_secret(k))
            .map(|(_, v)| v.clone())
            .collect();
        for var in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AZURE_STORAGE_ACCOUNT_KEY",
        ] {
            if let Ok(v) = std::env::var(var) {
                secrets.push(v);
            }
        }
        secrets.retain(|s| s.len() >= 4);
        secrets
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.option(key), Some("true" | "1" | "yes"))
    }
}

/// Every remote of a project, and which one is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remotes {
    pub default: Option<String>,
    pub by_name: BTreeMap<String, RemoteConfig>,
}

impl Remotes {
    /// Reads the `[core]` and `[remote.*]` tables of the two files' TOML
    /// documents (`local` merged over `shared`).
    pub fn from_tables(
        shared: Option<&toml::Table>,
        local: Option<&toml::Table>,
    ) -> Result<Remotes, ConfigError> {
        let mut remotes = Remotes::default();
        for (file, table) in [("pipe.toml", shared), (LOCAL_CONFIG_FILE, local)] {
            let Some(table) = table else { continue };
            let err = |message: String| ConfigError {
                file: file.to_string(),
                message,
            };
            if let Some(core) = table.get("core") {
                let core = core
                    .as_table()
                    .ok_or_else(|| err("[core] must be a table".into()))?;
                for (key, value) in core {
                    match (key.as_str(), value) {
                        ("remote", toml::Value::String(name)) => {
                            remotes.default = Some(name.clone())
                        }
                        ("remote", _) => {
                            return Err(err("core.remote must be the name of a remote".into()))
                        }
                        (other, _) => {
                            return Err(err(format!(
                            "unknown key `core.{other}`; [core] has `remote` (the default remote)"
                        )))
                        }
                    }
                }
            }
            let Some(section) = table.get("remote") else {
                continue;
            };
            let section = section
                .as_table()
                .ok_or_else(|| err("[remote] must hold tables like [remote.NAME]".into()))?;
            for (name, body) in section {
                let body = body.as_table().ok_or_else(|| {
                    err(format!("remote.{name} must be a table ([remote.{name}])"))
                })?;
                let entry = remotes
                    .by_name
                    .entry(name.clone())
                    .or_insert_with(|| RemoteConfig {
                        name: name.clone(),
                        ..RemoteConfig::default()
                    });
                for (key, value) in body {
                    if !OPTIONS.iter().any(|o| o.key == key) {
                        let known: Vec<&str> = OPTIONS.iter().map(|o| o.key).collect();
                        let hint = did_you_mean(key, known.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("known keys are: {}", known.join(", ")));
                        return Err(err(format!(
                            "remote `{name}`: unknown key `{key}` ({hint})"
                        )));
                    }
                    let text = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Boolean(b) => b.to_string(),
                        toml::Value::Integer(i) => i.to_string(),
                        _ => {
                            return Err(err(format!(
                                "remote `{name}`: `{key}` must be a string, a number or true/false"
                            )))
                        }
                    };
                    if key == "url" {
                        entry.url = text;
                    } else {
                        entry.options.insert(key.clone(), text);
                    }
                }
            }
        }
        for (name, r) in &remotes.by_name {
            if r.url.is_empty() {
                return Err(ConfigError {
                    file: "pipe.toml".into(),
                    message: format!("remote `{name}` has no `url`"),
                });
            }
        }
        Ok(remotes)
    }

    /// The remote named `name`, or the default one.
    pub fn pick(&self, name: Option<&str>) -> Result<&RemoteConfig, RemotePickError> {
        let name = match name.or(self.default.as_deref()) {
            Some(n) => n,
            None if self.by_name.len() == 1 => self.by_name.keys().next().expect("one remote"),
            None if self.by_name.is_empty() => return Err(RemotePickError::None),
            None => {
                return Err(RemotePickError::NoDefault(
                    self.by_name.keys().cloned().collect(),
                ))
            }
        };
        self.by_name
            .get(name)
            .ok_or_else(|| RemotePickError::Unknown {
                name: name.to_string(),
                known: self.by_name.keys().cloned().collect(),
            })
    }

    /// One line per remote for `pipe remote list`: name, masked URL, the
    /// options (secrets shown as `(set)`), and which is the default.
    pub fn describe(&self) -> Vec<String> {
        self.by_name
            .values()
            .map(|r| {
                let mut line = format!("{}\t{}", r.name, super::url::masked(&r.url));
                for (k, v) in &r.options {
                    let shown = if is_secret(k) { "(set)" } else { v.as_str() };
                    line.push_str(&format!("\t{k}={shown}"));
                }
                if self.default.as_deref() == Some(r.name.as_str()) {
                    line.push_str("\t(default)");
                }
                line
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemotePickError {
    #[error("no remote is configured")]
    None,
    #[error("several remotes are configured ({}) and none is the default", .0.join(", "))]
    NoDefault(Vec<String>),
    #[error("no remote named `{name}`{}", if known.is_empty() { String::new() } else { format!(" (remotes: {})", known.join(", ")) })]
    Unknown { name: String, known: Vec<String> },
}

impl RemotePickError {
    pub fn hint(&self) -> String {
        match self {
            RemotePickError::None => {
                "add one: `pipe remote add -d NAME s3://bucket/prefix` (or a directory on a shared disk)".into()
            }
            RemotePickError::NoDefault(_) => {
                "pass `-r NAME`, or make one the default: `pipe remote default NAME`".into()
            }
            RemotePickError::Unknown { .. } => "see `pipe remote list`".into(),
        }
    }
}

/// Edits of the config files that keep their comments and layout.
pub struct ConfigEdit {
    path: PathBuf,
    doc: toml_edit::DocumentMut,
    created: bool,
}

impl ConfigEdit {
    /// Opens `file` in `root` for editing (an absent file is empty).
    pub fn open(root: &Path, file: &str) -> Result<ConfigEdit, ConfigError> {
        let path = root.join(file);
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let (text, created) = match std::fs::read_to_string(&path) {
            Ok(t) => (t, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let doc = text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| err(e.to_string().trim().to_string()))?;
        Ok(ConfigEdit { path, doc, created })
    }

    fn remote_table(&mut self, name: &str) -> &mut toml_edit::Table {
        let remotes = self.doc["remote"].or_insert(toml_edit::table());
        let remotes = remotes.as_table_mut().expect("remote is a table");
        remotes.set_implicit(true);
        remotes[name]
            .or_insert(toml_edit::table())
            .as_table_mut()
            .expect("remote.NAME is a table")
    }

    pub fn has_remote(&self, name: &str) -> bool {
        self.doc.get("remote").and_then(|r| r.get(name)).is_some()
    }

    pub fn set(&mut self, name: &str, key: &str, value: &str) {
        let item = match (key, value) {
            ("allow_http", "true" | "false") => toml_edit::value(value == "true"),
            ("jobs", v) if v.parse::<i64>().is_ok() => {
                toml_edit::value(v.parse::<i64>().unwrap_or(0))
            }
            _ => toml_edit::value(value),
        };
        self.remote_table(name)[key] = item;
    }

    pub fn unset(&mut self, name: &str, key: &str) -> bool {
        self.remote_table(name).remove(key).is_some()
    }

    pub fn remove_remote(&mut self, name: &str) -> bool {
        let removed = self
            .doc
            .get_mut("remote")
            .and_then(|r| r.as_table_mut())
            .is_some_and(|r| r.remove(name).is_some());
        if self.default_remote().as_deref() == Some(name) {
            self.set_default(None);
        }
        removed
    }

    pub fn default_remote(&self) -> Option<String> {
        self.doc
            .get("core")
            .and_then(|c| c.get("remote"))
            .and_then(|r| r.as_str())
            .map(str::to_string)
    }

    pub fn set_default(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                self.doc["core"].or_insert(toml_edit::table())["remote"] = toml_edit::value(n)
            }
            None => {
                if let Some(core) = self.doc.get_mut("core").and_then(|c| c.as_table_mut()) {
                    core.remove("remote");
                }
            }
        }
    }

    /// Writes the file back (atomically); a new `pipe.local.toml` is added
    /// to the project's `.gitignore` first.
    pub fn save(&self, root: &Path) -> Result<(), ConfigError> {
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let err = |message: String| ConfigError {
            file: file.clone(),
            message,
        };
        if self.created && file == LOCAL_CONFIG_FILE {
            ignore_in_git(root, &format!("/{LOCAL_CONFIG_FILE}"))
                .map_err(|e| err(format!("cannot add it to .gitignore: {e}")))?;
        }
        crate::atomic_write::write(&self.path, self.doc.to_string().as_bytes(), false)
            .map_err(|e| err(format!("cannot write: {e}")))
    }
}

/// Adds `pattern` to the `.gitignore` in `root` unless a line is it already.
fn ignore_in_git(root: &Path, pattern: &str) -> std::io::Result<()> {
    let path = root.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if text.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(pattern);
    new.push('\n');
    crate::atomic_write::write(&path, new.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_local_file_is_merged_over_the_shared_one_key_by_key() {
        let shared = table(
            "[core]\nremote = \"s3\"\n[remote.s3]\nurl = \"s3://b/p\"\nregion = \"eu-west-1\"\nallow_http = true\n",
        );
        let local = table("[remote.s3]\nsecret_access_key = \"hunter2\"\nregion = \"us-east-1\"\n");
        let r = Remotes::from_tables(Some(&shared), Some(&local)).unwrap();
        let s3 = r.pick(None).unwrap();
        assert_eq!(s3.url, "s3://b/p");
        assert_eq!(s3.option("region"), Some("us-east-1"));
        assert!(s3.flag("allow_http"));
        let shown = r.describe().join("\n");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            shown,
            "s3\ts3://b/p\tallow_http=true\tregion=us-east-1\tsecret_access_key=(set)\t(default)"
        );
    }

    #[test]
    fn unknown_keys_and_remotes_are_named() {
        let err = Remotes::from_tables(
            Some(&table("[remote.a]\nurl = \"x\"\nregoin = \"y\"\n")),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "pipe.toml: remote `a`: unknown key `regoin` (did you mean `region`?)"
        );
        let r = Remotes::from_tables(
            Some(&table("[remote.a]\nurl = \"x\"\n[remote.b]\nurl = \"y\"\n")),
            None,
        )
        .unwrap();
        assert!(matches!(r.pick(None), Err(RemotePickError::NoDefault(_))));
        assert!(matches!(
            r.pick(Some("c")),
            Err(RemotePickError::Unknown { .. })
        ));
        assert_eq!(r.pick(Some("b")).unwrap().url, "y");
    }

    #[test]
    fn edits_keep_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pipe.toml"),
            "# team settings\n[cache]\nlink = \"copy\" # fast\n",
        )
        .unwrap();
        let mut edit = ConfigEdit::open(dir.path(), "pipe.toml").unwrap();
        edit.set("origin", "url", "s3://b/p");
        edit.set("origin", "allow_http", "true");
        edit.set_default(Some("origin"));
        edit.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("pipe.toml")).unwrap();
        assert_eq!(
            text,
            "# team settings\n[cache]\nlink = \"copy\" # fast\n\n[remote.origin]\nurl = \"s3://b/p\"\nallow_http = true\n\n[core]\nremote = \"origin\"\n"
        );
        let mut local = ConfigEdit::open(dir.path(), LOCAL_CONFIG_FILE).unwrap();
        local.set("origin", "secret_access_key", "s");
        local.save(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            "/pipe.local.toml\n"
        );
    }
}
