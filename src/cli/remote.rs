//! `pipe remote add|list|remove|modify|default`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pipe::config::CONFIG_FILE;
use pipe::project::Project;
use pipe::remote::config::{is_secret, ConfigEdit, LOCAL_CONFIG_FILE, OPTIONS};
use pipe::remote::url::{masked, Location};

use super::{print, CliError};

/// Configure remotes: where `pipe push` and `pipe pull` move the cache
/// (an S3 bucket, GCS, Azure, or a directory on a shared disk).
#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    pub command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    Add(AddArgs),
    List(ListArgs),
    Remove(RemoveArgs),
    Modify(ModifyArgs),
    Default(DefaultArgs),
}

/// Add a remote: `pipe remote add -d storage s3://bucket/prefix`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The remote's name.
    pub name: String,
    /// s3://BUCKET/prefix, gs://BUCKET/prefix, azure://CONTAINER/prefix,
    /// file:///path or a directory.
    pub url: String,
    /// Make it the default remote.
    #[arg(short = 'd', long)]
    pub default: bool,
    /// Write it to pipe.local.toml (git-ignored) instead of pipe.toml.
    #[arg(long)]
    pub local: bool,
    /// Replace a remote of that name.
    #[arg(short, long)]
    pub force: bool,
}

/// List the remotes (secrets are never shown).
#[derive(Debug, Args)]
pub struct ListArgs {}

/// Remove a remote from the config (its data stays where it is).
#[derive(Debug, Args)]
pub struct RemoveArgs {
    pub name: String,
}

/// Set (or `--unset`) an option of a remote. Options: url, endpoint_url,
/// region, allow_http, profile, jobs, access_key_id, secret_access_key,
/// session_token, service_account_path, account_name, account_key,
/// sas_token. Secrets go to pipe.local.toml (git-ignored).
#[derive(Debug, Args)]
pub struct ModifyArgs {
    pub name: String,
    pub key: String,
    /// The value (omit with --unset).
    pub value: Option<String>,
    /// Remove the option.
    #[arg(short, long)]
    pub unset: bool,
    /// Write to pipe.local.toml (git-ignored) instead of pipe.toml.
    #[arg(long)]
    pub local: bool,
}

/// Make a remote the default (or `--unset` the default).
#[derive(Debug, Args)]
pub struct DefaultArgs {
    pub name: Option<String>,
    #[arg(short, long)]
    pub unset: bool,
}

fn usage(message: String, hint: &str) -> CliError {
    CliError {
        message,
        hints: vec![hint.to_string()],
        code: 2,
    }
}

fn project_root(cwd: &Path) -> Result<std::path::PathBuf, CliError> {
    Project::find_root(cwd).ok_or_else(|| {
        usage(
            format!(
                "no pipeline.yaml in {} or any parent directory",
                cwd.display()
            ),
            "run pipe inside a project",
        )
    })
}

fn config_err(e: pipe::config::ConfigError) -> CliError {
    CliError::from(pipe::Error::from(e))
}

