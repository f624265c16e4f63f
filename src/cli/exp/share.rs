//! `pipe exp push` and `pipe exp pull` (see [`pipe::exp::share`]).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use pipe::exp::share;
use pipe::remote::scope::{collect, Scope};
use pipe::remote::RemotePickError;

use super::{err, find};
use crate::cli::compare::open_repo;
use crate::cli::transfer::{lock, open_remote, summary, Bars};
use crate::cli::{load_project, print, CliError};

/// Send experiments to a git remote, as `dvc exp push` does: their refs
/// with git, their outputs to the data remote, so that a teammate can
/// `pipe exp pull` them and `exp show`/`exp apply` them.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The git remote (a name from `git remote`, or a URL).
    pub git_remote: String,
    /// Experiments to send (names as `pipe exp show` lists them).
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every experiment of the project.
    #[arg(short = 'A', long, conflicts_with = "names")]
    pub all: bool,
    /// Replace an experiment of the same name on the git remote.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Bring experiments from a git remote, as `dvc exp pull` does: their refs
/// with git, their outputs from the data remote into the cache (`pipe exp
/// apply` then puts them in the workspace).
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The git remote (a name from `git remote`, or a URL).
    pub git_remote: String,
    /// Experiments to bring (names as the remote's refs have them).
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every experiment the git remote has.
    #[arg(short = 'A', long, conflicts_with = "names")]
    pub all: bool,
    /// Replace a local experiment of the same name and baseline.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

/// How the experiments' outputs move: the options `exp push` and `exp
/// pull` share.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Move only the refs, not the outputs.
    #[arg(long)]
    pub no_cache: bool,
    /// The data remote for the outputs (default: the default remote).
    #[arg(short, long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Also the run-cache entries of the experiments' stages.
    #[arg(long)]
    pub run_cache: bool,
    /// Transfers at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// The data remote, or `None` when the refs alone move: with --no-cache,
/// or (with a note) when no data remote is configured and none was asked
/// for.
fn data_remote(
    project: &pipe::project::Project,
    data: &DataArgs,
    verb: &str,
) -> Result<Option<pipe::remote::Remote>, CliError> {
    if data.no_cache {
        return Ok(None);
    }
    let name = data.remote.as_deref();
    if name.is_none()
        && matches!(
            project.config.remotes.pick(None),
            Err(RemotePickError::None)
        )
    {
        eprintln!(
            "note: no data remote is configured, so only the refs were {verb}; the outputs stay where they are (`pipe remote add -d NAME URL`, or --no-cache to say so)"
        );
        return Ok(None);
    }
    open_remote(project, name, data.jobs).map(Some)
}

/// The outputs (and with --run-cache, the run entries) of the experiments
/// `refs`, without the workspace's.
fn scope(refs: &[String], data: &DataArgs) -> Scope {
    Scope {
        experiments: refs.to_vec(),
        run_cache: data.run_cache,
        skip_workspace: true,
        ..Scope::default()
    }
}

