//! `pipe exp run`: one experiment in a temporary copy, or a queue of them
//! run in parallel.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Mutex};

use clap::Args;

use pipe::exp::overrides::{self, Override};
use pipe::exp::queue::{self, Queued};
use pipe::exp::{self as experiments, claim, copies, isolated, record};
use pipe::git::Repo;
use pipe::project::Project;

use super::{err, pipe_exe};
use crate::cli::compare::open_repo;
use crate::cli::{load_project, CliError};

/// Run the pipeline with changed params in a temporary copy of the
/// workspace (sharing its cache) and record the result as an experiment;
/// or queue experiments and run the queue in parallel. The workspace, HEAD,
/// branch and index are left as they are; `pipe exp apply` brings a result in.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Set a param: `KEY=VALUE` (in params.yaml) or `FILE:KEY=VALUE`; the
    /// key must exist, and the value takes the file's type there. Several
    /// values (`fit.C=0.1,1,10`), or several -S, give one experiment per
    /// combination, run as a queue.
    #[arg(short = 'S', long = "set-param", value_name = "[FILE:]KEY=VALUE")]
    pub set: Vec<String>,
    /// The experiment's name (with several combinations: NAME-1, NAME-2, …);
    /// letters, digits, `-`, `_` and `.`, not a name git resolves
    /// [default: exp-<5 hex digits>].
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Only add to the queue; run it later with --run-all.
    #[arg(long)]
    pub queue: bool,
    /// Run every queued experiment.
    #[arg(long, conflicts_with = "queue")]
    pub run_all: bool,
    /// Queued experiments to run at once [default: 1].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Restore from the remote's run cache the stages it holds, as `pipe
    /// repro --pull` does, instead of running them.
    #[arg(long)]
    pub pull: bool,
    /// The remote for --pull (default: the default remote).
    #[arg(short, long, value_name = "NAME", requires = "pull")]
    pub remote: Option<String>,
    /// Where each experiment's stages run, as `pipe repro --executor`:
    /// with `slurm`, a sweep's stages are Slurm jobs (-j experiments at a
    /// time, each submitting its independent stages at once).
    #[arg(long, value_name = "KIND", value_parser = super::super::repro::parse_executor)]
    pub executor: Option<pipe::executor::Kind>,
}

