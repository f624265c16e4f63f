//! The command line: clap types and one file per subcommand.
//!
//! Each subcommand module exports `<Name>Args` (whose doc comment is its
//! help text) and `run(args) -> Result<ExitCode, CliError>`. Errors are
//! printed in one place, [`main`], as `error: …` plus `hint: …` lines, and
//! mapped to exit codes: 0 success, 1 a stage failed (or a check found
//! work to do), 2 a problem with the pipeline definition or the command line.

mod add;
mod cache;
mod checkout;
mod commit;
mod compare;
mod completions;
mod dag;
mod exp;
mod gc;
mod import_dvc;
mod import_url;
mod init;
mod metrics;
mod params;
pub mod plots;
mod predict;
mod progress;
mod remote;
mod repro;
mod serve;
mod stage;
mod status;
mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use pipe::project::Project;
use pipe::run::ReproLock;
use pipe::Error;

/// Reproducible ML pipelines: rerun exactly what changed.
#[derive(Debug, Parser)]
#[command(name = "pipe", version, about, long_about = None)]
struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Say more: the fields of dvc.yaml that pipe accepts and ignores.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::InitArgs),
    Repro(repro::ReproArgs),
    Status(status::StatusArgs),
    Dag(dag::DagArgs),
    Checkout(checkout::CheckoutArgs),
    Commit(commit::CommitArgs),
    Stage(stage::StageArgs),
    Remove(stage::RemoveArgs),
    /// Freeze stages, as `dvc freeze` does: `frozen: true` in the pipeline
    /// file, so that `pipe repro` neither runs them nor looks at their deps
    /// (it uses their outputs as they are) until `pipe unfreeze`.
    Freeze(stage::FreezeArgs),
    /// Unfreeze stages: remove their `frozen: true`, so that `pipe repro`
    /// runs them again when they are stale.
    Unfreeze(stage::FreezeArgs),
    Add(add::AddArgs),
    ImportUrl(import_url::ImportUrlArgs),
    Update(import_url::UpdateArgs),
    Cache(cache::CacheArgs),
    Remote(remote::RemoteArgs),
    Push(transfer::PushArgs),
    Fetch(transfer::FetchArgs),
    Pull(transfer::PullArgs),
    Gc(gc::GcArgs),
    Predict(predict::PredictArgs),
    Serve(serve::ServeArgs),
    Metrics(metrics::MetricsArgs),
    Params(params::ParamsArgs),
    Plots(plots::PlotsArgs),
    Exp(exp::ExpArgs),
    Completions(completions::CompletionsArgs),
    ImportDvc(import_dvc::ImportDvcArgs),
}

