//! `pipe push`, `pipe fetch`, `pipe pull`: the cache to and from a remote.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use pipe::cache::human_bytes;
use pipe::project::Project;
use pipe::remote::scope::{collect, Scope};
use pipe::remote::{Remote, TransferReport};
use pipe::run::{Event, Reporter, ReproLock};
use pipe::track::{self, Tracker};

use super::progress::{secs, Progress};
use super::{load_data_project, print, CliError};

/// Which outputs, and where to: the options push, fetch and pull share.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Stages whose outputs to move, .dvc files (or the data they track);
    /// all stages of pipeline.lock and all tracked data when omitted.
    pub targets: Vec<String>,
    /// The remote (default: the default remote, `pipe remote list`).
    #[arg(short, long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Transfers at once [default: the remote's `jobs`, else 8 per core].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also the run-cache entries of those stages (so that `repro --pull`
    /// elsewhere restores them instead of running).
    #[arg(long)]
    pub run_cache: bool,
    /// Also the outputs recorded in the pipeline.lock of every commit of
    /// every branch and tag.
    #[arg(short = 'A', long)]
    pub all_commits: bool,
    /// Also the outputs of these experiments.
    #[arg(long, value_name = "NAME")]
    pub exp: Vec<String>,
    /// Print a summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Upload the cached outputs that pipeline.lock records (and with the
/// options, those of other commits, experiments, and run-cache entries) to a
/// remote. Only what the remote lacks is sent.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Ask the remote about every object instead of trusting the local
    /// record of what it holds (after a `gc --cloud` elsewhere, say).
    #[arg(long)]
    pub verify: bool,
}

/// Download from a remote the cached outputs that pipeline.lock records
/// and the local cache lacks (the workspace is not changed; see `pull`).
#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// `fetch`, then `checkout`: the outputs pipeline.lock records, from the
/// remote into the workspace.
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Replace outputs that were modified in the workspace.
    #[arg(short, long)]
    pub force: bool,
}

/// Opens the remote a command names (or the default one).
pub fn open_remote(
    project: &Project,
    name: Option<&str>,
    jobs: Option<usize>,
) -> Result<Remote, CliError> {
    let (mut remote, _) = Remote::of_project(project, name).map_err(pipe::Error::from)?;
    if let Some(j) = jobs {
        if j == 0 {
            return Err(CliError {
                message: "-j/--jobs must be at least 1".into(),
                hints: vec![],
                code: 2,
            });
        }
        remote.jobs = j;
    }
    Ok(remote)
}

fn scope(cwd: &Path, t: &TransferArgs, store_tracked: bool) -> Scope {
    Scope {
        targets: t.targets.clone(),
        all_commits: t.all_commits,
        experiments: t.exp.clone(),
        run_cache: t.run_cache,
        skip_workspace: false,
        cwd: Some(cwd.to_path_buf()),
        store_tracked,
    }
}

/// A bar per wave on a terminal (files, bytes, rate, ETA); nothing
/// otherwise.
pub struct Bars {
    bar: ProgressBar,
    files: AtomicU64,
    total: AtomicU64,
}