pub(super) fn push(cwd: &Path, args: PushArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp push")?;
    let exps = if args.all {
        pipe::exp::list(&repo).map_err(err)?
    } else {
        args.names
            .iter()
            .map(|n| find(&project, &repo, n))
            .collect::<Result<Vec<_>, _>>()?
    };
    if exps.is_empty() {
        print("No experiments to push.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let workdir = repo.raw().workdir().unwrap_or(&project.root).to_path_buf();
    // Another run of the same name there is not replaced without -f.
    if !args.force {
        let there = share::list_remote(&workdir, &args.git_remote).map_err(err)?;
        let clashes: Vec<String> = exps
            .iter()
            .filter(|e| {
                there
                    .iter()
                    .any(|t| t.refname == e.refname && t.commit != e.commit.to_string())
            })
            .map(|e| e.name.clone())
            .collect();
        if !clashes.is_empty() {
            return Err(CliError {
                message: format!(
                    "git remote `{}` has another run of experiment {} (same name and baseline, other results)",
                    share::scrub(&args.git_remote),
                    clashes.join(", ")
                ),
                hints: vec![
                    "run yours again under another name (-n) to keep both, or -f to replace theirs".into(),
                ],
                code: 1,
            });
        }
    }
    let refs: Vec<String> = exps.iter().map(|e| e.refname.clone()).collect();
    // The outputs first: whoever sees a ref finds what it names.
    let remote = data_remote(&project, &args.data, "pushed")?;
    let mut said = String::new();
    if let Some(remote) = &remote {
        let _guard = lock(&project)?;
        let set = collect(&project, &scope(&refs, &args.data))?;
        let started = Instant::now();
        let report = remote
            .push(&project.cache, &set, false, &Bars::new())
            .map_err(pipe::Error::from)?;
        let text = summary("pushed", &report, remote, started.elapsed());
        if !report.ok() {
            eprint!("{text}");
            return Err(CliError {
                message: "the experiments' outputs could not all be pushed, so their refs were not pushed".into(),
                hints: vec!["run the command again to retry; what was pushed stays pushed".into()],
                code: 1,
            });
        }
        said.push_str(&format!("Outputs: {text}"));
    }
    share::push_refs(&workdir, &args.git_remote, &refs, args.force).map_err(err)?;
    for e in &exps {
        said.push_str(&format!(
            "Pushed experiment {} to {}\n",
            e.name,
            share::scrub(&args.git_remote)
        ));
    }
    eprint!("{said}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn pull(cwd: &Path, args: PullArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp pull")?;
    let workdir = repo.raw().workdir().unwrap_or(&project.root).to_path_buf();
    let there = share::list_remote(&workdir, &args.git_remote).map_err(err)?;
    let wanted: Vec<&share::RemoteExp> = if args.all {
        there.iter().collect()
    } else {
        let mut wanted = Vec::new();
        for name in &args.names {
            let named: Vec<&share::RemoteExp> = there
                .iter()
                .filter(|e| &e.name == name || &e.refname == name)
                .collect();
            if named.is_empty() {
                let mut names: Vec<&str> = there.iter().map(|e| e.name.as_str()).collect();
                names.dedup();
                return Err(CliError {
                    message: format!(
                        "git remote `{}` has no experiment named `{name}`",
                        share::scrub(&args.git_remote)
                    ),
                    hints: vec![match names.is_empty() {
                        true => {
                            "it has no experiments; push them there with `pipe exp push`".into()
                        }
                        false => format!("it has: {}", names.join(", ")),
                    }],
                    code: 1,
                });
            }
            wanted.extend(named);
        }
        wanted
    };
    if wanted.is_empty() {
        print("No experiments to pull.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let refs: Vec<String> = wanted.iter().map(|e| e.refname.clone()).collect();
    share::fetch_refs(&workdir, &args.git_remote, &refs, args.force).map_err(err)?;
    let mut said = String::new();
    for e in &wanted {
        said.push_str(&format!(
            "Pulled experiment {} from {}\n",
            e.name,
            share::scrub(&args.git_remote)
        ));
    }
    if let Some(remote) = data_remote(&project, &args.data, "pulled")? {
        let _guard = lock(&project)?;
        let set = collect(&project, &scope(&refs, &args.data))?;
        let started = Instant::now();
        let report = remote
            .fetch(&project.cache, &set, &Bars::new())
            .map_err(pipe::Error::from)?;
        let text = summary("fetched", &report, &remote, started.elapsed());
        said.push_str(&format!("Outputs: {text}"));
        if !report.ok() {
            eprint!("{said}");
            return Err(CliError {
                message: "the experiments were pulled, but not all of their outputs".into(),
                hints: vec![
                    "run the command again to retry; `pipe exp apply` runs what it cannot restore"
                        .into(),
                ],
                code: 1,
            });
        }
    }
    eprint!("{said}");
    Ok(ExitCode::SUCCESS)
}
