//! `pipe repro`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use pipe::graph::Selection;
use pipe::plan::{self, DecideOptions, Verdict};
use pipe::run::{self, Reporter, ReproLock, ReproOptions};

use super::progress::{secs, Progress};
use super::{load_project, print, stage_targets, CliError};

/// Run the stages that are stale, in order, restoring from the cache what
/// has been computed before.
#[derive(Debug, Args)]
pub struct ReproArgs {
    /// Stages to reproduce (with their upstream stages); all when omitted.
    /// `name` also selects the generated stages `name@…`; in a DVC project
    /// `sub/dvc.yaml:name` names a stage of another dvc.yaml, `sub/dvc.yaml`
    /// all of its stages, and an output path the stage that writes it.
    pub targets: Vec<String>,
    /// Targets are directories: reproduce the stages of the pipeline files
    /// inside them (as `dvc repro -R`).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Targets' stage names are wildcard patterns (`train*`,
    /// `sub/dvc.yaml:eval-?`), as `dvc repro --glob`.
    #[arg(long)]
    pub glob: bool,
    /// Run the stages even if nothing changed.
    #[arg(short, long)]
    pub force: bool,
    /// Only the named stages, not their upstream stages.
    #[arg(short = 's', long = "single-item")]
    pub single_item: bool,
    /// The named stages and everything downstream of them.
    #[arg(long, conflicts_with = "single_item")]
    pub downstream: bool,
    /// Print what would run and why, and run nothing.
    #[arg(long)]
    pub dry: bool,
    /// Go on with independent stages after a failure.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Run up to N independent stages at once [default: the number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Do not restore outputs from the run cache; run stale stages.
    #[arg(long)]
    pub no_run_cache: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Restore a stale stage from the remote's run cache when it holds that
    /// exact run (pushed with `pipe push --run-cache`), instead of running it.
    #[arg(long)]
    pub pull: bool,
    /// The remote for --pull (default: the default remote).
    #[arg(short = 'r', long, value_name = "NAME", requires = "pull")]
    pub remote: Option<String>,
    /// Where stages run that do not name an executor of their own: `local`,
    /// `slurm` (each stage that must run is a Slurm job) or `generic` (the
    /// templates of [executor.generic] in pipe.toml) [default: [executor]
    /// kind of pipe.toml, else local].
    #[arg(long, value_name = "KIND", value_parser = parse_executor)]
    pub executor: Option<pipe::executor::Kind>,
}

pub(super) fn parse_executor(text: &str) -> Result<pipe::executor::Kind, String> {
    pipe::executor::Kind::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is no executor; executors are: {}",
            pipe::executor::Kind::NAMES.join(", ")
        )
    })
}

/// `-j` when it is not given: the cores of this machine for local stages;
/// for a cluster executor, `[executor] jobs` (the cluster does the work,
/// pipe only waits for it).
pub fn default_jobs(
    project: &pipe::project::Project,
    executor: Option<pipe::executor::Kind>,
) -> usize {
    let config = &project.config.executor;
    let kind = executor.unwrap_or(config.kind);
    let cluster = kind != pipe::executor::Kind::Local
        || project
            .pipeline
            .stages
            .iter()
            .any(|s| s.executor.is_some_and(|k| k != pipe::executor::Kind::Local));
    match cluster {
        true => config
            .jobs
            .unwrap_or(pipe::executor::ExecutorConfig::DEFAULT_JOBS),
        false => ReproOptions::default().jobs,
    }
}

/// Checks that the executors the stages will use are configured.
fn check_executors(
    project: &pipe::project::Project,
    executor: Option<pipe::executor::Kind>,
) -> Result<(), CliError> {
    let config = &project.config.executor;
    let mut kinds: std::collections::BTreeSet<pipe::executor::Kind> = project
        .pipeline
        .stages
        .iter()
        .filter_map(|s| s.executor)
        .collect();
    kinds.insert(executor.unwrap_or(config.kind));
    for kind in kinds {
        if let Err(e) = pipe::executor::scheduler(kind, config, &project.root) {
            return Err(CliError {
                message: format!("{}: {e}", pipe::config::CONFIG_FILE),
                hints: e.hint().into_iter().collect(),
                code: 2,
            });
        }
    }
    Ok(())
}