/// An error for the user: the message, hints, and the exit code.
pub struct CliError {
    pub message: String,
    pub hints: Vec<String>,
    pub code: u8,
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError {
            hints: e.hint().into_iter().collect(),
            code: if e.is_usage() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

/// `-v/--verbose`, set once from the command line.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Whether the note on the pipeline files was printed (once per command).
static SOURCE_NOTED: AtomicBool = AtomicBool::new(false);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    VERBOSE.store(cli.verbose, Ordering::Relaxed);
    let result = (|| {
        let cwd = match &cli.directory {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(|e| CliError {
                message: format!("cannot read the current directory: {e}"),
                hints: vec![],
                code: 2,
            })?,
        };
        match cli.command {
            Command::Init(args) => init::run(&cwd, args),
            Command::Repro(args) => repro::run(&cwd, args),
            Command::Status(args) => status::run(&cwd, args),
            Command::Dag(args) => dag::run(&cwd, args),
            Command::Checkout(args) => checkout::run(&cwd, args),
            Command::Commit(args) => commit::run(&cwd, args),
            Command::Stage(args) => stage::run_stage(&cwd, args),
            Command::Remove(args) => stage::run_remove(&cwd, args),
            Command::Freeze(args) => stage::run_freeze(&cwd, args, true),
            Command::Unfreeze(args) => stage::run_freeze(&cwd, args, false),
            Command::Add(args) => add::run(&cwd, args),
            Command::ImportUrl(args) => import_url::import_url(&cwd, args),
            Command::Update(args) => import_url::update(&cwd, args),
            Command::Cache(args) => cache::run(&cwd, args),
            Command::Remote(args) => remote::run(&cwd, args),
            Command::Push(args) => transfer::push(&cwd, args),
            Command::Fetch(args) => transfer::fetch(&cwd, args),
            Command::Pull(args) => transfer::pull(&cwd, args),
            Command::Gc(args) => gc::run(&cwd, args),
            Command::Predict(args) => predict::run(&cwd, args),
            Command::Serve(args) => serve::run(&cwd, args),
            Command::Metrics(args) => metrics::run(&cwd, args),
            Command::Params(args) => params::run(&cwd, args),
            Command::Plots(args) => plots::run(&cwd, args),
            Command::Exp(args) => exp::run(&cwd, args),
            Command::Completions(args) => completions::run(args),
            Command::ImportDvc(args) => import_dvc::run(&cwd, args),
        }
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            for (i, line) in e.message.lines().enumerate() {
                // Several diagnostics: one `error:` each; their hints stay indented.
                if let Some(hint) = line.trim_start().strip_prefix("Hint: ") {
                    let _ = writeln!(err, "  hint: {hint}");
                } else if i == 0 || !line.starts_with("  ") {
                    let _ = writeln!(err, "error: {line}");
                } else {
                    let _ = writeln!(err, "{line}");
                }
            }
            for hint in &e.hints {
                let _ = writeln!(err, "  hint: {hint}");
            }
            ExitCode::from(e.code)
        }
    }
}

/// Takes the project's repro lock (see [`ReproLock`]) for a command that
/// writes outputs, the lock or the cache, saying on stderr when it waits
/// for another one.
pub fn lock_project(project: &Project) -> Result<ReproLock, CliError> {
    Ok(ReproLock::acquire(&project.cache_root(), |holder| {
        eprintln!(
            "Waiting for another run in this project to finish: {} …",
            holder.unwrap_or_else(|| "pipe repro".into())
        );
    })?)
}

/// Finds the project above `cwd` and loads it. Says on stderr (once per
/// command) when the pipeline comes from `dvc.yaml`, then the pipeline's
/// warnings, and under `--verbose` what it accepted and ignores.
pub fn load_project(cwd: &std::path::Path) -> Result<Project, CliError> {
    let root = Project::find_root(cwd).ok_or_else(|| CliError {
        message: format!(
            "no pipeline.yaml (or dvc.yaml) in {} or any parent directory",
            cwd.display()
        ),
        hints: vec!["create pipeline.yaml with a `stages:` mapping (see the README), or run pipe inside a project".into()],
        code: 2,
    })?;
    let project = Project::load(&root)?;
    if !SOURCE_NOTED.swap(true, Ordering::Relaxed) {
        let p = &project.pipeline;
        let mut err = std::io::stderr().lock();
        if p.format == pipe::spec::Format::Dvc {
            let names: Vec<String> = p.files.iter().map(|f| f.path.to_string()).collect();
            let _ = writeln!(err, "Using {} (no pipeline.yaml here).", join_and(&names));
        }
        for w in &p.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
        if VERBOSE.load(Ordering::Relaxed) {
            for n in &p.notes {
                let _ = writeln!(err, "note: {n}");
            }
        }
    }
    Ok(project)
}

/// `a`, `a and b`, `a, b and c`.
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The command line's targets as stage names (see
/// [`pipe::graph::expand_targets`]): `file:stage`, files, output paths,
/// `-R DIR` and `--glob PATTERN`, relative to `cwd`.
pub fn stage_targets(
    project: &Project,
    cwd: &std::path::Path,
    targets: &[String],
    recursive: bool,
    glob: bool,
) -> Result<Vec<String>, CliError> {
    let here = cwd
        .canonicalize()
        .ok()
        .and_then(|c| {
            let root = project.root.canonicalize().ok()?;
            let rel = c.strip_prefix(&root).ok()?.to_str()?.to_string();
            pipe::paths::RelPath::parse(&rel, None)
                .ok()
                .or_else(|| rel.is_empty().then(pipe::paths::RelPath::root))
        })
        .unwrap_or_else(pipe::paths::RelPath::root);
    let spec = pipe::graph::TargetSpec {
        recursive,
        glob,
        cwd: here,
    };
    Ok(
        pipe::graph::expand_targets(&project.pipeline, targets, &spec)
            .map_err(pipe::Error::from)?,
    )
}

/// Loads the project for a command that handles tracked data too: a
/// `pipeline.yaml` without stages, or a DVC repository without pipeline
/// file, is accepted when `always` (commands that create tracked data) or
/// when the project has `.dvc` files.
pub fn load_data_project(cwd: &std::path::Path, always: bool) -> Result<Project, CliError> {
    let err = match load_project(cwd) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    let Some(root) = Project::find_root(cwd).or_else(|| pipe::project::find_dvc_repo(cwd)) else {
        return Err(err);
    };
    match Project::load_with(&root, true) {
        Ok(p) if always || !pipe::track::discover(&p)?.is_empty() => Ok(p),
        _ => Err(err),
    }
}

/// Writes to stdout, treating a closed pipe (`pipe dag | head`) as success.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError {
            message: format!("cannot write to stdout: {e}"),
            hints: vec![],
            code: 1,
        }),
    }
}

/// Asks `question` on stderr and reads the answer from stdin (a
/// terminal): true for `y` or `yes`, false for anything else, or nothing.
pub fn confirm(question: &str) -> Result<bool, CliError> {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError {
            message: format!("cannot read the answer: {e}"),
            hints: vec![],
            code: 2,
        })?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