pub fn run(cwd: &Path, args: RemoteArgs) -> Result<ExitCode, CliError> {
    let root = project_root(cwd)?;
    let file_of = |local: bool| {
        if local {
            LOCAL_CONFIG_FILE
        } else {
            CONFIG_FILE
        }
    };
    match args.command {
        RemoteCommand::Add(a) => {
            Location::parse(&a.url, &root).map_err(|m| usage(m, "see `pipe remote add --help`"))?;
            let config = pipe::config::Config::load(&root).map_err(config_err)?;
            if config.remotes.by_name.contains_key(&a.name) && !a.force {
                return Err(usage(
                    format!("a remote named `{}` exists already", a.name),
                    "pass --force to replace it, or `pipe remote modify NAME url URL`",
                ));
            }
            let mut edit = ConfigEdit::open(&root, file_of(a.local)).map_err(config_err)?;
            edit.set(&a.name, "url", &a.url);
            if a.default {
                edit.set_default(Some(&a.name));
            }
            edit.save(&root).map_err(config_err)?;
            print(&format!(
                "added remote {} ({}){}\n",
                a.name,
                masked(&a.url),
                if a.default { " as the default" } else { "" }
            ))?;
        }
        RemoteCommand::List(_) => {
            let config = pipe::config::Config::load(&root).map_err(config_err)?;
            let lines = config.remotes.describe();
            if lines.is_empty() {
                print("no remotes (add one with `pipe remote add -d NAME URL`)\n")?;
            } else {
                print(&format!("{}\n", lines.join("\n")))?;
            }
        }
        RemoteCommand::Remove(a) => {
            let mut removed = false;
            for file in [CONFIG_FILE, LOCAL_CONFIG_FILE] {
                if !root.join(file).exists() {
                    continue;
                }
                let mut edit = ConfigEdit::open(&root, file).map_err(config_err)?;
                if edit.remove_remote(&a.name) {
                    removed = true;
                }
                edit.save(&root).map_err(config_err)?;
            }
            if !removed {
                return Err(usage(
                    format!("no remote named `{}`", a.name),
                    "see `pipe remote list`",
                ));
            }
            print(&format!(
                "removed remote {} (its data is left where it is)\n",
                a.name
            ))?;
        }
        RemoteCommand::Modify(a) => {
            if !OPTIONS.iter().any(|o| o.key == a.key) {
                let known: Vec<&str> = OPTIONS.iter().map(|o| o.key).collect();
                return Err(usage(
                    format!("`{}` is not a remote option", a.key),
                    &format!("options are: {}", known.join(", ")),
                ));
            }
            let config = pipe::config::Config::load(&root).map_err(config_err)?;
            if !config.remotes.by_name.contains_key(&a.name) {
                return Err(usage(
                    format!("no remote named `{}`", a.name),
                    "add it first: `pipe remote add NAME URL`",
                ));
            }
            // A secret never goes into the file git tracks.
            let local = a.local || is_secret(&a.key);
            let mut edit = ConfigEdit::open(&root, file_of(local)).map_err(config_err)?;
            match (a.unset, &a.value) {
                (true, _) => {
                    edit.unset(&a.name, &a.key);
                }
                (false, Some(v)) => {
                    if a.key == "url" {
                        Location::parse(v, &root)
                            .map_err(|m| usage(m, "see `pipe remote add --help`"))?;
                    }
                    edit.set(&a.name, &a.key, v);
                }
                (false, None) => {
                    return Err(usage(
                        format!("give a value for `{}`, or --unset", a.key),
                        "e.g. `pipe remote modify NAME endpoint_url http://127.0.0.1:9000`",
                    ))
                }
            }
            edit.save(&root).map_err(config_err)?;
            print(&format!(
                "{} {}.{} in {}\n",
                if a.unset { "unset" } else { "set" },
                a.name,
                a.key,
                file_of(local)
            ))?;
        }
        RemoteCommand::Default(a) => {
            let mut edit = ConfigEdit::open(&root, CONFIG_FILE).map_err(config_err)?;
            match (a.unset, &a.name) {
                (true, _) => edit.set_default(None),
                (false, Some(n)) => {
                    let config = pipe::config::Config::load(&root).map_err(config_err)?;
                    if !config.remotes.by_name.contains_key(n) {
                        return Err(usage(
                            format!("no remote named `{n}`"),
                            "see `pipe remote list`",
                        ));
                    }
                    edit.set_default(Some(n));
                }
                (false, None) => {
                    let config = pipe::config::Config::load(&root).map_err(config_err)?;
                    print(&format!(
                        "{}\n",
                        config
                            .remotes
                            .default
                            .as_deref()
                            .unwrap_or("(no default remote)")
                    ))?;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            edit.save(&root).map_err(config_err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