pub fn run(cwd: &Path, args: ReproArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let targets = stage_targets(&project, cwd, &args.targets, args.recursive, args.glob)?;
    check_executors(&project, args.executor)?;
    let opts = ReproOptions {
        targets,
        selection: if args.single_item {
            Selection::Single
        } else if args.downstream {
            Selection::WithDownstream
        } else {
            Selection::WithUpstream
        },
        force: args.force,
        keep_going: args.keep_going,
        jobs: args
            .jobs
            .unwrap_or_else(|| default_jobs(&project, args.executor)),
        use_run_cache: !args.no_run_cache,
        run_id: String::new(),
        supervisor: std::env::current_exe().ok(),
        pull: None,
        interrupt: run::Interrupt::new(),
        executor: args.executor,
    };
    if args.jobs == Some(0) {
        return Err(CliError {
            message: "-j/--jobs must be at least 1".into(),
            hints: vec![],
            code: 2,
        });
    }
    if args.dry {
        return dry_run(&project, &opts);
    }
    // Check everything that can be wrong before anything is written.
    run::select(&project, &opts)?;
    pipe::lock::LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let progress = Progress::new();
    let guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(run::Event::WaitingForLock { holder });
    })?;
    if guard.killed_leftovers > 0 {
        eprintln!(
            "Stopped {} leftover process(es) of an interrupted earlier run.",
            guard.killed_leftovers
        );
    }
    let pull = match args.pull {
        true => Some(std::sync::Arc::new(super::transfer::open_remote(
            &project,
            args.remote.as_deref(),
            None,
        )?)),
        false => None,
    };
    take_over_dvc_lock(&project, true, false)?;
    let opts = ReproOptions {
        run_id: guard.run_id().to_string(),
        pull,
        ..opts
    };
    let result = std::thread::scope(|scope| {
        let stop = StopSignals::catch(scope, &opts.interrupt, &progress);
        let result = run::repro(&project, &opts, &progress);
        stop.close();
        result
    });
    progress.finish();
    let summary = result?;
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&summary).expect("a summary serializes")
        ))?;
    }
    print_git_hint(&summary.gitignores);
    let count = |label| summary.count(label);
    eprintln!(
        "{} ran, {} restored, {} up to date, {} failed{} in {}",
        count("ran"),
        count("restored"),
        count("up to date"),
        count("failed"),
        [
            ("interrupted", count("interrupted")),
            ("frozen", count("frozen")),
            ("skipped", count("skipped")),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!(", {n} {label}"))
        .collect::<String>(),
        secs(Duration::from_secs_f64(summary.seconds)),
    );
    if let Some(signal) = opts.interrupt.requested() {
        let stopped: Vec<&str> = summary
            .stages
            .iter()
            .filter(|s| s.outcome == run::Outcome::Interrupted)
            .map(|s| s.stage.as_str())
            .collect();
        let what = match stopped.as_slice() {
            [] => "no stage was stopped halfway".to_string(),
            [one] => format!("{one} was stopped before it finished, and nothing of it is recorded"),
            many => format!(
                "{} were stopped before they finished, and nothing of them is recorded",
                many.join(", ")
            ),
        };
        eprintln!(
            "Interrupted: {what}; pipeline.lock records the stages that finished, so the next `pipe repro` resumes from there."
        );
        drop(guard);
        die_by(signal);
    }
    Ok(if summary.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn dry_run(project: &pipe::project::Project, opts: &ReproOptions) -> Result<ExitCode, CliError> {
    let selected = run::select(project, opts)?;
    let lock = take_over_dvc_lock(project, false, false)?;
    let hasher = project.hasher();
    let plans = plan::plan(
        project,
        &lock,
        &hasher,
        &selected,
        DecideOptions {
            force: opts.force,
            use_run_cache: opts.use_run_cache,
        },
    )?;
    let _ = hasher.save();
    let mut out = String::new();
    for p in &plans {
        let why: Vec<String> = p.reasons.iter().map(ToString::to_string).collect();
        match &p.verdict {
            Verdict::Run => out.push_str(&format!("would run {}: {}\n", p.stage, why.join("; "))),
            Verdict::Restore { .. } => out.push_str(&format!(
                "would restore {} from the run cache: {}\n",
                p.stage,
                why.join("; ")
            )),
            Verdict::UpToDate => out.push_str(&format!("{} is up to date\n", p.stage)),
            Verdict::Frozen => out.push_str(&format!("{} is frozen\n", p.stage)),
        }
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `pipeline.lock`, with the stages of a DVC project that it lacks taken
/// over from `dvc.lock` where their files have the md5s DVC recorded (see
/// [`pipe::dvc`]). With `write` (under the repro lock), their outputs are
/// stored in the cache and `pipeline.lock` is written; without, nothing
/// is. Says on stderr what was taken over and what was not.
pub fn take_over_dvc_lock(
    project: &pipe::project::Project,
    write: bool,
    quiet: bool,
) -> Result<pipe::lock::LockFile, CliError> {
    let mut lock = pipe::lock::LockFile::read(&project.root).map_err(pipe::Error::from)?;
    if project.pipeline.format != pipe::spec::Format::Dvc {
        return Ok(lock);
    }
    let hasher = project.hasher();
    let adoption = pipe::dvc::adopt::adopt(project, &mut lock, &hasher, write)?;
    let _ = hasher.save();
    if quiet {
        if write && !adoption.adopted.is_empty() {
            lock.write(&project.root).map_err(pipe::Error::from)?;
        }
        return Ok(lock);
    }
    if !adoption.adopted.is_empty() {
        if write {
            lock.write(&project.root).map_err(pipe::Error::from)?;
            eprintln!(
                "Took over {} stage(s) that DVC ran, from dvc.lock (their files have the md5s it records): {}; recorded in {}.",
                adoption.adopted.len(),
                adoption.adopted.join(", "),
                pipe::lock::LOCK_FILE
            );
        } else {
            eprintln!(
                "note: {} stage(s) that DVC ran are taken over from dvc.lock: {}",
                adoption.adopted.len(),
                adoption.adopted.join(", ")
            );
        }
    }
    for (stage, why) in &adoption.skipped {
        eprintln!("note: dvc.lock: stage {stage} is not taken over, it runs: {why}");
    }
    Ok(lock)
}

/// After `.gitignore` files were written: what to add to git, as DVC
/// says it.
pub fn print_git_hint(gitignores: &[pipe::paths::RelPath]) {
    if gitignores.is_empty() {
        return;
    }
    let files: Vec<String> = gitignores.iter().map(|f| f.to_string()).collect();
    eprintln!(
        "To track the changes with git, run:\n\n    git add {} {}\n",
        files.join(" "),
        pipe::lock::LOCK_FILE
    );
}

/// Ctrl-C (SIGINT) and SIGTERM while stages run. The first one asks the
/// run to stop ([`run::Interrupt`]): running commands get the signal, no
/// stage starts, and pipe ends once the running stages have (a built-in
/// stage finishes first), dying by the same signal so that a calling
/// shell script stops too (status 130 for Ctrl-C). A second one ends pipe
/// at once: everything pipe writes is written whole or not at all, so the
/// lock and the cache stay valid, as after `kill -9`. A signal that pipe
/// was started with ignored (`nohup`, a background job) stays ignored.
struct StopSignals {
    handle: Option<signal_hook::iterator::Handle>,
}

impl StopSignals {
    fn catch<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        interrupt: &'scope run::Interrupt,
        progress: &'scope Progress,
    ) -> StopSignals {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let wanted: Vec<i32> = [SIGINT, SIGTERM]
            .into_iter()
            .filter(|&sig| !ignored(sig))
            .collect();
        let Ok(mut signals) = signal_hook::iterator::Signals::new(&wanted) else {
            // Without handlers a signal ends pipe at once, which is safe too.
            return StopSignals { handle: None };
        };
        let handle = signals.handle();
        scope.spawn(move || {
            for signal in signals.forever() {
                if interrupt.requested().is_none() {
                    progress.say(
                        "Stopping: waiting for the running stages to stop (Ctrl-C again stops pipe at once) …"
                            .into(),
                    );
                    interrupt.request(signal);
                } else {
                    progress.finish();
                    eprintln!(
                        "Stopped at once: the stages that were running are not recorded; the next `pipe repro` resumes from pipeline.lock."
                    );
                    die_by(signal);
                }
            }
        });
        StopSignals {
            handle: Some(handle),
        }
    }

    /// Stops listening (the listening thread ends).
    fn close(self) {
        if let Some(handle) = self.handle {
            handle.close();
        }
    }
}

/// Whether `signal` is ignored (as `nohup` and shells without job control
/// leave SIGINT for background commands).
fn ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into a local.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Ends pipe as `signal` would have, had it not been caught.
fn die_by(signal: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}