impl Bars {
    pub fn new() -> Bars {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Bars {
            bar,
            files: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl pipe::remote::Progress for Bars {
    fn start(&self, what: &str, files: u64, bytes: u64) {
        self.files.store(0, Ordering::Relaxed);
        self.total.store(files, Ordering::Relaxed);
        self.bar.set_prefix(what.to_string());
        self.bar.set_length(bytes);
        self.bar.set_position(0);
        self.bar.set_message(format!("0/{files} files"));
        self.bar.reset_eta();
    }

    fn advance(&self, files: u64, bytes: u64) {
        let done = self.files.fetch_add(files, Ordering::Relaxed) + files;
        self.bar.inc(bytes);
        self.bar.set_message(format!(
            "{done}/{} files",
            self.total.load(Ordering::Relaxed)
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Takes the project's lock (a transfer must not race a `repro` or `gc`).
pub fn lock(project: &Project) -> Result<ReproLock, CliError> {
    let progress = Progress::new();
    let guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(Event::WaitingForLock { holder });
    })?;
    progress.finish();
    project.cache.clean_staging();
    Ok(guard)
}

pub fn summary(verb: &str, report: &TransferReport, remote: &Remote, took: Duration) -> String {
    let mut out = format!(
        "{verb} {} {} ({}){} in {}; {} already {}",
        report.moved,
        if report.moved == 1 {
            "object"
        } else {
            "objects"
        },
        human_bytes(report.bytes),
        if report.runs > 0 {
            format!(" and {} run-cache entries", report.runs)
        } else {
            String::new()
        },
        secs(took),
        report.present,
        if verb == "pushed" {
            format!("on {}", remote.name)
        } else {
            "in the cache".into()
        }
    );
    out.push('\n');
    for m in &report.missing {
        out.push_str(&format!("missing: {m}\n"));
    }
    for f in &report.failed {
        out.push_str(&format!("failed: {f}\n"));
    }
    out
}

fn finish(json: bool, text: String, report: &TransferReport) -> Result<ExitCode, CliError> {
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(report).expect("a report serializes")
        ))?;
    } else {
        eprint!("{text}");
    }
    if report.ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        let n = report.missing.len() + report.failed.len();
        // Content on neither side is not helped by trying again.
        let hint = if report.failed.is_empty() {
            "the content is on neither side: rerun the stages that write it (`pipe repro`), or fetch it from a remote that has it"
        } else {
            "run the command again to retry; what was moved stays moved"
        };
        Err(CliError {
            message: format!(
                "{n} {} could not be moved",
                if n == 1 { "object" } else { "objects" }
            ),
            hints: vec![hint.into()],
            code: 1,
        })
    }
}

pub fn push(cwd: &Path, args: PushArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, false)?;
    let remote = open_remote(
        &project,
        args.transfer.remote.as_deref(),
        args.transfer.jobs,
    )?;
    let _guard = lock(&project)?;
    let set = collect(&project, &scope(cwd, &args.transfer, true))?;
    let started = Instant::now();
    let report = remote
        .push(&project.cache, &set, args.verify, &Bars::new())
        .map_err(pipe::Error::from)?;
    // What `.dvc` files name by md5 only can then be pulled elsewhere.
    let files = tracked_files(&project, cwd, &args.transfer.targets)?;
    let hasher = project.hasher();
    let tracker = Tracker::new(&project, &hasher);
    track::remote::publish(&tracker, &remote, &files)?;
    let text = summary("pushed", &report, &remote, started.elapsed());
    finish(args.transfer.json, text, &report)
}

/// The `.dvc` files a transfer's targets name (all when there are none).
fn tracked_files(
    project: &Project,
    cwd: &Path,
    targets: &[String],
) -> Result<Vec<track::DvcFile>, CliError> {
    let files = track::discover(project)?;
    if targets.is_empty() {
        return Ok(files);
    }
    Ok(track::split_targets(project, cwd, &files, targets).1)
}

pub fn fetch(cwd: &Path, args: FetchArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, false)?;
    let remote = open_remote(
        &project,
        args.transfer.remote.as_deref(),
        args.transfer.jobs,
    )?;
    let _guard = lock(&project)?;
    let (report, took) = fetch_into(cwd, &project, &remote, &args.transfer)?;
    let text = summary("fetched", &report, &remote, took);
    finish(args.transfer.json, text, &report)
}

fn fetch_into(
    cwd: &Path,
    project: &Project,
    remote: &Remote,
    t: &TransferArgs,
) -> Result<(TransferReport, Duration), CliError> {
    let mut set = collect(project, &scope(cwd, t, false))?;
    // Data `.dvc` files name by an md5 this machine never met: by the
    // links a push left on the remote, checked once here.
    let hasher = project.hasher();
    let tracker = Tracker::new(project, &hasher);
    let files = tracked_files(project, cwd, &t.targets)?;
    let resolved = track::remote::resolve(&tracker, remote, &files)?;
    for (_, record) in &resolved {
        set.add(record);
    }
    let started = Instant::now();
    let mut report = remote
        .fetch(&project.cache, &set, &Bars::new())
        .map_err(pipe::Error::from)?;
    for path in track::remote::verify(project, &tracker, &resolved)? {
        report.failed.push(format!(
            "{path}: what the remote links to its md5 has another md5; not used"
        ));
    }
    Ok((report, started.elapsed()))
}

pub fn pull(cwd: &Path, args: PullArgs) -> Result<ExitCode, CliError> {
    let project = load_data_project(cwd, false)?;
    let remote = open_remote(
        &project,
        args.transfer.remote.as_deref(),
        args.transfer.jobs,
    )?;
    let guard = lock(&project)?;
    let (report, took) = fetch_into(cwd, &project, &remote, &args.transfer)?;
    let text = summary("fetched", &report, &remote, took);
    drop(guard);
    let fetched = finish(args.transfer.json, text, &report);
    // What was fetched goes into the workspace as `pipe checkout` puts it
    // (what could not be fetched is reported there too).
    let checkout = super::checkout::run(
        cwd,
        super::checkout::CheckoutArgs {
            targets: args.transfer.targets.clone(),
            force: args.force,
        },
    );
    match (fetched, checkout) {
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(code)) => Ok(code),
    }
}