pub(super) fn run_cmd(cwd: &Path, args: RunArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp run")?;
    if args.jobs == Some(0) {
        return Err(CliError {
            message: "-j/--jobs must be at least 1".into(),
            hints: vec![],
            code: 2,
        });
    }
    let sets = args
        .set
        .iter()
        .map(|s| overrides::parse_set(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let combos = overrides::combinations(&sets);
    let swept = copies::sweep(&project.cache_root());
    if !swept.is_empty() {
        eprintln!(
            "Removed the copies left by interrupted runs of: {}.",
            swept.join(", ")
        );
    }
    if args.run_all && args.set.is_empty() {
        return run_queue(&project, args.jobs.unwrap_or(1), None, &repro_args(&args));
    }
    let baseline = repo.head_commit("pipe exp run").map_err(err)?;
    let combos = combos
        .iter()
        .map(|combo| overrides::resolve(&project.root, combo))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let start = record::start_commit(&repo, &project.root, baseline.oid).map_err(err)?;
    isolated::check_params(&project.root, &repo, start, &combos).map_err(err)?;
    let names = queue_names(&project, &repo, baseline.oid, args.name.as_deref(), &combos)?;
    let entries: Vec<Queued> = names
        .iter()
        .zip(&combos)
        .map(|(name, combo)| Queued {
            name: name.clone(),
            baseline: baseline.oid.to_string(),
            start: start.to_string(),
            overrides: combo.clone(),
            queued_at: now_secs(),
        })
        .collect();
    if args.queue || args.run_all || entries.len() > 1 {
        for q in &entries {
            // The start commit (the workspace's changes) must outlive git gc
            // until the experiment has run.
            repo.raw()
                .reference(
                    &repo.queue_ref(&q.name),
                    start,
                    true,
                    "pipe exp run --queue",
                )
                .map_err(pipe::git::GitError::wrap(format!(
                    "keep the start of {}",
                    q.name
                )))
                .map_err(err)?;
            queue::push(&project.cache_root(), q).map_err(err)?;
            eprintln!("Queued {}: {}", q.name, describe(&q.overrides));
        }
        if args.queue {
            eprintln!("Run the queue with `pipe exp run --run-all -j N`.");
            return Ok(ExitCode::SUCCESS);
        }
        let only: Vec<String> = entries.iter().map(|q| q.name.clone()).collect();
        let only = (!args.run_all).then_some(only);
        return run_queue(
            &project,
            args.jobs.unwrap_or(1),
            only.as_deref(),
            &repro_args(&args),
        );
    }
    let q = &entries[0];
    let stop = catch_stop_signals()?;
    // Before anything runs: a second run of this name fails now.
    let claim = claim::claim(&repo, &project.cache_root(), &q.name, baseline.oid).map_err(err)?;
    eprintln!("Running experiment {}: {}", q.name, describe(&q.overrides));
    match isolated::run(
        &project.root,
        &shared_cache(&project),
        (q, &claim),
        (&pipe_exe()?, &repro_args(&args)),
        isolated::Output::Terminal,
        &stop,
    ) {
        Ok(commit) => {
            eprintln!(
                "Recorded experiment {} ({}) on baseline {}.",
                q.name,
                Repo::short(commit),
                Repo::short(baseline.oid)
            );
            eprintln!(
                "Compare with `pipe exp show`; bring it into the workspace with `pipe exp apply {}`.",
                q.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(isolated::Failure {
            interrupted: Some(sig),
            message,
            ..
        }) => Err(CliError {
            message: format!(
                "experiment {} was interrupted ({}) and not recorded; {message}",
                q.name,
                signal_name(sig)
            ),
            hints: vec![format!("run it again: {}", rerun_command(q))],
            code: 128 + sig as u8,
        }),
        Err(failure) => Err(CliError {
            message: format!(
                "experiment {} failed and was not recorded: {}",
                q.name, failure.message
            ),
            hints: vec![format!("fix it, then run it again: {}", rerun_command(q))],
            code: 1,
        }),
    }
}

/// From now on SIGINT, SIGTERM and SIGHUP no longer end this process: they
/// set the returned flag, and the runs stop their children, remove their
/// copies and say what was interrupted.
fn catch_stop_signals() -> Result<isolated::Stop, CliError> {
    let stop = isolated::Stop::new();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::flag::register_usize(sig, stop.flag(), sig as usize).map_err(|e| {
            CliError {
                message: format!("cannot catch signal {sig}: {e}"),
                hints: vec![],
                code: 1,
            }
        })?;
    }
    Ok(stop)
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT, Ctrl-C".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// The directory holding the project's cache (`v1/`), which experiment
/// copies share.
fn shared_cache(project: &Project) -> PathBuf {
    project
        .cache
        .dir()
        .parent()
        .expect("the cache has a parent directory")
        .to_path_buf()
}

/// The command that runs `q` again.
fn rerun_command(q: &Queued) -> String {
    let mut cmd = String::from("pipe exp run");
    for o in &q.overrides {
        let text = o.to_string();
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-=:/+".contains(c))
        {
            cmd.push_str(&format!(" -S {text}"));
        } else {
            cmd.push_str(&format!(" -S '{}'", text.replace('\'', "'\\''")));
        }
    }
    cmd.push_str(&format!(" -n {}", q.name));
    cmd
}

fn describe(combo: &[Override]) -> String {
    if combo.is_empty() {
        "params as they are".into()
    } else {
        combo
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Names for queued combinations: `NAME` (or `NAME-1`, `NAME-2`, …) with
/// -n, fresh ones without; none may be taken.
fn queue_names(
    project: &Project,
    repo: &Repo,
    baseline: git2::Oid,
    base: Option<&str>,
    combos: &[Vec<Override>],
) -> Result<Vec<String>, CliError> {
    let queued: Vec<String> = queue::list(&project.cache_root())
        .map_err(err)?
        .into_iter()
        .map(|e| e.queued.name)
        .collect();
    let mut names = Vec::new();
    for (i, combo) in combos.iter().enumerate() {
        let name = match base {
            Some(base) if combos.len() == 1 => base.to_string(),
            Some(base) => format!("{base}-{}", i + 1),
            None => experiments::new_name(&format!("{i}{combo:?}")),
        };
        experiments::check_new_name(repo, &name, baseline).map_err(err)?;
        if queued.contains(&name) || names.contains(&name) {
            return Err(CliError {
                message: format!("an experiment named `{name}` is queued already"),
                hints: vec![format!(
                    "choose another -n NAME, or `pipe exp remove {name}`"
                )],
                code: 2,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Claims the name of a queued experiment of the project at `root` for
/// its run.
fn claim_name(root: &Path, queued: &Queued) -> Result<claim::NameClaim, isolated::Failure> {
    let repo = Repo::discover(root, "pipe exp run").map_err(pipe::Error::from)?;
    let baseline = git2::Oid::from_str(&queued.baseline).map_err(|_| isolated::Failure {
        message: format!(
            "queue entry {} names a bad commit `{}`",
            queued.name, queued.baseline
        ),
        log: None,
        interrupted: None,
    })?;
    Ok(claim::claim(
        &repo,
        &root.join(pipe::cache::CACHE_DIR),
        &queued.name,
        baseline,
    )?)
}

/// Runs the queued experiments (those named in `only`, or all), `jobs` at
/// a time; when `stop` is set, the running ones are stopped and stay
/// queued, and no other starts.
/// What the experiment's `pipe repro` is given besides the copy.
fn repro_args(args: &RunArgs) -> Vec<String> {
    let mut out = Vec::new();
    if args.pull {
        out.push("--pull".to_string());
        if let Some(remote) = &args.remote {
            out.extend(["--remote".to_string(), remote.clone()]);
        }
    }
    if let Some(kind) = args.executor {
        out.extend(["--executor".to_string(), kind.to_string()]);
    }
    out
}

fn run_queue(
    project: &Project,
    jobs: usize,
    only: Option<&[String]>,
    repro_args: &[String],
) -> Result<ExitCode, CliError> {
    let stop = &catch_stop_signals()?;
    let recovered = queue::recover(&project.cache_root());
    if !recovered.is_empty() {
        eprintln!(
            "Queued again after an interrupted run: {}.",
            recovered.join(", ")
        );
    }
    let mut entries = queue::list(&project.cache_root()).map_err(err)?;
    if let Some(only) = only {
        entries.retain(|e| only.contains(&e.queued.name));
    }
    if entries.is_empty() {
        eprintln!("The queue is empty; add to it with `pipe exp run --queue -S KEY=VALUE`.");
        return Ok(ExitCode::SUCCESS);
    }
    let exe = pipe_exe()?;
    let total = entries.len();
    eprintln!(
        "Running {total} queued experiment(s), {} at a time.",
        jobs.min(total)
    );
    let work = Mutex::new(entries.into_iter().collect::<VecDeque<_>>());
    let (tx, rx) = mpsc::channel();
    let root = project.root.clone();
    let shared = shared_cache(project);
    let mut failed = Vec::new();
    let mut interrupted = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(total) {
            let tx = tx.clone();
            let (work, root, exe, shared) = (&work, &root, &exe, &shared);
            scope.spawn(move || loop {
                if stop.signal().is_some() {
                    break;
                }
                let Some(entry) = work.lock().expect("queue lock").pop_front() else {
                    break;
                };
                let Some(claimed) = queue::claim(&entry) else {
                    continue; // another `--run-all` took it
                };
                let result = claim_name(root, &entry.queued).and_then(|claim| {
                    let queued = (&entry.queued, &claim);
                    isolated::run(
                        root,
                        shared,
                        queued,
                        (exe, repro_args),
                        isolated::Output::LogFile,
                        stop,
                    )
                });
                let _ = match &result {
                    Err(f) if f.interrupted.is_some() => queue::release(claimed),
                    _ => queue::remove(&claimed.path),
                };
                let _ = tx.send((entry.queued, result));
            });
        }
        drop(tx);
        for (queued, result) in rx {
            match result {
                Ok(commit) => eprintln!(
                    "✓ {} ({}): {}",
                    queued.name,
                    Repo::short(commit),
                    describe(&queued.overrides)
                ),
                Err(failure) if failure.interrupted.is_some() => {
                    eprintln!("✗ {} interrupted: {}", queued.name, failure.message);
                    interrupted.push(queued.name);
                }
                Err(failure) => {
                    failed.push(rerun_command(&queued));
                    let log = failure
                        .log
                        .map(|l| format!(" (its output: {})", l.display()))
                        .unwrap_or_default();
                    eprintln!("✗ {} failed: {}{log}", queued.name, failure.message);
                }
            }
        }
    });
    if let Some(sig) = stop.signal() {
        let waiting: Vec<String> = queue::list(&project.cache_root())
            .map_err(err)?
            .into_iter()
            .map(|e| e.queued.name)
            .filter(|n| only.is_none_or(|only| only.contains(n)))
            .collect();
        let mut message = format!("interrupted ({})", signal_name(sig));
        if !interrupted.is_empty() {
            message.push_str(&format!(
                "; stopped and not recorded: {}",
                interrupted.join(", ")
            ));
        }
        return Err(CliError {
            message,
            hints: vec![if waiting.is_empty() {
                "nothing is left in the queue".into()
            } else {
                format!(
                    "still queued: {}; run them with `pipe exp run --run-all`, or drop them with `pipe exp remove NAME…`",
                    waiting.join(", ")
                )
            }],
            code: 128 + sig as u8,
        });
    }
    if !failed.is_empty() {
        return Err(CliError {
            message: format!(
                "{} of {total} experiment(s) failed and were not recorded",
                failed.len()
            ),
            hints: vec![format!(
                "read the output files named above, fix, and run them again:\n    {}",
                failed.join("\n    ")
            )],
            code: 1,
        });
    }
    Ok(ExitCode::SUCCESS)
}
